"""
The client as a person uses it: C{python -m chatroom.client} in a
pseudo-terminal, against a fake server on 127.0.0.1 that speaks just enough
of PROTOCOL.md.
"""

import os
import stat
import sys
import termios
from pathlib import Path
from typing import Any

from twisted.conch.insults.helper import TerminalBuffer
from twisted.conch.insults.insults import ClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

import chatroom
from chatroom import tls
from tests.asynctest import async_test

EXPECT_TIMEOUT = 10
ROOT = Path(chatroom.__file__).parent.parent


class FakeChatServer(LineReceiver):
    """
    Greets, takes the interactive login (a bare name, then the password),
    acknowledges messages, answers /logout and refuses other commands.
    """

    delimiter = b"\n"

    def __init__(self, name_reply: str) -> None:
        self.name_reply = name_reply
        self.received: list[str] = []
        self.passwords: list[str] = []
        self.state = "name"
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.send("* welcome to the fake chatroom")

    def connectionLost(self, reason: Failure) -> None:
        self.lost.callback(None)

    def send(self, line: str) -> None:
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def lineReceived(self, raw: bytes) -> None:
        line = raw.removesuffix(b"\r").decode("utf-8")
        if self.state == "name":
            self.state = "password"
            self.send(f"+OK {line} {self.name_reply}")
        elif self.state == "password":
            self.state = "chat"
            self.passwords.append(line)
            self.send("+OK welcome, you are in lobby")
        elif line == "/logout":
            self.send("+OK bye")
            self.transport.loseConnection()
        elif line.startswith("/"):
            self.send("-ERR bad-command no such command")
        else:
            self.received.append(line)
            self.send("+OK")


class DevicelessServer(FakeChatServer):
    """Takes a device's keys; nobody else has any."""

    def lineReceived(self, raw: bytes) -> None:
        line = raw.removesuffix(b"\r").decode("utf-8")
        if line.startswith("/keys publish "):
            self.received.append(line)
            self.send(f"+OK device {line.split(' ')[2]} published")
        elif line.startswith("/keys "):
            self.received.append(line)
            self.send("+OK 0 devices")
        else:
            super().lineReceived(raw)


class SilentServer(FakeChatServer):
    """Accepts connections and never says a thing, not even TLS."""

    def connectionMade(self) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        pass


class Terminal(ProcessProtocol):
    """The person's side of the pseudo-terminal: keys in, screen bytes out."""

    def __init__(self) -> None:
        self.output = b""
        self.exit_code: Deferred[int] = Deferred()
        self._waiting: list[tuple[bytes, int, Deferred[int]]] = []

    def type(self, keys: bytes) -> None:
        self.transport.write(keys)

    def expect(self, text: bytes, start: int = 0) -> Deferred[int]:
        """Fires with the offset just past C{text} once it is on screen."""
        waiting: Deferred[int] = Deferred()
        self._waiting.append((text, start, waiting))
        self._match()
        return waiting.addTimeout(EXPECT_TIMEOUT, reactor).addErrback(
            self._not_seen, text
        )

    def screen(self) -> list[str]:
        """The rows the output has drawn, as a terminal would show them."""
        buffer = TerminalBuffer()
        parser = ClientProtocol(lambda: buffer)
        parser.makeConnection(StringTransport())
        parser.dataReceived(self.output)
        # One byte per cell, so UTF-8 comes back whole when rows are joined.
        screen = bytes(buffer).decode("utf-8")
        return [row.rstrip() for row in screen.split("\n")]

    def outReceived(self, data: bytes) -> None:
        self.output += data
        self._match()

    def processEnded(self, reason: Failure) -> None:
        reason.trap(ProcessDone, ProcessTerminated)
        self.exit_code.callback(reason.value.exitCode)

    def _match(self) -> None:
        for entry in list(self._waiting):
            text, start, waiting = entry
            found = self.output.find(text, start)
            if found >= 0:
                self._waiting.remove(entry)
                waiting.callback(found + len(text))

    def _not_seen(self, failure: Failure, text: bytes) -> Failure:
        raise AssertionError(f"{text!r} never appeared in {self.output!r}")


class TerminalClientTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.home = os.path.abspath(self.mktemp())
        self.servers: list[FakeChatServer] = []

    async def listen(
        self,
        name_reply: str = "is new here",
        certificate: tuple[Path, Path] | None = None,
        port: int = 0,
        server: type[FakeChatServer] = FakeChatServer,
    ) -> IListeningPort:
        """Serve the fake chat server, over TLS if given a certificate."""

        def connected() -> FakeChatServer:
            self.servers.append(server(name_reply))
            return self.servers[-1]

        if certificate is None:
            endpoint = TCP4ServerEndpoint(reactor, port, interface="127.0.0.1")
        else:
            description = tls.server_endpoint_description(
                port, *certificate, interface="127.0.0.1"
            )
            endpoint = serverFromString(reactor, description)
        listening = await endpoint.listen(Factory.forProtocol(connected))
        self.addCleanup(listening.stopListening)
        return listening

    def run_client(self, port: IListeningPort, *arguments: str) -> Terminal:
        """Start the client in a new pseudo-terminal of 80 by 24."""
        terminal = Terminal()
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "HOME": self.home,
            "TERM": "xterm",
            "NO_COLOR": "1",
        }
        command = [sys.executable, "-m", "chatroom.client", *arguments]
        command += ["127.0.0.1", str(port.getHost().port)]
        process = reactor.spawnProcess(
            terminal, sys.executable, command, env=environment, usePTY=True
        )
        termios.tcsetwinsize(process.fd, (24, 80))
        self.addCleanup(self.stop, process, terminal)
        return terminal

    async def start(self, *arguments: str, name_reply: str = "is new here") -> None:
        self.terminal = self.run_client(await self.listen(name_reply), *arguments)

    async def _stop(self, process: Any, terminal: Terminal) -> None:
        if not terminal.exit_code.called:
            process.signalProcess("KILL")
            await terminal.exit_code
        for server in self.servers:
            server.transport.loseConnection()
            await server.lost

    def stop(self, process: Any, terminal: Terminal) -> Deferred[None]:
        return Deferred.fromCoroutine(self._stop(process, terminal))

    @async_test
    async def test_new_name_login_and_a_message_arriving_while_typing(self) -> None:
        await self.start()
        terminal = self.terminal
        await terminal.expect(b"* welcome to the fake chatroom")
        await terminal.expect(b"name: ")
        terminal.type(b"alice\r")
        await terminal.expect(b"choose a password: ")
        terminal.type(b"s3cret\r")
        await terminal.expect(b"the same again: ")
        terminal.type(b"s3cret\r")
        logged_in = await terminal.expect(b"welcome, you are in lobby")
        # The fake server refuses the device's keys: the login is over.
        logged_in = await terminal.expect(b"offers no end-to-end encryption", logged_in)
        self.assertEqual(self.servers[0].passwords, ["s3cret"])
        self.assertNotIn(b"s3cret", terminal.output)

        terminal.type(b"hello wor")
        typed = await terminal.expect(b"> hello wor", logged_in)
        self.servers[0].send("[lobby] bob: hi alice")
        arrived = await terminal.expect(b"[lobby] bob: hi alice", typed)
        await terminal.expect(b"> hello wor", arrived)
        rows = terminal.screen()
        row = rows.index("[lobby] bob: hi alice")
        self.assertEqual(
            rows[row + 1 :], ["> hello wor"] + [""] * (len(rows) - row - 2)
        )

        terminal.type(b"ld\r")
        await terminal.expect("✓ you: hello world".encode(), arrived)
        self.assertEqual(self.servers[0].received, ["hello world"])

        terminal.type(b"/logout\r")
        self.assertEqual(await terminal.exit_code, 0)

    @async_test
    async def test_known_name_asks_once_and_ctrl_d_exits_zero(self) -> None:
        await self.start("--user", "bob", name_reply="is known, password?")
        terminal = self.terminal
        await terminal.expect(b"password: ")
        terminal.type(b"pw\r")
        await terminal.expect(b"you are in lobby")
        terminal.type(b"/nonsense\r")
        await terminal.expect(b"error bad-command: no such command")
        terminal.type(b"\x04")
        self.assertEqual(await terminal.exit_code, 0)
        self.assertEqual(self.servers[0].passwords, ["pw"])
        self.assertNotIn(b"name: ", terminal.output)

    @async_test
    async def test_lost_connection_says_so_and_exits_non_zero(self) -> None:
        await self.start("--user", "bob", name_reply="is known")
        await self.terminal.expect(b"password: ")
        self.terminal.type(b"pw\r")
        await self.terminal.expect(b"you are in lobby")
        self.servers[0].transport.loseConnection()
        await self.terminal.expect(b"The server closed the connection.")
        self.assertEqual(await self.terminal.exit_code, 1)

    @async_test
    async def test_tls_pins_on_first_use_and_refuses_a_changed_certificate(
        self,
    ) -> None:
        first = tls.load_or_create_certificate(self.mktemp())
        port = await self.listen("is known", certificate=first)
        terminal = self.run_client(port, "--tls", "--user", "bob")
        await terminal.expect(b"pinned its certificate")
        await terminal.expect(tls.fingerprint_sha256(first[0].read_bytes()).encode())
        await terminal.expect(b"password: ")
        terminal.type(b"\x04")
        self.assertEqual(await terminal.exit_code, 0)

        number = port.getHost().port
        await port.stopListening()
        second = tls.load_or_create_certificate(self.mktemp())
        port = await self.listen("is known", certificate=second, port=number)
        terminal = self.run_client(port, "--tls", "--user", "bob")
        await terminal.expect(b"has CHANGED")
        self.assertEqual(await terminal.exit_code, 1)
        for certificate in (first, second):
            fingerprint = tls.fingerprint_sha256(certificate[0].read_bytes())
            self.assertIn(fingerprint.encode(), terminal.output)
        self.assertIn(b"known_hosts", terminal.output)
        self.assertEqual([server.passwords for server in self.servers], [[], []])

    @async_test
    async def test_keys_are_made_0600_in_the_config_and_no_plaintext_goes_out(
        self,
    ) -> None:
        port = await self.listen("is known", server=DevicelessServer)
        terminal = self.run_client(port, "--user", "alice", "--e2e-device", "tty1")
        await terminal.expect(b"password: ")
        terminal.type(b"pw\r")
        await terminal.expect(b"end-to-end encryption on: this is device tty1")
        terminal.type(b"/msg bob top secret\r")
        await terminal.expect(b"NOT SENT: bob has no end-to-end devices")
        terminal.type(b"/logout\r")
        self.assertEqual(await terminal.exit_code, 0)
        received = self.servers[0].received
        self.assertTrue(received[0].startswith("/keys publish tty1 "))
        self.assertEqual(received[1:], ["/keys bob", "/keys alice"])
        directory = Path(self.home, ".config", "chatroom", "e2e")
        keys = directory / f"127.0.0.1_{port.getHost().port}" / "alice"
        keys = keys / "device-keys.json"
        self.assertEqual(stat.S_IMODE(keys.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(keys.parent.stat().st_mode), 0o700)

    @async_test
    async def test_ctrl_d_while_connecting_gives_up_quietly(self) -> None:
        port = await self.listen(server=SilentServer)
        terminal = self.run_client(port, "--insecure")
        await terminal.expect(b"connecting to")
        terminal.type(b"\x04")
        self.assertEqual(await terminal.exit_code, 0, terminal.output)
