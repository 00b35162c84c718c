"""
The per-message path: what a plain message line costs must not change what
it does.  The activity log skips events below its level before emitting
them; a plain message line takes a path with no coroutine, and answers as
the general path would, in the order of the lines.
"""

from __future__ import annotations

from twisted.logger import LogLevel
from twisted.trial import unittest

from chatroom.storage.activity import last_activity_of
from tests.helpers import ChatWorld


class ActivityLevelTests(unittest.TestCase):
    def test_events_below_the_level_are_not_emitted_but_stored(self):
        events: list[dict] = []
        world = ChatWorld(log_observer=events.append, log_level=LogLevel.info)
        alice = world.user("alice")
        self.assertEqual(alice.command("hello"), "+OK")
        self.assertNotIn("message", [e.get("event") for e in events])
        self.assertIn("register", [e.get("event") for e in events])
        cursor = world.pool.connection.cursor()
        user_id = world.chat.online_by_key["alice"].id
        self.assertIn(
            "message", [entry.event for entry in last_activity_of(cursor, user_id, 10)]
        )

    def test_at_debug_every_event_is_emitted(self):
        events: list[dict] = []
        world = ChatWorld(log_observer=events.append, log_level=LogLevel.debug)
        world.user("alice").command("hello")
        self.assertIn("message", [e.get("event") for e in events])
