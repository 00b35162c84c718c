"""The line port's limits on the IRC port: the line rate as fakelag."""

from __future__ import annotations

from dataclasses import replace

from twisted.trial import unittest

from chatroom.protocol.irc.factory import IRCFactory
from tests.clients import MemoryClient
from tests.helpers import RELAXED, ChatWorld
from tests.test_irc import command_of


class LineRateTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        limits = replace(RELAXED, rate=2.0, burst=3)
        self.irc = IRCFactory(self.world.factory.admission, limits, guests=True)
        self.client = MemoryClient(self.irc, "10.0.0.2")

    def pongs(self) -> int:
        return [command_of(line) for line in self.client.take()].count("PONG")

    def test_lines_over_the_rate_wait_their_turn_and_none_is_dropped(self):
        self.client.write_bytes(b"".join(b"PING :%d\r\n" % n for n in range(8)))
        # The burst, and the line that went into debt; the rest wait unread.
        self.assertEqual(self.pongs(), 4)
        self.world.clock.advance(0.5)
        self.assertEqual(self.pongs(), 1)
        self.world.clock.advance(1.5)
        self.assertEqual(self.pongs(), 3)
        self.assertFalse(self.client.transport.disconnecting)

    def test_a_flooder_is_slowed_not_refused_nor_cut(self):
        self.client.write_bytes(b"PING :x\r\n" * 1000)
        lines = self.client.take()
        self.assertNotIn("FAIL", [command_of(line) for line in lines])
        self.world.clock.advance(10)
        self.client.take()
        self.assertFalse(self.client.transport.disconnecting)

    def test_a_lagged_connection_that_closes_leaves_no_call_behind(self):
        self.client.write_bytes(b"PING :x\r\n" * 10)
        self.assertTrue(self.world.clock.getDelayedCalls())
        self.client.transport.loseConnection()
        self.client.protocol.connectionLost(None)
        self.assertEqual(self.world.clock.getDelayedCalls(), [])


class IdlePingTests(unittest.TestCase):
    def test_a_silent_client_is_pinged_every_interval(self):
        world = ChatWorld()
        limits = replace(RELAXED, ping_interval=10.0)
        irc = IRCFactory(world.factory.admission, limits, guests=True)
        client = MemoryClient(irc, "10.0.0.2")
        client.write("NICK quiet")
        client.write("USER quiet 0 * :Quiet")
        client.take()
        pings = []
        for _ in range(4):
            world.clock.advance(10.0)
            pings.append([command_of(line) for line in client.take()].count("PING"))
        # The first look may find the welcome's traffic; every later one pings.
        self.assertEqual(pings[1:], [1, 1, 1])
