"""
What every front end's connection shares (L{chatroom.protocol.connection}):
shutdown waits for their lines, the one login sweep, what is built only
when it is needed.
"""

from __future__ import annotations

from twisted.trial import unittest

from chatroom.protocol.irc.factory import IRCFactory
from tests.clients import MemoryClient
from tests.helpers import RELAXED, ChatWorld, HeldWrites


class IRCAnsweredTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.irc = IRCFactory(self.world.factory.admission, RELAXED, guests=True)
        self.alice = MemoryClient(self.irc, "10.0.0.2")
        self.alice.write("NICK alice")
        self.alice.write("USER alice 0 * :Alice")
        self.alice.write("JOIN #lobby")
        self.alice.take()

    def test_shutdown_waits_for_an_irc_line_still_being_stored(self):
        held = HeldWrites(self.world)
        self.alice.write("PRIVMSG #lobby :hello")
        self.assertEqual(self.irc.in_flight.count, 1)
        answered = self.irc.all_answered()
        self.assertFalse(answered.called)
        held.commit_all()
        self.assertTrue(answered.called)
        self.assertEqual(self.irc.in_flight.count, 0)

    def test_a_line_answered_at_once_is_not_counted(self):
        self.alice.write("PING :x")
        self.assertEqual(self.irc.in_flight.count, 0)
        self.assertTrue(self.irc.all_answered().called)
