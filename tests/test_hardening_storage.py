"""
Storage faults: a read-only, locked or full database answers -ERR
server-error, acknowledges nothing, changes nothing in memory, and the server
goes on once the fault is gone.
"""

import sqlite3

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from chatroom.storage.opening import open_database
from chatroom.storage.schema import migrate
from tests.clients import MemoryClient
from tests.helpers import (
    RELAXED,
    SOCKET_BUFFER,
    ChatWorld,
    InlineHasher,
    chat_factory,
)

SERVER_ERROR = "-ERR server-error the server could not do that now"


class DatabaseFaultTests(unittest.TestCase):
    def setUp(self):
        self.path = self.mktemp() + ".sqlite3"
        self.world = ChatWorld(location=self.path)
        self.db = self.world.pool.connection
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.assertEqual(self.alice.command("stored before"), "+OK")
        self.bob.take()

    def history(self) -> list[str]:
        lines = self.alice.command("/history lobby 100")
        assert lines.startswith("+OK"), lines
        self.alice.write("/history lobby 100")
        return [line.split(": ", 1)[1] for line in self.alice.take()[:-1]]

    def check_refused_then_recovers(self, undo):
        self.assertEqual(self.alice.command("lost"), SERVER_ERROR)
        # Delivered before its commit, as every room message is: seen, not kept.
        self.assertEqual(self.bob.take(), ["[lobby] alice: lost"])
        self.assertEqual(self.alice.command("/c newroom"), SERVER_ERROR)
        self.assertEqual(self.alice.command("/u alicia"), SERVER_ERROR)
        undo()
        # Nothing of it happened, in memory or on disk; the connection is up.
        self.assertFalse(self.alice.closing)
        self.assertTrue(
            self.alice.command("/j newroom").startswith("-ERR no-such-room")
        )
        self.assertEqual(self.alice.command("/rooms"), "+OK 1 room")
        self.assertTrue(self.bob.command("/private alice hi").startswith("+OK"))
        self.assertEqual(self.alice.take(), ["[private] bob: hi"])
        self.assertEqual(self.alice.command("stored after"), "+OK")
        self.assertEqual(self.history(), ["stored before", "stored after"])
        # Each failure was logged, with its batch.
        self.assertTrue(self.flushLoggedErrors(sqlite3.OperationalError))

    def test_read_only_database(self):
        self.db.execute("PRAGMA query_only=ON")
        self.check_refused_then_recovers(
            lambda: self.db.execute("PRAGMA query_only=OFF")
        )

    def test_locked_database(self):
        self.db.execute("PRAGMA busy_timeout=0")
        other = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(other.close)
        other.execute("BEGIN EXCLUSIVE")
        self.check_refused_then_recovers(lambda: other.execute("ROLLBACK"))

    def test_full_database(self):
        (pages,) = self.db.execute("PRAGMA page_count").fetchone()
        self.db.execute(f"PRAGMA max_page_count={pages}")
        acknowledged = []
        for i in range(50):
            reply = self.alice.command(f"big {i} " + "z" * 3000)
            if reply != "+OK":
                self.assertEqual(reply, SERVER_ERROR)
                break
            acknowledged.append(f"big {i} " + "z" * 3000)
        else:
            self.fail("the database never filled up")
        self.db.execute("PRAGMA max_page_count=1073741823")
        self.assertEqual(self.history(), ["stored before", *acknowledged])
        self.assertEqual(self.alice.command("/ping"), "+OK pong")
        self.assertTrue(self.flushLoggedErrors(sqlite3.OperationalError))


class ThreadedPoolFaultTests(unittest.TestCase):
    """The real adbapi pool: the error crosses the thread and still answers."""

    @defer.inlineCallbacks
    def test_read_only_database_answers_server_error(self):
        database = open_database(self.mktemp() + ".sqlite3", reactor)
        database.start()
        self.addCleanup(database.close)
        yield migrate(database)
        hasher = InlineHasher()
        chat, factory = chat_factory(database, hasher, task.Clock(), RELAXED)
        yield defer.ensureDeferred(chat.load())
        client = MemoryClient(factory, "10.0.0.1", 1, SOCKET_BUFFER)
        client.take()
        client.write("/register alice pw")
        self.assertTrue((yield self.reply(client))[0].startswith("+OK welcome"))
        yield database.pool.runInteraction(
            lambda cursor: cursor.execute("PRAGMA query_only=ON")
        )
        client.write("hello")
        self.assertEqual((yield self.reply(client)), [SERVER_ERROR])
        client.write("/ping")
        self.assertEqual((yield self.reply(client)), ["+OK pong"])
        yield database.pool.runInteraction(
            lambda cursor: cursor.execute("PRAGMA query_only=OFF")
        )
        client.close()
        self.flushLoggedErrors(sqlite3.OperationalError)

    @defer.inlineCallbacks
    def reply(self, client):
        for _ in range(500):
            lines = client.take()
            if lines:
                return lines
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.fail("no reply")

    @defer.inlineCallbacks
    def test_sqlite_keeps_what_it_acknowledged(self):
        database = open_database(self.mktemp() + ".sqlite3", reactor)
        database.start()
        self.addCleanup(database.close)
        mode, sync = yield database.read(
            lambda cursor: (
                cursor.execute("PRAGMA journal_mode").fetchone()[0],
                cursor.execute("PRAGMA synchronous").fetchone()[0],
            )
        )
        self.assertEqual((mode, sync), ("wal", 2))  # 2 is FULL
