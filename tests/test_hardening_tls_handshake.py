"""
TLS handshakes that never finish, on every TLS port (the line protocol's
and IRC's): the login timeout cuts them, and a refused connection is cut
soon after its refusal, whatever the state of TLS, so a few hundred
half-open sockets cannot fill the server.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest

from tests.asynctest import async_test
from tests.realserver import LOOPBACK, RunningServer, poll

LOOPBACK_TLS = "0:interface=127.0.0.1"
# The start of a TLS 1.2 ClientHello: a handshake record that promises
# 512 bytes and never sends them.
HALF_A_HELLO = b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20
SOCKETS = 30
# Seconds a test waits for the server to close what it should: well past
# the half second of login timeout and the one of grace.
CLOSED_WITHIN = 5


class Silent(protocol.Protocol):
    """Connects and never says a word: not even a ClientHello."""

    def __init__(self) -> None:
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


class HalfHello(Silent):
    def connectionMade(self) -> None:
        self.transport.write(HALF_A_HELLO)


class TLSPortTestCase(unittest.TestCase):
    """
    A server with a plain port and the TLS port C{tls_option} names, served
    by its C{factory_index}th factory.
    """

    timeout = 20
    tls_option = "--tls-port"
    # The line protocol's one factory serves both its ports.
    factory_index = 0
    options: tuple[str, ...] = ()

    def setUp(self):
        self.running = RunningServer(
            self,
            Path(self.mktemp()),
            ("--port", LOOPBACK, self.tls_option, LOOPBACK_TLS, *self.options),
        )
        return defer.ensureDeferred(self.running.start())

    @property
    def factory(self):
        """The TLS port's factory."""
        return self.running.server.factories[self.factory_index]

    async def connect(self, kind: type[Silent], count: int) -> list[Silent]:
        """C{count} clients of C{kind} on the TLS port, closed at the end."""
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.running.port(1))
        clients = []
        for _ in range(count):
            client = kind()
            await endpoint.connect(protocol.Factory.forProtocol(lambda c=client: c))
            self.addCleanup(client.transport.abortConnection)
            clients.append(client)
        return clients

    async def all_closed(self, clients: list[Silent]) -> None:
        closed = defer.gatherResults([c.closed for c in clients])
        await closed.addTimeout(CLOSED_WITHIN, reactor)


class StalledHandshakeTests(TLSPortTestCase):
    options = ("--login-timeout", "0.5")

    async def check_cut(self, kind: type[Silent]) -> None:
        clients = await self.connect(kind, SOCKETS)
        await poll(lambda: len(self.factory.clients) == SOCKETS)
        await self.all_closed(clients)
        await poll(lambda: not self.factory.clients)

    @async_test
    async def test_half_finished_handshakes_are_cut_at_the_login_timeout(self):
        await self.check_cut(HalfHello)

    @async_test
    async def test_handshakes_never_begun_are_cut_at_the_login_timeout(self):
        await self.check_cut(Silent)


class IRCStalledHandshakeTests(StalledHandshakeTests):
    # IRC's ERROR is buffered when it closes: TLS then waits for the
    # handshake rather than abort.
    tls_option = "--irc-tls-port"
    factory_index = 1


class RefusedHandshakeTests(TLSPortTestCase):
    # A refused connection is not counted: nothing but its own timer cuts it.
    options = ("--max-per-address", "1", "--login-timeout", "60")

    @async_test
    async def test_refused_connections_that_never_handshake_are_cut(self):
        [first] = await self.connect(Silent, 1)
        await poll(lambda: len(self.factory.clients) == 1)
        refused = await self.connect(Silent, SOCKETS)
        await self.all_closed(refused)
        self.assertFalse(first.closed.called)
        self.assertEqual(len(self.factory.clients), 1)


class IRCRefusedHandshakeTests(RefusedHandshakeTests):
    tls_option = "--irc-tls-port"
    factory_index = 1
