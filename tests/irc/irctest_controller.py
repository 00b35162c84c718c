"""
irctest's controller for chatroom: starts C{twistd -n chatroom} with an IRC
port (guests on), a line port, on which L{registerUser} creates accounts,
and for the WebSocket cases a web port.
irctest's operator (C{OPER operuser operpassword}) is an account of that
name, registered at start and named by C{--irc-oper}.

    PYTHONPATH=/path/to/chatroom python -m pytest \
        --controller tests.irc.irctest_controller ...
"""

from __future__ import annotations

import socket
import sys
import time

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController

OPER_NAME, OPER_PASSWORD = "operuser", "operpassword"


class ChatroomController(BaseServerController, DirectoryBasedController):
    software_name = "chatroom"
    supported_sasl_mechanisms: set[str] = {"PLAIN"}
    supports_sts = False
    extban_mute_char = "m"
    # Before a test reads client B, irctest pings B right after the line it
    # sent on A; read in the same reactor turn, B's PING may be answered
    # before A's line is handled, and a PRIVMSG A sent B then comes after
    # the PONG irctest waits for (seen once under CI's load). A few ms let
    # A's line be handled first, as irctest lets other servers (sable, bahamut).
    sync_sleep_time = 0.005

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None = None,
        websocket_port: int | None = None,
    ) -> None:
        if password is not None:
            raise NotImplementedByController("server passwords")
        if ssl:
            raise NotImplementedByController("TLS on the IRC port")
        # irctest's WebSocket cases connect to ws://HOST:PORT/, which the
        # web port takes as it takes /ws.
        web = []
        if websocket_hostname is not None and websocket_port is not None:
            web = ["--web-port", f"tcp:{websocket_port}:interface={websocket_hostname}"]
        assert self.proc is None
        self.port, self.hostname = port, hostname
        self.create_config()
        assert self.directory
        (_, self.line_port) = self.get_hostname_and_port()
        with self.open_file("admin-password") as fd:
            fd.write("irctest-admin\n")
        self.proc = self.execute(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "--nodaemon",
                "--pidfile=",
                "chatroom",
                "--port",
                f"tcp:{self.line_port}:interface={hostname}",
                "--irc-port",
                f"tcp:{port}:interface={hostname}",
                "--irc-guests",
                *web,
                "--irc-name",
                "My.Little.Server",
                "--irc-oper",
                OPER_NAME,
                "--db",
                ":memory:",
                "--data-dir",
                str(self.directory),
                "--admin-password-file",
                str(self.directory / "admin-password"),
                "--bcrypt-rounds",
                "4",
                "--rate",
                "0",
                "--register-rate",
                "0",
                "--max-per-address",
                "0",
            ]
        )
        self.registerUser(None, OPER_NAME, OPER_PASSWORD)

    def registerUser(self, case, username: str, password: str | None = None) -> None:
        """Create the account on the line port: /register NAME PASSWORD."""
        self.wait_for_port()
        deadline = time.monotonic() + 10
        with socket.create_connection((self.hostname, self.line_port)) as conn:
            conn.sendall(f"/register {username} {password or 'password'}\n".encode())
            received = b""
            while b"+OK" not in received and b"-ERR" not in received:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no reply registering {username}")
                received += conn.recv(4096)
            if b"+OK" not in received:
                raise AssertionError(f"could not register {username}: {received!r}")
            # Logged out before the test goes on: LUSERS counts who is online.
            conn.sendall(b"/logout\n")
            while conn.recv(4096):
                if time.monotonic() > deadline:
                    raise AssertionError(f"no logout after registering {username}")


def get_irctest_controller_class() -> type[ChatroomController]:
    return ChatroomController
