"""
A room message is fanned out as soon as it is numbered and its write is
queued; its sender's C{+OK} waits for the commit.  Every write batch here is
held until the test commits (or fails) it.
"""

from __future__ import annotations

import sqlite3

from twisted.trial import unittest

from chatroom.storage.messages import last_room_messages
from tests.helpers import ChatWorld, HeldWrites

SERVER_ERROR = "-ERR server-error the server could not do that now"


class DeliverBeforeCommitTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.carol = self.world.user("carol")
        self.assertTrue(self.alice.command("/c den").startswith("+OK"))
        self.assertTrue(self.bob.command("/j den").startswith("+OK"))
        for client in (self.alice, self.bob, self.carol):
            client.take()
        self.writes = HeldWrites(self.world)

    def stored(self, room: str) -> list[tuple[int, str]]:
        room_id = self.world.chat.rooms.find(room).id
        cursor = self.world.pool.connection.cursor()
        return [(m.seq, m.text) for m in last_room_messages(cursor, room_id, 100)]

    def test_members_see_it_before_the_sender_hears_ok(self):
        self.alice.write("hello")
        self.assertEqual(self.bob.take(), ["[lobby] alice: hello"])
        self.assertEqual(self.carol.take(), ["[lobby] alice: hello"])
        self.assertEqual(self.alice.take(), [])
        self.assertEqual(self.stored("lobby"), [])
        self.writes.commit()
        self.assertEqual(self.alice.take(), ["+OK"])
        self.assertEqual(self.stored("lobby"), [(1, "hello")])

    def test_pipelined_messages_all_go_out_before_any_commit(self):
        self.alice.write_bytes(b"one\ntwo\nthree\n")
        self.assertEqual(
            self.bob.take(),
            ["[lobby] alice: one", "[lobby] alice: two", "[lobby] alice: three"],
        )
        self.assertEqual(self.alice.take(), [])
        self.writes.commit_all()
        self.assertEqual(self.alice.take(), ["+OK"] * 3)

    def test_every_member_gets_each_rooms_messages_in_number_order(self):
        said = [
            (self.alice, "a1"),
            (self.bob, "/public den b1"),
            (self.carol, "c1"),
            (self.alice, "/public den a2"),
            (self.bob, "b2"),
        ]
        for index, (client, line) in enumerate(said):
            client.write(line)
            if index == 2:
                # Some commit with the first batch, the rest in the next ones.
                self.writes.commit()
        # What each member has before the last commits...
        received = {
            name: client.take()
            for name, client in (
                ("alice", self.alice),
                ("bob", self.bob),
                ("carol", self.carol),
            )
        }
        self.writes.commit_all()
        # ...is each room's messages in the order of their numbers.
        lobby = [text for _, text in self.stored("lobby")]
        den = [text for _, text in self.stored("den")]
        self.assertEqual(lobby, ["a1", "c1", "b2"])
        self.assertEqual(den, ["b1", "a2"])
        senders = {"a": "alice", "b": "bob", "c": "carol"}

        def shown(room: str, texts: list[str], reader: str) -> list[str]:
            return [
                f"[{room}] {senders[t[0]]}: {t}"
                for t in texts
                if senders[t[0]] != reader
            ]

        for name, lines in received.items():
            room_lines = [line for line in lines if line.startswith("[")]
            expected_lobby = shown("lobby", lobby, name)
            expected_den = shown("den", den, name) if name != "carol" else []
            self.assertEqual(
                [line for line in room_lines if line.startswith("[lobby]")],
                expected_lobby,
            )
            self.assertEqual(
                [line for line in room_lines if line.startswith("[den]")],
                expected_den,
            )

    def test_a_failed_write_answers_server_error_and_the_room_goes_on(self):
        unused = []
        chat = self.world.chat
        seq_unused = chat.seq_unused
        self.patch(
            chat,
            "seq_unused",
            lambda room, seq: (unused.append((room.name, seq)), seq_unused(room, seq)),
        )
        self.alice.write("lost")
        self.assertEqual(self.bob.take(), ["[lobby] alice: lost"])
        self.writes.fail(sqlite3.OperationalError("disk I/O error"))
        self.assertEqual(self.alice.take(), [SERVER_ERROR])
        self.assertEqual(unused, [("lobby", 1)])
        # Logged with its batch, as any failed commit.
        self.assertTrue(self.flushLoggedErrors(sqlite3.OperationalError))
        self.assertFalse(self.alice.closing)
        self.alice.write("next")
        self.writes.commit_all()
        self.assertEqual(self.alice.take(), ["+OK"])
        self.assertEqual(self.bob.take(), ["[lobby] alice: next"])
        # The failed number stays a hole: the next message never reuses it.
        self.assertEqual(self.stored("lobby"), [(2, "next")])

    def test_history_shows_what_a_member_was_shown(self):
        self.alice.write("hello")
        self.assertEqual(self.bob.take(), ["[lobby] alice: hello"])
        # Asked before the commit: read once it is in.
        self.bob.write("/history")
        self.assertEqual(self.bob.take(), [])
        self.writes.commit_all()
        reply = self.bob.take()
        self.assertEqual(reply[-1], "+OK 1 message")
        self.assertTrue(reply[0].endswith("[lobby] alice: hello"), reply)
