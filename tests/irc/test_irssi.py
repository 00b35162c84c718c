"""
A real IRC client against the real server: irssi, in a detached tmux, with
a throwaway home, logs in with SASL PLAIN to an account made on the line
port, joins #lobby and talks with a line user both ways.  The screen is
read with C{tmux capture-pane}, polled with a deadline.

Without irssi or tmux the test skips, unless C{CHATROOM_REQUIRE_REAL_CLIENTS=1}
(as .ci/run sets it): then it fails, so CI cannot pass without having run it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from twisted.internet import reactor, utils
from twisted.trial import unittest

from tests.asynctest import async_test
from tests.clients import connect, log_in
from tests.realserver import LOOPBACK, RunningServer, wait

REQUIRE = "CHATROOM_REQUIRE_REAL_CLIENTS"
# irssi connects, negotiates and joins well within this on a busy machine.
SCREEN_TIMEOUT = 20.0

CONFIG = """\
servers = (
  {{ address = "127.0.0.1"; chatnet = "chatroom"; port = "{port}";
    use_tls = "no"; autoconnect = "yes"; }}
);
chatnets = {{
  chatroom = {{ type = "IRC"; sasl_mechanism = "PLAIN";
    sasl_username = "{name}"; sasl_password = "{password}"; }};
}};
settings = {{
  core = {{ nick = "{name}"; user_name = "{name}"; real_name = "{name}";
    settings_autosave = "no"; }};
}};
"""


def require_tools(*tools: str) -> None:
    """Skip when a tool is missing; fail instead when CI requires them."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    why = f"{' and '.join(missing)} not installed (apt-get install {' '.join(tools)})"
    if os.environ.get(REQUIRE) == "1":
        raise AssertionError(f"{REQUIRE}=1 but {why}")
    raise unittest.SkipTest(why)


class Tmux:
    """One detached tmux server of the test's own, on a private socket."""

    def __init__(self, testcase: unittest.TestCase, environment: dict[str, str]):
        # A socket path must stay short (~100 bytes): not under _trial_temp.
        self.directory = tempfile.mkdtemp(prefix="chatroom-tmux-")
        self.socket = os.path.join(self.directory, "socket")
        self.environment = environment
        testcase.addCleanup(shutil.rmtree, self.directory, True)
        testcase.addCleanup(self.stop)

    async def run(self, *arguments: str) -> str:
        out, err, status = await utils.getProcessOutputAndValue(
            "tmux", ["-S", self.socket, *arguments], env=self.environment
        )
        if status != 0:
            raise AssertionError(f"tmux {arguments[0]} exited {status}: {err!r}")
        return out.decode("utf-8", "replace")

    async def start(self, command: str) -> None:
        await self.run("new-session", "-d", "-s", "t", "-x", "160", "-y", "50", command)

    async def screen(self) -> str:
        """The pane and its scrollback, wrapped lines joined."""
        return await self.run("capture-pane", "-p", "-J", "-S", "-", "-t", "t")

    async def type(self, text: str) -> None:
        await self.run("send-keys", "-t", "t", "-l", text)
        await self.run("send-keys", "-t", "t", "Enter")

    async def until(self, fragment: str, timeout: float = SCREEN_TIMEOUT) -> str:
        """The screen once it shows C{fragment}; fails with the screen if not."""
        deadline = reactor.seconds() + timeout
        while fragment not in (screen := await self.screen()):
            if reactor.seconds() > deadline:
                raise AssertionError(f"{fragment!r} not on screen:\n{screen}")
            await wait(0.1)
        return screen

    async def stop(self) -> None:
        # Ending the tmux server ends irssi with it (SIGHUP).
        await utils.getProcessOutputAndValue(
            "tmux", ["-S", self.socket, "kill-server"], env=self.environment
        )


class IrssiTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        require_tools("irssi", "tmux")
        self.directory = Path(self.mktemp()).resolve()
        self.server = RunningServer(
            self,
            self.directory / "server",
            ("--port", LOOPBACK, "--irc-port", LOOPBACK),
        )

    async def irssi(self, name: str, password: str) -> Tmux:
        """irssi, connecting to the IRC port with SASL PLAIN as C{name}."""
        home = self.directory / "irssi"
        home.mkdir(parents=True)
        config = home / "config"
        config.write_text(
            CONFIG.format(port=self.server.port(1), name=name, password=password)
        )
        tmux = Tmux(
            self, dict(os.environ, HOME=str(home), TERM="xterm", LANG="C.UTF-8")
        )
        await tmux.start(f"irssi --home={home} --config={config}")
        return tmux

    @async_test
    async def test_irssi_logs_in_with_sasl_and_talks_with_a_line_user(self):
        await self.server.start()
        # Without --irc-guests only an account's owner gets in: SASL must work.
        made = await log_in(await connect(self.server.port(0)), "ivan", "ivan-pw")
        made.transport.loseConnection()
        await made.closed
        lena = await self.server.client("lena")

        irssi = await self.irssi("ivan", "ivan-pw")
        await irssi.until("SASL authentication succeeded")
        await irssi.until("Welcome to the chatroom IRC network, ivan")
        await irssi.type("/join #lobby")
        # ivan's account is in #lobby since its registration: lena hears
        # of no join, irssi shows it.
        await irssi.until("has joined #lobby")
        await irssi.until("[#lobby]")

        await lena.ok("/public lobby hi ivan, from the line")
        await irssi.until("< lena> hi ivan, from the line")
        await irssi.type("hello lena, from irssi")
        self.assertEqual(
            await lena.wait_for("hello lena"), "[lobby] ivan: hello lena, from irssi"
        )
