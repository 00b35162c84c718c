"""The IRC listener on a real socket, started and stopped with the server."""

from __future__ import annotations

import socket
from pathlib import Path

from twisted.internet import defer, endpoints, reactor, ssl
from twisted.protocols.basic import LineReceiver
from twisted.python import usage
from twisted.trial import unittest

from chatroom.protocol.address import tcp_socket
from chatroom.tls import CERTIFICATE_FILE
from tests.asynctest import async_test
from tests.clients import connect
from tests.helpers import parse_options
from tests.realserver import LOOPBACK, RunningServer

TIMEOUT = 5.0


class IRCLines(LineReceiver):
    """A bare IRC client: keeps every line; L{until} waits for one."""

    delimiter = b"\r\n"

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._waiting: list[tuple[str, defer.Deferred]] = []

    def lineReceived(self, raw: bytes) -> None:
        line = raw.decode("utf-8")
        self.lines.append(line)
        for entry in list(self._waiting):
            if entry[0] in line:
                self._waiting.remove(entry)
                entry[1].callback(line)

    def send(self, line: str) -> None:
        self.sendLine(line.encode("utf-8"))

    def until(self, fragment: str) -> defer.Deferred[str]:
        for line in self.lines:
            if fragment in line:
                return defer.succeed(line)
        d: defer.Deferred = defer.Deferred()
        self._waiting.append((fragment, d))
        return d.addTimeout(TIMEOUT, reactor)


class OptionTests(unittest.TestCase):
    def test_off_unless_given(self):
        self.assertEqual(parse_options(self)["irc-ports"], [])

    def test_a_bare_number_is_a_tcp_port(self):
        config = parse_options(self, "--irc-port", "6667", "--irc-guests")
        self.assertEqual((config["irc-ports"], config["irc-guests"]), (["tcp:6667"], 1))

    def test_the_server_name_may_be_set(self):
        self.assertEqual(parse_options(self)["irc-name"], "chatroom.irc")
        config = parse_options(self, "--irc-port", "6667", "--irc-name", "irc.x")
        self.assertEqual(config["irc-name"], "irc.x")

    def test_nagle_stays_on_unless_asked(self):
        self.assertEqual(parse_options(self)["irc-nodelay"], 0)
        self.assertEqual(parse_options(self, "--irc-nodelay")["irc-nodelay"], 1)

    def test_a_tls_port_takes_the_tls_port_syntax(self):
        config = parse_options(self, "--irc-tls-port", "6697:interface=127.0.0.1")
        self.assertEqual(config["irc-tls-ports"], ["6697:interface=127.0.0.1"])
        self.assertRaises(
            usage.UsageError, parse_options, self, "--irc-tls-port", "ssl:6697"
        )

    def test_guests_may_come_by_the_tls_port_alone(self):
        config = parse_options(self, "--irc-tls-port", "6697", "--irc-guests")
        self.assertEqual((config["irc-ports"], config["irc-guests"]), ([], 1))

    def test_guests_without_a_port_or_a_bad_port_are_usage_errors(self):
        self.assertRaises(usage.UsageError, parse_options, self, "--irc-guests")
        self.assertRaises(usage.UsageError, parse_options, self, "--irc-port", "99999")
        self.assertRaises(
            usage.UsageError, parse_options, self, "--irc-port", "bogus:1"
        )


class ListenerTests(unittest.TestCase):
    timeout = 20

    async def _start(self) -> tuple[RunningServer, int]:
        running = RunningServer(
            self,
            self.mktemp_path(),
            ("--port", LOOPBACK, "--irc-port", LOOPBACK, "--irc-guests"),
        )
        await running.start()
        return running, running.port(1)

    def mktemp_path(self) -> Path:
        return Path(self.mktemp())

    async def _irc(self, port: int, nick: str) -> IRCLines:
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        client = await endpoints.connectProtocol(endpoint, IRCLines())
        self.addCleanup(client.transport.loseConnection)
        client.send(f"NICK {nick}")
        client.send(f"USER {nick} 0 * :{nick}")
        await client.until(" 376 ")
        return client

    @async_test
    async def test_irc_and_line_users_talk_over_real_sockets(self):
        running, irc_port = await self._start()
        line = await running.log_in(await connect(running.port(0)), "lena")
        irc = await self._irc(irc_port, "ivan")
        irc.send("JOIN #lobby")
        await line.wait_for("ivan joined #lobby")
        await line.ok("/public lobby hi ivan")
        self.assertIn("PRIVMSG #lobby :hi ivan", await irc.until("hi ivan"))
        irc.send("PRIVMSG #lobby :hi lena")
        await line.wait_for("[lobby] ivan: hi lena")

    async def _no_delay_of_irc_connection(self, *options: str) -> int:
        running = RunningServer(
            self,
            self.mktemp_path(),
            ("--port", LOOPBACK, "--irc-port", LOOPBACK, "--irc-guests", *options),
        )
        await running.start()
        line = await running.log_in(await connect(running.port(0)), "lena")
        await self._irc(running.port(1), "ivan")
        line_factory, irc_factory = running.server.factories
        [line_side] = line_factory.clients
        [irc_side] = irc_factory.clients
        # The line port's setting is its own.
        self.assertEqual(self._no_delay(line_side), 1)
        await line.ok("/ping")
        return self._no_delay(irc_side)

    @staticmethod
    def _no_delay(server_side) -> int:
        handle = tcp_socket(server_side.transport)
        return handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    @async_test
    async def test_irc_connections_leave_nagle_on_as_other_irc_servers(self):
        self.assertEqual(await self._no_delay_of_irc_connection(), 0)

    @async_test
    async def test_irc_nodelay_sets_tcp_nodelay(self):
        self.assertEqual(await self._no_delay_of_irc_connection("--irc-nodelay"), 1)

    @async_test
    async def test_shutdown_says_goodbye_to_irc_clients(self):
        running, irc_port = await self._start()
        irc = await self._irc(irc_port, "ivan")
        await running.stop()
        self.assertIn("shutting down", await irc.until("ERROR"))


class TLSListenerTests(unittest.TestCase):
    timeout = 20

    @async_test
    async def test_irc_over_tls_on_the_line_ports_certificate(self):
        data_dir = Path(self.mktemp())
        running = RunningServer(
            self,
            data_dir,
            (
                "--port",
                LOOPBACK,
                "--tls-port",
                "0:interface=127.0.0.1",
                "--irc-tls-port",
                "0:interface=127.0.0.1",
                "--irc-guests",
            ),
        )
        await running.start()
        # One certificate, made on the first start, for both TLS ports.
        pem = (data_dir / CERTIFICATE_FILE).read_bytes()
        options = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(pem))
        endpoint = endpoints.wrapClientTLS(
            options, endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", running.port(2))
        )
        irc = await endpoints.connectProtocol(endpoint, IRCLines())
        self.addCleanup(irc.transport.loseConnection)
        irc.send("NICK tess")
        irc.send("USER tess 0 * :Tess")
        await irc.until(" 376 ")
        line = await running.log_in(await connect(running.port(0)), "lena")
        irc.send("JOIN #lobby")
        await line.wait_for("tess joined #lobby")
        await line.ok("/public lobby over tcp")
        self.assertIn("PRIVMSG #lobby :over tcp", await irc.until("over tcp"))
