"""
TLS handshakes that never finish: the login timeout cuts them, whatever the
state of TLS, so a few hundred half-open sockets cannot fill the server.
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


class HalfHello(protocol.Protocol):
    def __init__(self) -> None:
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(HALF_A_HELLO)

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


class StalledHandshakeTests(unittest.TestCase):
    timeout = 20

    def setUp(self):
        self.running = RunningServer(
            self,
            Path(self.mktemp()),
            (
                "--port",
                LOOPBACK,
                "--tls-port",
                LOOPBACK_TLS,
                "--login-timeout",
                "0.5",
            ),
        )
        return defer.ensureDeferred(self.running.start())

    @async_test
    async def test_half_finished_handshakes_are_cut_at_the_login_timeout(self):
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.running.port(1))
        clients = []
        for _ in range(SOCKETS):
            client = HalfHello()
            await endpoint.connect(protocol.Factory.forProtocol(lambda c=client: c))
            clients.append(client)
        factory = self.running.server.factory
        await poll(lambda: len(factory.clients) == SOCKETS)
        # Half a second of login timeout, one of grace: all gone well within 5.
        await defer.gatherResults([c.closed for c in clients]).addTimeout(5, reactor)
        await poll(lambda: not factory.clients)
