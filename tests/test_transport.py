"""
The TCP transport the server accepts onto (L{LeanServer}): what Twisted's
keeps per connection, derived when asked for instead, answering the same.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, tcp
from twisted.trial import unittest

from chatroom.protocol.transport import LeanServer, keep_less
from tests.asynctest import async_test
from tests.clients import connect
from tests.realserver import RunningServer, poll


class LeanServerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.running = RunningServer(self, Path(self.mktemp()))
        return defer.ensureDeferred(self.running.start())

    async def accepted(self) -> list:
        """Two connections, and their server-side transports."""
        clients = [await connect(self.running.port()) for _ in range(2)]
        self.running.clients.extend(clients)
        factory = self.running.server.factory
        await poll(lambda: len(factory.clients) == 2)
        return [protocol.transport for protocol in factory.clients]

    @async_test
    async def test_connections_are_accepted_onto_the_lean_transport(self):
        for transport in await self.accepted():
            self.assertIsInstance(transport, LeanServer)

    @async_test
    async def test_log_prefix_and_repr_read_as_twisteds(self):
        for transport in await self.accepted():
            number, host = transport.sessionno, transport.hostname
            self.assertEqual(transport.logPrefix(), f"LineProtocol,{number},{host}")
            port = self.running.port()
            self.assertEqual(repr(transport), f"<LineProtocol #{number} on {port}>")
            self.assertNotIn("logstr", vars(transport))

    @async_test
    async def test_fileno_is_the_sockets_until_it_is_lost(self):
        transport, _ = await self.accepted()
        self.assertEqual(transport.fileno(), transport.socket.fileno())
        protocol = transport.protocol
        transport.loseConnection()
        await poll(lambda: not protocol.connected)
        self.assertEqual(transport.fileno(), -1)

    @async_test
    async def test_connections_from_one_address_share_its_host_string(self):
        first, second = await self.accepted()
        self.assertEqual(first.hostname, "127.0.0.1")
        self.assertIs(first.hostname, second.hostname)
        self.assertIs(first.getPeer().host, second.getPeer().host)


class KeepLessTests(unittest.TestCase):
    def test_a_port_that_is_not_plain_tcp_is_left_alone(self):
        class OtherPort:
            transport = object()

        port = OtherPort()
        self.assertIs(keep_less(port), port)
        self.assertIsNot(port.transport, LeanServer)

    def test_a_tcp_port_with_its_own_transport_is_left_alone(self):
        class OwnServer(tcp.Server):
            pass

        class OwnPort(tcp.Port):
            transport = OwnServer

        port = OwnPort(0, None)
        keep_less(port)
        self.assertIs(port.transport, OwnServer)
