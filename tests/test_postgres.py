"""
The storage layer on a real PostgreSQL: the same schema, migrations and
queries as on SQLite, each test class in a schema of its own.
"""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.trial import unittest

from chatroom.errors import NameTaken, RoomExists
from chatroom.storage.opening import open_database
from chatroom.storage.schema import SCHEMA_VERSION, migrate
from chatroom.storage.store import ChatStore
from tests.cluster_helpers import Schema, postgres_unavailable


class PostgresTestCase(unittest.TestCase):
    """A migrated database in a throwaway schema: C{self.db}, C{self.store}."""

    skip = postgres_unavailable()

    @defer.inlineCallbacks
    def setUp(self):
        self.schema = Schema()
        self.addCleanup(self.schema.drop)
        self.db = self.open()
        yield migrate(self.db)
        self.store = ChatStore(self.db)

    def open(self):
        database = open_database(self.schema.url, reactor)
        database.start()
        self.addCleanup(database.close)
        return database


class PostgresStoreTests(PostgresTestCase):
    @defer.inlineCallbacks
    def test_new_user_is_in_the_lobby(self):
        user = yield self.store.create_user("Ann", "ann", "hash", 1)
        rooms = yield self.store.load_rooms()
        members = yield self.store.load_memberships()
        self.assertEqual([r.name for r in rooms], ["lobby"])
        self.assertEqual(members, [(rooms[0].id, user.id, "Ann")])
        self.assertEqual(user.default_room_id, rooms[0].id)

    @defer.inlineCallbacks
    def test_names_are_unique_regardless_of_case(self):
        yield self.store.create_user("Ann", "ann", "hash", 1)
        yield self.assertFailure(
            self.store.create_user("ANN", "ann", "hash", 2), NameTaken
        )

    @defer.inlineCallbacks
    def test_a_clash_in_a_batch_does_not_undo_its_batch_mates(self):
        # Queued together, these commit in one transaction: the clash rolls
        # back to its savepoint only.
        first = self.store.create_user("Ann", "ann", "hash", 1)
        clash = self.store.create_user("ann", "ann", "hash", 1)
        other = self.store.create_user("Bob", "bob", "hash", 1)
        yield first
        yield self.assertFailure(clash, NameTaken)
        yield other
        users = yield self.store.list_users()
        self.assertEqual([name for _, name, _ in users], ["Ann", "Bob"])

    @defer.inlineCallbacks
    def test_room_names_are_unique(self):
        user = yield self.store.create_user("Ann", "ann", "hash", 1)
        yield self.store.create_room("Den", "den", user.id, 2)
        yield self.assertFailure(
            self.store.create_room("DEN", "den", user.id, 3), RoomExists
        )

    @defer.inlineCallbacks
    def test_history_is_the_last_messages_oldest_first(self):
        user = yield self.store.create_user("Ann", "ann", "hash", 1)
        lobby = user.default_room_id
        writes = [
            self.store.store_room_message(lobby, seq, user.id, "Ann", f"m{seq}", seq)
            for seq in range(1, 6)
        ]
        yield defer.gatherResults(writes)
        history = yield self.store.room_history(lobby, 3)
        self.assertEqual([m.text for m in history], ["m3", "m4", "m5"])
        rooms = yield self.store.load_rooms()
        self.assertEqual(rooms[0].last_seq, 5)

    @defer.inlineCallbacks
    def test_kept_private_messages_are_delivered_once(self):
        ann = yield self.store.create_user("Ann", "ann", "hash", 1)
        bob = yield self.store.create_user("Bob", "bob", "hash", 1)
        yield self.store.store_private(ann.id, "Ann", bob.id, "hi", 5, False)
        yield self.store.store_private(ann.id, "Ann", bob.id, "seen", 6, True)
        kept = yield self.store.undelivered_private(bob.id, 10)
        self.assertEqual([m.text for m in kept], ["hi"])
        yield self.store.mark_delivered([m.id for m in kept], 7)
        self.assertEqual((yield self.store.undelivered_private(bob.id, 10)), [])

    @defer.inlineCallbacks
    def test_activity_log(self):
        yield self.store.record_activity(1, None, "x", "connect", "1.2.3.4")
        user = yield self.store.create_user("Ann", "ann", "hash", 1)
        yield self.store.record_activity(2, user.id, "Ann", "login", "here")
        entries = yield self.store.activity_of(user.id, 10)
        self.assertEqual([(e.event, e.detail) for e in entries], [("login", "here")])


class PostgresMigrationTests(unittest.TestCase):
    skip = postgres_unavailable()

    @defer.inlineCallbacks
    def test_nodes_starting_together_migrate_once(self):
        schema = Schema()
        self.addCleanup(schema.drop)
        nodes = []
        for _ in range(3):
            database = open_database(schema.url, reactor)
            database.start()
            self.addCleanup(database.close)
            nodes.append(database)
        versions = yield defer.gatherResults([migrate(db) for db in nodes])
        self.assertEqual(versions, [SCHEMA_VERSION] * 3)
        rooms = yield ChatStore(nodes[0]).load_rooms()
        self.assertEqual([r.name for r in rooms], ["lobby"])
