"""
The command line: C{chatroom-client HOST [PORT]}, or C{python -m
chatroom.client}.
"""

import argparse
import os
import shutil
import sys
import termios
import tty
from pathlib import Path

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.conch.insults.insults import ServerProtocol
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.stdio import StandardIO
from twisted.internet.task import react
from twisted.internet.threads import deferToThreadPool

from chatroom.client.connect import (
    PinnedTLS,
    PlainTCP,
    TrustPolicy,
    UnverifiedTLS,
    VerifiedTLS,
    connect,
)
from chatroom.client.e2e.files import DEVICE_MAX, DEVICE_NAME
from chatroom.client.e2e.messenger import E2eMessenger, E2eSettings
from chatroom.client.pinning import KnownHosts, PinMismatch, default_known_hosts_path
from chatroom.client.render import Style, use_colour
from chatroom.client.session import (
    EXIT_CONNECTION_LOST,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ChatSession,
)
from chatroom.client.ui import TerminalUI

PLAIN_PORT = 5000
TLS_PORT = 5001

INSECURE_WARNING = (
    "WARNING: --insecure: the server's certificate is NOT checked. The link is\n"
    "encrypted, but to whoever answers: anyone on the path can pose as the server\n"
    "and read and change everything, your password included."
)

EPILOG = """\
trust:
  With --tls and no --ca, the client trusts on first use, like SSH: the first
  certificate seen for HOST:PORT is pinned by its SHA-256 fingerprint in
  $XDG_CONFIG_HOME/chatroom/known_hosts, here {known_hosts}
  A server that later shows another certificate is refused. Compare the pinned
  fingerprint with the one the server logs at start.

login:
  The client asks for your name (unless --user) and then your password,
  without echo; for a name the server says is new, it asks the password twice
  and creates the account. Type /p alone to change your password the same way.

keys:
  Enter sends; Left/Right, Home/End (Ctrl-A/Ctrl-E), Backspace/Delete edit;
  Ctrl-U, Ctrl-K, Ctrl-W erase to the start, to the end, a word; Up/Down recall
  earlier lines. Ctrl-D on an empty line quits, as does /logout.

output:
  Colour when standard output is a terminal, unless NO_COLOR is set or TERM is
  dumb. Control characters and bidi controls in text from the network are
  shown escaped (^[, \\x9b, <U+202E>), never passed to the terminal.

end-to-end encryption:
  Private messages (/msg, /private) between bundled clients are end-to-end
  encrypted: the server stores and forwards ciphertext it cannot read. Device
  keys live, mode 0600, under
  {e2e_dir}/HOST_PORT/USER/
  /fingerprint USER shows the safety number to compare with USER; /trust USER
  accepts a changed key; /plain USER TEXT sends a private message the server
  can read (to telnet or IRC users, who have no device keys). See docs/e2e.md.

exit status:
  0 after /logout or Ctrl-D, 1 when the connection fails, is refused or is
  lost, 2 for a usage error, 130 after Ctrl-C."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatroom-client",
        description="Chat on a chatroom server from the terminal.",
        epilog=EPILOG.format(
            known_hosts=default_known_hosts_path(),
            e2e_dir=default_known_hosts_path().parent / "e2e",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("host", metavar="HOST", help="the server's name or address")
    parser.add_argument(
        "port",
        metavar="PORT",
        type=int,
        nargs="?",
        help=f"the server's port (default {PLAIN_PORT}, or {TLS_PORT} with TLS)",
    )
    parser.add_argument("--tls", action="store_true", help="connect over TLS")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument(
        "--ca",
        metavar="FILE",
        type=Path,
        help="verify the server's certificate against this PEM CA certificate, "
        "host name included, instead of pinning it (implies --tls)",
    )
    trust.add_argument(
        "--insecure",
        action="store_true",
        help="do not check the server's certificate at all; anyone on the path "
        "can then read everything (implies --tls; never do this)",
    )
    parser.add_argument(
        "--user", metavar="NAME", help="log in as NAME instead of asking for it"
    )
    parser.add_argument(
        "--e2e-device",
        metavar="NAME",
        type=device_name,
        help="name this device NAME when its end-to-end keys are first made "
        "(default: the host name and a random suffix)",
    )
    parser.add_argument(
        "--e2e-history",
        action="store_true",
        help="keep a readable copy of end-to-end messages in history.txt beside "
        "the device keys (by default no plaintext is written anywhere)",
    )
    return parser


def device_name(text: str) -> str:
    if not DEVICE_NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"1 to {DEVICE_MAX} letters, digits, _ . - please"
        )
    return text


def e2e_settings(reactor: IReactorTCP, options: argparse.Namespace) -> E2eSettings:
    """Device files beside known_hosts; file work in the reactor's threads."""
    return E2eSettings(
        config=default_known_hosts_path().parent,
        host=options.host,
        port=options.port,
        runner=lambda function, *args: deferToThreadPool(
            reactor, reactor.getThreadPool(), function, *args
        ),
        clock=reactor,
        device=options.e2e_device,
        history=options.e2e_history,
    )


