"""
Storage alone: the pool wrapper's group commit, the migrations, and the
store's statements.  The tests are written once in L{DatabaseTestsMixin};
each engine subclasses it with L{open_database}.
"""

import os
import sqlite3
import stat
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.logger import Logger
from twisted.trial import unittest

from chatroom.errors import (
    AlreadyMember,
    AuthFailed,
    MailboxFull,
    NameTaken,
    RoomExists,
    TooManyRoomsCreated,
)
from chatroom.storage import database as database_module
from chatroom.storage import schema
from chatroom.storage.activity import INSERT_ACTIVITY
from chatroom.storage.database import Database, ManyRows, row_chunks
from chatroom.storage.opening import open_database
from chatroom.storage.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from chatroom.storage.store import LOBBY, ChatStore, ModeWrite, NameHolder
from tests.asynctest import async_test
from tests.cluster_helpers import Schema, postgres_unavailable
from tests.helpers import sqlite_file


class _Boom(Exception):
    """An operation failing on purpose."""


def _insert_activity(detail: str):
    def insert(cursor):
        cursor.execute(
            "INSERT INTO activity (at, user_id, actor, event, detail)"
            " VALUES (?, ?, ?, ?, ?)",
            (0, None, "test", "test", detail),
        )
        return detail

    return insert


def insert_test_activity(cursor, detail: str) -> str:
    return _insert_activity(detail)(cursor)


def fail_on_purpose(cursor) -> None:
    raise _Boom()


def _activity_details(cursor) -> list[str]:
    cursor.execute("SELECT detail FROM activity WHERE event = 'test' ORDER BY id")
    return [row[0] for row in cursor.fetchall()]


