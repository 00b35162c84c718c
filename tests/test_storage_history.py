"""
History by span and read markers in storage (IRCv3 chathistory and
read-marker), written once for any engine: SQLite here, PostgreSQL where
one is reachable.
"""

from twisted.internet import defer, reactor
from twisted.trial import unittest

from chatroom.storage.database import Database
from chatroom.storage.opening import open_database
from chatroom.storage.schema import migrate
from chatroom.storage.store import LOBBY, ChatStore, HistorySpan
from tests.asynctest import async_test
from tests.cluster_helpers import Schema, postgres_unavailable
from tests.helpers import sqlite_file


class HistoryStorageMixin:
    """Subclasses implement L{open_database}."""

    timeout = 20

    def open_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> defer.Deferred:
        self.db = self.open_database()
        self.addCleanup(lambda: self.db.close() if self.db.pool.running else None)
        self.store = ChatStore(self.db)
        return migrate(self.db)

    async def _lobby_with_messages(self, count: int) -> tuple[int, int]:
        """The lobby's id and its poster's, with messages 1..count at 10*seq ms."""
        user = await self.store.create_user("Ann", "ann", "h", 1)
        (lobby, _) = await self.store.find_room(LOBBY)
        for seq in range(1, count + 1):
            self.store.store_room_message(
                lobby.id, seq, user.id, "Ann", f"m{seq}", seq * 10
            )
        return lobby.id, user.id

    async def _seqs(self, room_id, span, limit, newest) -> list[int]:
        found = await self.store.room_messages_in(room_id, span, limit, newest)
        return [m.seq for m in found]

    @async_test
    async def test_room_messages_by_number_edges_oldest_first(self):
        room, _ = await self._lobby_with_messages(10)
        self.assertEqual(await self._seqs(room, HistorySpan(), 3, True), [8, 9, 10])
        self.assertEqual(await self._seqs(room, HistorySpan(after=4), 2, False), [5, 6])
        self.assertEqual(await self._seqs(room, HistorySpan(before=7), 2, True), [5, 6])
        self.assertEqual(
            await self._seqs(room, HistorySpan(after=2, before=6), 10, False),
            [3, 4, 5],
        )

    @async_test
    async def test_room_messages_by_time_edges_are_exclusive(self):
        room, _ = await self._lobby_with_messages(5)
        span = HistorySpan(after_at=20, before_at=50)
        self.assertEqual(await self._seqs(room, span, 10, False), [3, 4])

    @async_test
    async def test_conversation_holds_both_ways_and_no_one_else(self):
        ann = await self.store.create_user("Ann", "ann", "h", 1)
        bob = await self.store.create_user("Bob", "bob", "h", 1)
        cat = await self.store.create_user("Cat", "cat", "h", 1)
        for at, (sender, recipient) in enumerate(
            [(ann, bob), (bob, ann), (cat, ann), (ann, bob)], start=1
        ):
            await self.store.store_private(
                sender.id, sender.name, recipient.id, f"t{at}", at, delivered=True
            )
        found = await self.store.conversation_in(
            ann.id, bob.id, HistorySpan(), 10, True
        )
        self.assertEqual([m.text for m in found], ["t1", "t2", "t4"])
        self.assertEqual([m.sender_id for m in found], [ann.id, bob.id, ann.id])
        later = await self.store.conversation_in(
            bob.id, ann.id, HistorySpan(after=found[0].id), 1, False
        )
        self.assertEqual([m.text for m in later], ["t2"])

    @async_test
    async def test_latest_times_by_room_and_by_conversation(self):
        room, ann_id = await self._lobby_with_messages(3)
        bob = await self.store.create_user("Bob", "bob", "h", 1)
        await self.store.store_private(bob.id, "Bob", ann_id, "hi", 25, delivered=True)
        self.assertEqual(
            await self.store.latest_room_times([room], 0, 100, 10), [(room, 30)]
        )
        # A room whose last message is past the window is not in it.
        self.assertEqual(await self.store.latest_room_times([room], 0, 30, 10), [])
        self.assertEqual(await self.store.latest_room_times([], 0, 100, 10), [])
        self.assertEqual(
            await self.store.latest_conversation_times(ann_id, 0, 100, 10),
            [("Bob", 25)],
        )
        self.assertEqual(
            await self.store.latest_conversation_times(ann_id, 25, 100, 10), []
        )

    @async_test
    async def test_each_message_keeps_its_kind(self):
        ann = await self.store.create_user("Ann", "ann", "h", 1)
        bob = await self.store.create_user("Bob", "bob", "h", 1)
        (lobby, _) = await self.store.find_room(LOBBY)
        self.store.store_room_message(lobby.id, 1, ann.id, "Ann", "hi", 1)
        self.store.store_room_message(lobby.id, 2, ann.id, "Ann", "psst", 2, "notice")
        found = await self.store.room_messages_in(lobby.id, HistorySpan(), 10, True)
        self.assertEqual([m.kind for m in found], ["message", "notice"])
        last = await self.store.room_history(lobby.id, 10)
        self.assertEqual([m.kind for m in last], ["message", "notice"])
        for at, kind in enumerate(["notice", "message"], start=1):
            await self.store.store_private(
                ann.id, "Ann", bob.id, "t", at, False, kind=kind
            )
        kept = await self.store.undelivered_private(bob.id, 10)
        self.assertEqual([m.kind for m in kept], ["notice", "message"])
        talk = await self.store.conversation_in(bob.id, ann.id, HistorySpan(), 10, True)
        self.assertEqual([m.kind for m in talk], ["notice", "message"])

    @async_test
    async def test_a_read_marker_only_moves_forward(self):
        ann = await self.store.create_user("Ann", "ann", "h", 1)
        self.assertIsNone(await self.store.read_marker(ann.id, "#lobby"))
        self.assertEqual(await self.store.advance_read_marker(ann.id, "#lobby", 50), 50)
        self.assertEqual(await self.store.advance_read_marker(ann.id, "#lobby", 20), 50)
        self.assertEqual(await self.store.advance_read_marker(ann.id, "#lobby", 70), 70)
        self.assertEqual(await self.store.read_marker(ann.id, "#lobby"), 70)
        self.assertIsNone(await self.store.read_marker(ann.id, "bob"))


class SQLiteHistoryTests(HistoryStorageMixin, unittest.TestCase):
    def open_database(self) -> Database:
        return open_database(sqlite_file(self), reactor)


class PostgresHistoryTests(HistoryStorageMixin, unittest.TestCase):
    skip = postgres_unavailable()

    def setUp(self) -> defer.Deferred:
        self.schema = Schema()
        self.addCleanup(self.schema.drop)
        return super().setUp()

    def open_database(self) -> Database:
        database = open_database(self.schema.url, reactor)
        database.start()
        return database