def trust_policy(options: argparse.Namespace) -> TrustPolicy:
    """How to reach and trust the server the options name."""
    if options.ca is not None:
        return VerifiedTLS(options.ca.read_bytes())
    if options.insecure:
        return UnverifiedTLS()
    if options.tls:
        return PinnedTLS(KnownHosts(default_known_hosts_path()))
    return PlainTCP()


def describe(error: Exception) -> str:
    """A connection failure in words a user can act on."""
    if isinstance(error, VerificationError):
        return f"the certificate is not for this host ({error})"
    if isinstance(error, SSL.Error):
        details = error.args[0] if error.args else []
        reasons = [detail[-1] for detail in details if detail]
        return "TLS failed: " + ("; ".join(reasons) or "no reason given")
    return str(error) or type(error).__name__


class _GiveUpConnecting:
    """Until the session starts, Ctrl-D or Ctrl-C cancels the connecting."""

    def __init__(self, attempt: Deferred[object]) -> None:
        self._attempt = attempt
        self.status: int | None = None

    def line_entered(self, line: str) -> None:
        pass

    def input_ended(self, interrupted: bool) -> None:
        self.status = EXIT_INTERRUPTED if interrupted else EXIT_OK
        self._attempt.cancel()


async def chat(
    reactor: IReactorTCP, options: argparse.Namespace, ui: TerminalUI, style: Style
) -> int:
    """Connect, trust, log in and chat; return the exit status."""
    if options.insecure:
        ui.show(style.warning(INSECURE_WARNING))
    where = f"{options.host}:{options.port}"
    ui.show(style.info(f"connecting to {where}{' with TLS' if options.tls else ''}"))
    attempt = Deferred.fromCoroutine(
        connect(reactor, options.host, options.port, trust_policy(options))
    )
    giving_up = _GiveUpConnecting(attempt)
    ui.handler = giving_up
    try:
        protocol, note = await attempt
    except Exception as error:
        if giving_up.status is not None:
            # A cancelled attempt fails with whatever its current step raises.
            return giving_up.status
        if isinstance(error, PinMismatch):
            ui.show(style.warning(str(error)))
        else:
            ui.show(style.warning(f"Cannot connect to {where}: {describe(error)}"))
        return EXIT_CONNECTION_LOST
    if note is not None:
        ui.show(style.info(note))
    ui.show(style.info("connected; /help lists commands, Ctrl-D quits"))
    e2e = E2eMessenger(protocol, ui, style, e2e_settings(reactor, options))
    return await ChatSession(protocol, ui, style, options.user, e2e).run()


async def _main(reactor: IReactorTCP, options: argparse.Namespace) -> None:
    style = Style(colour=use_colour(sys.stdout.isatty(), os.environ))
    ui = TerminalUI(columns=lambda: shutil.get_terminal_size().columns)
    StandardIO(ServerProtocol(lambda: ui), reactor=reactor)
    status = await chat(reactor, options, ui, style)
    await ui.close()
    if status:
        raise SystemExit(status)


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with --ca and --insecure implying --tls and the
    port defaulting by it."""
    parser = build_parser()
    options = parser.parse_args(argv)
    options.tls = options.tls or options.ca is not None or options.insecure
    if options.port is None:
        options.port = TLS_PORT if options.tls else PLAIN_PORT
    if options.ca is not None and not options.ca.is_file():
        parser.error(f"--ca {options.ca}: no such file")
    return options


def main(argv: list[str] | None = None) -> None:
    """Run the client; exits the process with its status."""
    options = parse_options(argv)
    if not sys.stdin.isatty():
        build_parser().error(
            "standard input is not a terminal; for scripts, talk to the server "
            "with nc or openssl s_client"
        )
    descriptor = sys.stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    # Raw mode: keys arrive one by one, unechoed; the UI draws everything.
    tty.setraw(descriptor)
    try:
        react(lambda reactor: Deferred.fromCoroutine(_main(reactor, options)))
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    main()