class DatabaseTestsMixin:
    """
    The storage contract, for any engine.  Subclasses implement
    L{open_database}, and each call must reach the same, initially empty,
    database for the duration of one test.
    """

    timeout = 20

    def open_database(self) -> Database:
        """Open (and start) a new connection pool on this test's database."""
        raise NotImplementedError

    def setUp(self) -> defer.Deferred:
        self.db = self._open()
        self.store = ChatStore(self.db)
        return migrate(self.db)

    def _open(self) -> Database:
        db = self.open_database()
        self.addCleanup(lambda: db.close() if db.pool.running else None)
        return db

    def _count_batches(self) -> list[int]:
        """Record the size of every batch the database commits from now on."""
        sizes: list[int] = []
        run_batch = self.db._run_batch

        def counting(transaction, batch):
            sizes.append(len(batch))
            return run_batch(transaction, batch)

        self.patch(self.db, "_run_batch", counting)
        return sizes

    # Migrations

    @async_test
    async def test_migrating_again_changes_nothing(self):
        self.assertEqual(await migrate(self.db), SCHEMA_VERSION)
        reopened = self._open()
        self.assertEqual(await migrate(reopened), SCHEMA_VERSION)
        rooms = await ChatStore(reopened).load_rooms()
        self.assertEqual([room.name for room in rooms], [LOBBY])

    @async_test
    async def test_migration_applies_only_what_is_missing(self):
        applied = SCHEMA_VERSION + 1
        self.patch(
            schema,
            "MIGRATIONS",
            [*schema.MIGRATIONS, ["CREATE TABLE added_later (id {id_pk})"]],
        )
        self.patch(schema, "SCHEMA_VERSION", applied)
        self.assertEqual(await migrate(self.db), applied)

        def tables(cursor):
            cursor.execute("SELECT COUNT(*) FROM added_later")
            return cursor.fetchone()[0]

        self.assertEqual(await self.db.read(tables), 0)
        # Were the first migration run again, the lobby would clash.
        self.assertEqual(len(await self.store.load_rooms()), 1)

    @async_test
    async def test_messages_stored_before_kinds_were_are_plain_messages(self):
        db, store = self.db, self.store
        ann = await store.create_user("Ann", "ann", "h", 1)
        (lobby, _) = await store.find_room(LOBBY)

        # The version before the one that gave messages their kind.
        before = next(
            number
            for number, statements in enumerate(MIGRATIONS)
            if any("ADD COLUMN kind" in statement for statement in statements)
        )

        # Only up to the kinds: a later migration would find its work done.
        self.patch(schema, "MIGRATIONS", MIGRATIONS[: before + 1])
        self.patch(schema, "SCHEMA_VERSION", before + 1)

        def old_rows(cursor):
            # The database as that version left it, with a message of each.
            cursor.execute("ALTER TABLE messages DROP COLUMN kind")
            cursor.execute("ALTER TABLE private_messages DROP COLUMN kind")
            cursor.execute("UPDATE schema_version SET version = ?", (before,))
            cursor.execute(
                "INSERT INTO messages (room_id, seq, sender_id, sender, text,"
                " created_at) VALUES (?, 1, ?, 'Ann', 'hi', 1)",
                (lobby.id, ann.id),
            )
            cursor.execute(
                "INSERT INTO private_messages (sender_id, sender, recipient_id,"
                " text, created_at) VALUES (?, 'Ann', ?, 'kept', 1)",
                (ann.id, ann.id),
            )

        await db.write(old_rows)
        self.assertEqual(await migrate(db), before + 1)
        (message,) = await store.room_history(lobby.id, 10)
        self.assertEqual(message.kind, "message")
        (kept,) = await store.undelivered_private(ann.id, 10)
        self.assertEqual(kept.kind, "message")

    @async_test
    async def test_database_newer_than_the_server_is_refused(self):
        await self.db.write(
            lambda cursor: cursor.execute(
                "UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,)
            )
        )
        with self.assertRaises(RuntimeError):
            await migrate(self._open())
        self.flushLoggedErrors(RuntimeError)

    # Group commit

    @async_test
    async def test_writes_submitted_together_share_a_few_commits(self):
        sizes = self._count_batches()
        writes = [self.db.write(_insert_activity(str(i))) for i in range(100)]
        fired: list[str] = []
        for d in writes:
            d.addCallback(fired.append)
        await defer.gatherResults(writes)
        self.assertLessEqual(len(sizes), 2)
        self.assertEqual(sum(sizes), 100)
        # Each Deferred fires with its own operation's result, in order.
        self.assertEqual(fired, [str(i) for i in range(100)])
        self.assertEqual(
            await self.db.read(_activity_details), [str(i) for i in range(100)]
        )

    @async_test
    async def test_a_message_to_a_room_deleted_in_its_batch_goes_with_it(self):
        # Rows run after a batch's operations: the insert broke the foreign
        # key, and failed the deletion and every other write of the batch.
        (lobby,) = [r.id for r in await self.store.load_rooms() if r.name == LOBBY]
        room_id = await self.store.create_room("den", "den", None, 0)
        sizes = self._count_batches()
        self.db.write(_insert_activity("first"))
        message = self.store.store_room_message(room_id, 1, None, "al", "hi", 0)
        other = self.store.store_room_message(lobby, 1, None, "al", "hi", 0)
        deleted = self.store.delete_room(room_id, "#den")
        after = self.store.store_room_message(room_id, 2, None, "al", "late", 0)
        await defer.gatherResults([message, other, deleted, after])
        self.assertEqual(sizes, [1, 4])
        self.assertNotIn("den", [r.name for r in await self.store.load_rooms()])
        self.assertEqual(len(await self.store.room_history(lobby, 10)), 1)

    @async_test
    async def test_a_ban_on_a_room_deleted_in_its_batch_fails_nothing(self):
        room_id = await self.store.create_room("den", "den", None, 0)
        self.db.write(_insert_activity("first"))
        deleted = self.store.delete_room(room_id, "#den")
        ban = ModeWrite(room_id, "nt", None, 0, (), (("bob!*@*", "al", 0),))
        banned = self.store.store_modes(ban)
        other = self.db.write(_insert_activity("other"))
        await defer.gatherResults([deleted, banned, other])
        self.assertEqual((await self.store.load_moderation()).bans, [])

    @async_test
    async def test_batches_are_bounded(self):
        self.patch(database_module, "MAX_BATCH", 10)
        sizes = self._count_batches()
        await defer.gatherResults(
            [self.db.write(_insert_activity(str(i))) for i in range(25)]
        )
        self.assertEqual(sizes, [1, 10, 10, 4])

    @async_test
    async def test_failing_guarded_write_does_not_undo_its_batch_mates(self):
        sizes = self._count_batches()
        self.db.write(_insert_activity("first"))

        def insert_then_fail(cursor):
            _insert_activity("undone")(cursor)
            raise _Boom()

        before = self.db.write(_insert_activity("before"))
        failing = self.db.write(insert_then_fail, guarded=True)
        after = self.db.write(_insert_activity("after"))
        self.assertEqual(await before, "before")
        await self.assertFailure(failing, _Boom)
        self.assertEqual(await after, "after")
        self.assertEqual(sizes, [1, 3])
        self.assertEqual(
            await self.db.read(_activity_details), ["first", "before", "after"]
        )

    @async_test
    async def test_failing_batch_fails_every_write_in_it_and_commits_none(self):
        sizes = self._count_batches()
        self.db.write(_insert_activity("first"))

        def fail(cursor):
            raise _Boom()

        batch = [
            self.db.write(_insert_activity("lost")),
            self.db.write(fail),
            self.db.write(_insert_activity("lost too")),
        ]
        for d in batch:
            await self.assertFailure(d, _Boom)
        self.assertEqual(sizes, [1, 3])
        self.flushLoggedErrors(_Boom)
        # The database goes on: the next write commits.
        self.assertEqual(await self.db.write(_insert_activity("next")), "next")
        self.assertEqual(await self.db.read(_activity_details), ["first", "next"])

    @async_test
    async def test_a_failed_batch_is_logged_with_the_names_of_its_operations(self):
        events: list[dict] = []
        self.patch(self.db, "log", Logger(observer=events.append))
        self.db.write(_insert_activity("first"))
        row = (0, None, "test", "test", "row")
        batch = [
            self.db.write(insert_test_activity, "lost"),
            self.db.write(fail_on_purpose),
            self.db.append(INSERT_ACTIVITY, row),
            self.db.append(INSERT_ACTIVITY, row),
            self.db.write(fail_on_purpose),
        ]
        for d in batch:
            await self.assertFailure(d, _Boom)
        [event] = events
        self.assertEqual(event["size"], 5)
        self.assertEqual(
            event["operations"],
            "insert_test_activity, fail_on_purpose x2, append activity x2",
        )
        self.assertEqual(await self.db.read(_activity_details), ["first"])

    @async_test
    async def test_appended_rows_commit_in_order_one_executemany_per_statement(self):
        statements: list[str] = []
        executemany = database_module.Cursor.executemany

        def counting(cursor, statement, rows):
            statements.append(statement)
            return executemany(cursor, statement, rows)

        self.patch(database_module.Cursor, "executemany", counting)
        sizes = self._count_batches()
        self.db.write(_insert_activity("first"))
        rows = [
            self.db.append(
                "INSERT INTO activity (at, user_id, actor, event, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (0, None, "test", "test", str(i)),
            )
            for i in range(50)
        ]
        between = self.db.write(_insert_activity("an operation"))
        self.assertEqual(await defer.gatherResults(rows), [None] * 50)
        self.assertEqual(await between, "an operation")
        self.assertEqual(sizes, [1, 51])
        self.assertEqual(len(statements), 1)
        # A batch runs its operations, then its rows, each table's in order.
        self.assertEqual(
            await self.db.read(_activity_details),
            ["first", "an operation", *[str(i) for i in range(50)]],
        )

    @async_test
    async def test_many_rows_take_a_few_statements_and_keep_their_order(self):
        # One statement a row let the database thread wait for the GIL once
        # a row while the reactor was busy.
        statements: list[str] = []
        execute = database_module.Cursor.execute

        def counting(cursor, statement, params=()):
            statements.append(statement)
            return execute(cursor, statement, params)

        self.patch(database_module.Cursor, "execute", counting)
        self.db.write(_insert_activity("first"))
        rows = [
            self.db.append(INSERT_ACTIVITY, (0, None, "test", "test", str(i)))
            for i in range(700)
        ]
        await defer.gatherResults(rows)
        inserts = [s for s in statements if s.startswith("INSERT INTO activity")]
        # 700 = 5 x 128 + 32 + 16 + 8 + 4, and the first batch's own insert.
        self.assertEqual(len(inserts), 1 + 9)
        self.assertEqual(
            await self.db.read(_activity_details),
            ["first", *[str(i) for i in range(700)]],
        )

    @async_test
    async def test_room_messages_of_guests_and_members_are_stored_in_one_batch(self):
        (lobby,) = [r.id for r in await self.store.load_rooms() if r.name == LOBBY]
        user = await self.store.create_user("al", "al", "hash", 0)
        self.db.write(_insert_activity("first"))
        stored = [
            self.store.store_room_message(lobby, seq, sender, "al", f"m{seq}", seq)
            for seq, sender in ((1, None), (2, user.id), (3, None))
        ]
        await defer.gatherResults(stored)
        history = await self.store.room_history(lobby, 10)
        self.assertEqual(
            [(m.seq, m.text, m.created_at) for m in history],
            [(1, "m1", 1), (2, "m2", 2), (3, "m3", 3)],
        )

    @async_test
    async def test_a_failing_row_fails_its_whole_batch(self):
        self.db.write(_insert_activity("first"))
        batch = [
            self.db.write(_insert_activity("lost")),
            self.db.append("INSERT INTO no_such_table VALUES (?)", (1,)),
        ]
        for d in batch:
            await self.assertFailure(d, Exception)
        self.flushLoggedErrors()
        self.assertEqual(await self.db.read(_activity_details), ["first"])

    @async_test
    async def test_flushed_waits_for_every_write_queued_so_far(self):
        for i in range(5):
            self.db.write(_insert_activity(str(i)))
        await self.db.flushed()
        self.assertEqual(len(await self.db.read(_activity_details)), 5)

    @async_test
    async def test_close_commits_queued_writes_first(self):
        for i in range(5):
            self.db.write(_insert_activity(str(i)))
        await self.db.close()
        self.assertEqual(len(await self._open().read(_activity_details)), 5)

    # Named transactions

    @async_test
    async def test_every_transaction_of_the_store_is_a_named_function(self):
        names: list[str] = []
        for method in ("read", "write"):
            run = getattr(self.db, method)

            def recording(operation, *args, run=run, **kwargs):
                # A row of Database.append is data, not a function.
                names.append(getattr(operation, "__qualname__", "a row"))
                return run(operation, *args, **kwargs)

            self.patch(self.db, method, recording)
        store = self.store
        alice = await store.create_user("alice", "alice", "hash", 0)
        await store.find_user("alice")
        await store.get_user(alice.id)
        await store.rename_user(alice.id, "Alice", "alice")
        await store.set_password_hash(alice.id, "hash2")
        await store.list_users()
        room_id = await store.create_room("dev", "dev", alice.id, 0)
        await store.set_default_room(alice.id, room_id)
        await store.load_rooms()
        await store.load_memberships()
        await store.remove_member(room_id, alice.id)
        await store.add_member(room_id, alice.id, 0)
        await store.store_room_message(room_id, 1, alice.id, "Alice", "hi", 0)
        await store.room_history(room_id, 10)
        await store.store_private(alice.id, "Alice", alice.id, "kept", 0, False, 5)
        kept = await store.undelivered_private(alice.id, 10)
        await store.mark_delivered([m.id for m in kept], 1)
        await store.record_activity(0, alice.id, "Alice", "join", "#dev")
        await store.record_activity(0, None, "10.0.0.1", "connect", "")
        await store.activity_of(alice.id, 10)
        await store.delete_activity_before(1, 10)
        await store.find_name_holder("alice")
        await store.release_name("alice")
        await store.change_password_hash(alice.id, "hash2", "hash3")
        await migrate(self.db)
        unnamed = [name for name in names if "<" in name]
        self.assertEqual(unnamed, [])
        self.assertIn("find_user_by_key", names)
        self.assertIn("migrate_schema", names)

    # Users

    @async_test
    async def test_new_user_is_in_the_lobby_with_it_as_default(self):
        user = await self.store.create_user("Alice", "alice", "hash", 0)
        lobby = (await self.store.load_rooms())[0]
        self.assertEqual(user.default_room_id, lobby.id)
        self.assertEqual(
            await self.store.load_memberships(), [(lobby.id, user.id, "Alice")]
        )
        self.assertEqual(await self.store.find_user("alice"), user)
        self.assertEqual(await self.store.get_user(user.id), user)

    @async_test
    async def test_user_names_are_unique_by_name_key(self):
        await self.store.create_user("Alice", "alice", "hash", 0)
        await self.assertFailure(
            self.store.create_user("ALICE", "alice", "hash", 0), NameTaken
        )
        self.assertEqual(len(await self.store.list_users()), 1)

    @async_test
    async def test_same_name_twice_in_one_batch_creates_one_user(self):
        self.db.write(lambda cursor: None)
        first = self.store.create_user("bob", "bob", "hash", 0)
        second = self.store.create_user("Bob", "bob", "hash", 0)
        self.assertEqual((await first).name, "bob")
        await self.assertFailure(second, NameTaken)

    @async_test
    async def test_rename_to_another_users_name_key_is_refused(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        await self.store.create_user("bob", "bob", "hash", 0)
        await self.assertFailure(
            self.store.rename_user(alice.id, "BOB", "bob"), NameTaken
        )
        await self.store.rename_user(alice.id, "Alice", "alice")
        self.assertEqual((await self.store.get_user(alice.id)).name, "Alice")

    @async_test
    async def test_a_renamed_name_is_kept_for_its_account_until_released(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        await self.store.rename_user(alice.id, "alicia", "alicia")
        # Logging in goes by the current name only.
        self.assertIsNone(await self.store.find_user("alice"))
        self.assertEqual(
            await self.store.find_name_holder("alice"), NameHolder(alice.id, True)
        )
        self.assertEqual(
            await self.store.find_name_holder("alicia"), NameHolder(alice.id, False)
        )
        self.assertIsNone(await self.store.find_name_holder("nobody"))
        failure = await self.assertFailure(
            self.store.create_user("Alice", "alice", "hash", 0), NameTaken
        )
        self.assertEqual(
            failure.message, "Alice was another account's name and is kept for it"
        )
        bob = await self.store.create_user("bob", "bob", "hash", 0)
        await self.assertFailure(
            self.store.rename_user(bob.id, "alice", "alice"), NameTaken
        )
        self.assertEqual(await self.store.release_name("alice"), alice.id)
        self.assertIsNone(await self.store.release_name("alice"))
        await self.store.rename_user(bob.id, "alice", "alice")
        self.assertEqual(
            await self.store.find_name_holder("bob"), NameHolder(bob.id, True)
        )

    @async_test
    async def test_taking_back_a_former_name_keeps_the_one_given_up(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        await self.store.rename_user(alice.id, "alicia", "alicia")
        await self.store.rename_user(alice.id, "Alice", "alice")
        self.assertEqual(
            await self.store.find_name_holder("alice"), NameHolder(alice.id, False)
        )
        self.assertEqual(
            await self.store.find_name_holder("alicia"), NameHolder(alice.id, True)
        )

    @async_test
    async def test_a_password_hash_changes_only_from_the_one_verified(self):
        alice = await self.store.create_user("alice", "alice", "hash1", 0)
        await self.store.change_password_hash(alice.id, "hash1", "hash2")
        failure = await self.assertFailure(
            self.store.change_password_hash(alice.id, "hash1", "hash3"), AuthFailed
        )
        self.assertEqual(
            failure.message, "the password was changed meanwhile: try again"
        )
        self.assertEqual((await self.store.get_user(alice.id)).password_hash, "hash2")

    @async_test
    async def test_a_stale_password_change_fails_alone_in_its_batch(self):
        alice = await self.store.create_user("alice", "alice", "hash1", 0)
        self.db.write(lambda cursor: None)
        first = self.store.change_password_hash(alice.id, "hash1", "hash2")
        second = self.store.change_password_hash(alice.id, "hash1", "hash3")
        mate = self.db.write(_insert_activity("batch-mate"))
        await first
        await self.assertFailure(second, AuthFailed)
        self.assertEqual(await mate, "batch-mate")
        self.assertEqual((await self.store.get_user(alice.id)).password_hash, "hash2")

    # Rooms

    @async_test
    async def test_rooms_created_are_counted_per_creator(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        bob = await self.store.create_user("bob", "bob", "hash", 0)
        await self.store.create_room("one", "one", alice.id, 0, max_created=1)
        failure = await self.assertFailure(
            self.store.create_room("two", "two", alice.id, 0, max_created=1),
            TooManyRoomsCreated,
        )
        self.assertEqual(
            failure.message,
            "you have created 1 rooms, the most one account may create",
        )
        await self.store.create_room("two", "two", bob.id, 0, max_created=1)
        rooms = [room.name for room in await self.store.load_rooms()]
        self.assertEqual(rooms, [LOBBY, "one", "two"])

    @async_test
    async def test_room_names_are_unique_by_name_key(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        room_id = await self.store.create_room("Dev", "dev", alice.id, 0)
        await self.assertFailure(
            self.store.create_room("DEV", "dev", alice.id, 0), RoomExists
        )
        memberships = await self.store.load_memberships()
        self.assertIn((room_id, alice.id, "alice"), memberships)

    @async_test
    async def test_joining_twice_in_one_batch_fails_only_the_second_join(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        room_id = await self.store.create_room("dev", "dev", alice.id, 0)
        bob = await self.store.create_user("bob", "bob", "hash", 0)
        self.db.write(lambda cursor: None)
        first = self.store.add_member(room_id, bob.id, 0)
        second = self.store.add_member(room_id, bob.id, 0)
        mate = self.db.write(_insert_activity("batch-mate"))
        await first
        await self.assertFailure(second, AlreadyMember)
        self.assertEqual(await mate, "batch-mate")
        self.assertIn((room_id, bob.id, "bob"), await self.store.load_memberships())

    @async_test
    async def test_history_is_the_last_messages_oldest_first(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        lobby = (await self.store.load_rooms())[0]
        for seq in range(1, 6):
            await self.store.store_room_message(
                lobby.id, seq, alice.id, "alice", f"m{seq}", seq
            )
        history = await self.store.room_history(lobby.id, 3)
        self.assertEqual([m.text for m in history], ["m3", "m4", "m5"])
        self.assertEqual((await self.store.load_rooms())[0].last_seq, 5)

    @async_test
    async def test_kept_private_messages_until_marked_delivered(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        bob = await self.store.create_user("bob", "bob", "hash", 0)
        for text, delivered in (("one", False), ("seen", True), ("two", False)):
            await self.store.store_private(
                alice.id, "alice", bob.id, text, 0, delivered
            )
        kept = await self.store.undelivered_private(bob.id, 10)
        self.assertEqual([m.text for m in kept], ["one", "two"])
        await self.store.mark_delivered([m.id for m in kept], 1)
        self.assertEqual(await self.store.undelivered_private(bob.id, 10), [])

    @async_test
    async def test_kept_private_messages_are_limited_per_sender(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        bob = await self.store.create_user("bob", "bob", "hash", 0)
        carol = await self.store.create_user("carol", "carol", "hash", 0)

        def send(sender, text, delivered=False):
            return self.store.store_private(
                sender.id, sender.name, bob.id, text, 0, delivered, 10, 1
            )

        await send(alice, "one")
        await self.assertFailure(send(alice, "two"), MailboxFull)
        # Delivered at once, a message takes no place in the mailbox.
        await send(alice, "seen", delivered=True)
        await send(carol, "three")
        kept = await self.store.undelivered_private(bob.id, 10)
        self.assertEqual([m.text for m in kept], ["one", "three"])

    @async_test
    async def test_connections_are_counted_per_day_not_logged(self):
        day = 86_400_000
        for at in (5, 6, day + 7):
            self.store.record_activity(at, None, "10.0.0.1", "connect", "")
        await self.store.record_activity(8, None, "bob", "login-failed", "10.0.0.1")

        def counts(cursor):
            cursor.execute("SELECT day, event, count FROM activity_counts ORDER BY day")
            return [tuple(row) for row in cursor.fetchall()]

        def events(cursor):
            cursor.execute("SELECT event FROM activity")
            return [row[0] for row in cursor.fetchall()]

        self.assertEqual(
            await self.db.read(counts),
            [("1970-01-01", "connect", 2), ("1970-01-02", "connect", 1)],
        )
        self.assertEqual(await self.db.read(events), ["login-failed"])

    @async_test
    async def test_old_activity_is_deleted_oldest_first_a_batch_at_a_time(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        for at in (1, 2, 3, 10):
            await self.store.record_activity(at, alice.id, "alice", "join", f"#{at}")
        self.assertEqual(await self.store.delete_activity_before(10, 2), 2)
        entries = await self.store.activity_of(alice.id, 10)
        self.assertEqual([e.detail for e in entries], ["#3", "#10"])
        self.assertEqual(await self.store.delete_activity_before(10, 2), 1)
        self.assertEqual(await self.store.delete_activity_before(10, 2), 0)
        [entry] = await self.store.activity_of(alice.id, 10)
        self.assertEqual(entry.detail, "#10")

    @async_test
    async def test_activity_includes_entries_still_queued(self):
        alice = await self.store.create_user("alice", "alice", "hash", 0)
        self.db.write(lambda cursor: None)
        self.store.record_activity(5, alice.id, "alice", "join", "#dev")
        [entry] = await self.store.activity_of(alice.id, 10)
        self.assertEqual((entry.at, entry.event, entry.detail), (5, "join", "#dev"))


class SQLiteTests(DatabaseTestsMixin, unittest.TestCase):
    """The storage contract on a SQLite file in the test's directory."""

    def setUp(self) -> defer.Deferred:
        self.location = sqlite_file(self)
        return super().setUp()

    def open_database(self) -> Database:
        return open_database(self.location, reactor)


class PostgresTests(DatabaseTestsMixin, unittest.TestCase):
    """The same contract on PostgreSQL, in a throwaway schema per test."""

    skip = postgres_unavailable()

    def setUp(self) -> defer.Deferred:
        self.schema = Schema()
        self.addCleanup(self.schema.drop)
        return super().setUp()

    def open_database(self) -> Database:
        database = open_database(self.schema.url, reactor)
        database.start()
        return database


class ManyRowsTests(unittest.TestCase):
    """How a batch's rows are split into statements."""

    def test_chunks_are_the_largest_then_powers_of_two_in_order(self):
        rows = [(i,) for i in range(1000)]
        chunks = list(row_chunks(rows, 128))
        self.assertEqual([len(c) for c in chunks], [128] * 7 + [64, 32, 8])
        self.assertEqual([row for chunk in chunks for row in chunk], rows)
        self.assertEqual(list(row_chunks([], 128)), [])
        self.assertEqual([len(c) for c in row_chunks(rows[:3], 128)], [2, 1])

    def test_a_statement_stays_within_sqlites_oldest_placeholder_limit(self):
        insert = ManyRows("INSERT INTO t (a, b, c, d, e, f, g) VALUES {rows}", 7)
        self.assertEqual(insert.most, 128)
        self.assertLessEqual(insert.sql(insert.most).count("?"), 999)
        self.assertEqual(insert.one.count("(?, ?, ?, ?, ?, ?, ?)"), 1)


class SchemaUpgradeTests(unittest.TestCase):
    """A database made by the first schema, upgraded by this server."""

    @async_test
    async def test_version_one_upgrades_keeping_its_accounts(self):
        database = open_database(sqlite_file(self), reactor)
        self.addCleanup(database.close)
        database.start()
        self.patch(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        self.patch(schema, "SCHEMA_VERSION", 1)
        self.assertEqual(await migrate(database), 1)

        def first_user(cursor) -> int:
            cursor.execute(
                "INSERT INTO users (name, name_key, password_hash, created_at)"
                " VALUES ('alice', 'alice', 'hash', 0) RETURNING id"
            )
            return cursor.fetchone()[0]

        alice_id = await database.write(first_user)
        self.patch(schema, "MIGRATIONS", MIGRATIONS)
        self.patch(schema, "SCHEMA_VERSION", SCHEMA_VERSION)
        self.assertEqual(await migrate(database), SCHEMA_VERSION)
        store = ChatStore(database)
        await store.rename_user(alice_id, "alicia", "alicia")
        self.assertEqual(
            await store.find_name_holder("alice"), NameHolder(alice_id, True)
        )


class SQLiteMemoryTests(unittest.TestCase):
    """C{:memory:} is one connection, so it is one database, as tests need."""

    @async_test
    async def test_memory_database_keeps_what_was_written(self):
        db = open_database(":memory:", reactor)
        self.addCleanup(db.close)
        await migrate(db)
        await ChatStore(db).create_user("alice", "alice", "hash", 0)
        self.assertIsNotNone(await ChatStore(db).find_user("alice"))


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class SQLiteFileModeTests(unittest.TestCase):
    """The SQLite file holds password hashes: only the server's user reads it."""

    async def _open_and_write(self, location: Path) -> Database:
        database = open_database(str(location), reactor)
        database.start()
        self.addCleanup(database.close)
        await migrate(database)
        return database

    @async_test
    async def test_new_database_and_data_directories_are_private_whatever_the_umask(
        self,
    ):
        self.addCleanup(os.umask, os.umask(0))
        data = Path(self.mktemp()) / "data"
        location = data / "deeper" / "chat.sqlite3"
        database = open_database(str(location), reactor)
        # Nothing is made before the service starts.
        self.assertFalse(data.parent.exists())
        database.start()
        self.addCleanup(database.close)
        await migrate(database)
        self.assertEqual(
            {path.name: _mode(path) for path in location.parent.iterdir()},
            {
                "chat.sqlite3": 0o600,
                "chat.sqlite3-wal": 0o600,
                "chat.sqlite3-shm": 0o600,
            },
        )
        self.assertEqual(
            [_mode(data), _mode(data / "deeper"), _mode(data.parent)],
            [0o700, 0o700, 0o700],
        )

    @async_test
    async def test_existing_database_readable_by_others_is_made_private(self):
        directory = Path(self.mktemp())
        directory.mkdir()
        directory.chmod(0o755)
        location = directory / "chat.sqlite3"
        # An open connection keeps the WAL files as an older server left them.
        other = sqlite3.connect(location, isolation_level=None)
        self.addCleanup(other.close)
        other.execute("PRAGMA journal_mode=WAL")
        other.execute("CREATE TABLE kept (n INTEGER)")
        files = [location, *(Path(f"{location}{end}") for end in ("-wal", "-shm"))]
        for path in files:
            path.chmod(0o644)
        await self._open_and_write(location)
        self.assertEqual([_mode(path) for path in files], [0o600] * 3)
        # A directory it did not make is the operator's: left as it was.
        self.assertEqual(_mode(directory), 0o755)
