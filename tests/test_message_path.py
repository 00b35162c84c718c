"""
The per-message path: what a plain message line costs must not change what
it does.  The activity log skips events below its level before emitting
them; a plain message line takes a path with no coroutine, and answers as
the general path would, in the order of the lines.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from twisted.internet import defer
from twisted.logger import LogLevel
from twisted.trial import unittest

from chatroom.protocol.line import commands
from chatroom.protocol.line.protocol import LineProtocol
from chatroom.service.at_once import NOT_YET, result_now
from chatroom.service.avatar import Session
from chatroom.storage.activity import last_activity_of
from tests.helpers import ChatWorld, HeldWrites, fired


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


# Lines of every kind, in one read: messages (refused ones too) around
# commands that wait for them, and commands that make later lines wait.
SCRIPT = [
    "hello",
    "",
    "\x1b[31mred",
    "x" * 5000,
    "/rooms",
    "after rooms",
    "//slash",
    "/public lobby pub",
    "/c dev",
    "behind a command",
    "/cd dev",
    "in dev",
    "/bogus",
    "last",
]


class FastPathTests(unittest.TestCase):
    def world(self, fast: bool = True) -> tuple[ChatWorld, HeldWrites, list]:
        world = ChatWorld()
        alice, bob = world.user("alice"), world.user("bob")
        if not fast:
            self.patch(LineProtocol, "answer_at_once", lambda self, line: None)
        return world, HeldWrites(world), [alice, bob]

    def run_script(self, fast: bool) -> tuple[list[str], list[str], list]:
        world, writes, (alice, bob) = self.world(fast)
        alice.write_bytes("".join(line + "\n" for line in SCRIPT).encode())
        seen_before_commit = alice.take()
        writes.commit_all()
        messages = world.pool.connection.execute(
            "SELECT text FROM messages ORDER BY rowid"
        ).fetchall()
        return seen_before_commit + alice.take(), bob.take(), messages

    def test_replies_and_deliveries_are_those_of_the_general_path(self):
        fast = self.run_script(fast=True)
        general = self.run_script(fast=False)
        self.assertEqual(fast, general)
        replies = fast[0]
        self.assertEqual(replies[0], "+OK")
        self.assertTrue(replies[1].startswith("-ERR"), replies)
        self.assertTrue(replies[2].startswith("-ERR"), replies)
        self.assertIn("[lobby] alice: after rooms", fast[1])

    def test_a_plain_message_makes_no_coroutine(self):
        world, writes, (alice, bob) = self.world()
        self.patch(commands, "dispatch", None)
        self.patch(LineProtocol, "answer", None)
        alice.write("hello")
        self.assertEqual(bob.take(), ["[lobby] alice: hello"])
        # +OK only once committed.
        self.assertEqual(alice.take(), [])
        writes.commit_all()
        self.assertEqual(alice.take(), ["+OK"])

    def test_ok_waits_for_the_reply_of_the_command_before_it(self):
        world, writes, (alice, bob) = self.world()
        held: list[defer.Deferred] = []

        async def slow_rooms(conn, args):
            d = defer.Deferred()
            held.append(d)
            await d
            return commands.Reply("rooms done")

        rooms = replace(commands.COMMANDS["rooms"], handler=slow_rooms)
        self.patch(commands, "COMMANDS", {**commands.COMMANDS, "rooms": rooms})
        answered: list[str] = []
        answer = LineProtocol.answer

        def counting(protocol, line):
            answered.append(line.text)
            return answer(protocol, line)

        self.patch(LineProtocol, "answer", counting)
        # /rooms is not pipelined: the message behind it waits, then runs.
        alice.write_bytes(b"one\n/rooms\ntwo\n")
        writes.commit_all()
        self.assertEqual(alice.take(), ["+OK"])
        held[0].callback(None)
        writes.commit_all()
        self.assertEqual(alice.take(), ["+OK rooms done", "+OK"])
        self.assertEqual(bob.take(), ["[lobby] alice: one", "[lobby] alice: two"])
        # The held message, started once /rooms answered, took no coroutine.
        self.assertEqual(answered, ["/rooms"])

    def test_a_later_commit_waits_for_the_earlier_reply(self):
        world, writes, (alice, bob) = self.world()
        # Its login, a command, left no pipeline: one as the next line makes.
        pipeline = alice.protocol._reply_pipeline()
        first, second = defer.Deferred(), defer.Deferred()
        pipeline.run_message(first)
        pipeline.run_message(second)
        second.callback(b"+OK second\r\n")
        self.assertEqual(alice.take(), [])
        first.callback(b"+OK first\r\n")
        self.assertEqual(alice.take(), ["+OK first", "+OK second"])
        self.assertEqual(world.factory.in_flight.count, 0)

    def test_an_unexpected_failure_answers_server_error(self):
        world, writes, (alice, bob) = self.world()

        def broken(session, room, text):
            raise RuntimeError("bug")

        self.patch(Session, "say", broken)
        alice.write("hello")
        self.assertEqual(
            alice.take(), ["-ERR server-error the server could not do that now"]
        )
        self.assertTrue(self.flushLoggedErrors(RuntimeError))
        self.assertEqual(world.factory.in_flight.count, 0)

    def test_before_login_a_plain_line_is_still_a_name(self):
        world = ChatWorld()
        client = world.connect()
        self.assertEqual(
            client.command("carol"),
            "+OK carol is new: type a password to create the account",
        )
        # The password is not a message either.
        self.assertEqual(client.command("secret pw"), "+OK welcome, carol")


class ResultNowTests(unittest.TestCase):
    def test_a_fired_result_is_taken(self):
        self.assertEqual(result_now(defer.succeed(7)), 7)

    def test_anything_else_is_not_yet(self):
        self.assertIs(result_now(defer.Deferred()), NOT_YET)
        failed = defer.fail(ValueError())
        self.assertIs(result_now(failed), NOT_YET)
        failed.addErrback(lambda _: None)
        waiting = defer.Deferred()
        chained = defer.succeed(None)
        chained.addCallback(lambda _: waiting)
        self.assertIs(result_now(chained), NOT_YET)


class UnacknowledgedRowTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.writes = HeldWrites(self.world)
        self.db = self.world.database

    def activity(self) -> list[str]:
        rows = self.world.pool.connection.execute("SELECT event FROM activity")
        return [event for (event,) in rows.fetchall()]

    def test_a_row_nobody_waits_for_is_written_with_its_batch(self):
        store = self.world.chat.store
        self.assertIsNone(store.record_activity(1, None, "x", "quiet", "", False))
        waited = store.record_activity(2, None, "x", "waited", "")
        self.writes.commit_all()
        self.assertIsNone(fired(waited))
        self.assertEqual(self.activity()[-2:], ["quiet", "waited"])

    def test_a_failed_batch_fails_only_those_who_wait(self):
        store = self.world.chat.store
        # In flight: the next two go in one batch behind it.
        store.record_activity(0, None, "x", "first", "")
        store.record_activity(1, None, "x", "quiet", "", False)
        waited = store.record_activity(2, None, "x", "waited", "")
        self.writes.commit()
        self.writes.fail(sqlite3.OperationalError("disk I/O error"))
        self.assertRaises(sqlite3.OperationalError, fired, waited)
        self.assertTrue(self.flushLoggedErrors(sqlite3.OperationalError))
        self.assertNotIn("quiet", self.activity())
