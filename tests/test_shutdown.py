"""Shutdown waits for every connection to close before storage does."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from twisted.internet import defer, reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from chatroom.auth import PasswordHasher
from chatroom.server import ChatServer
from chatroom.storage.opening import open_database
from tests.asynctest import async_test
from tests.helpers import (
    BCRYPT_ROUNDS,
    ServerTestCase,
    chat_factory,
    sqlite_file,
    start_server,
)
from tests.realserver import RunningServer


class DisconnectAllTests(ServerTestCase):
    def open(self, port: int):
        protocol = self.server.factory.buildProtocol(
            IPv4Address("TCP", "127.0.0.1", port)
        )
        # A StringTransport only marks itself disconnecting: the connection
        # is lost when the test says so, as a real one is a turn or more later.
        protocol.makeConnection(StringTransport())
        self.addCleanup(self.lose, protocol)
        return protocol

    def lose(self, protocol) -> None:
        if protocol.connected:
            protocol.connectionLost(Failure(ConnectionDone()))

    @async_test
    async def test_waits_for_each_connection_to_be_lost(self):
        first, second = self.open(40001), self.open(40002)
        closed = self.server.factory.disconnect_all("bye")
        self.assertTrue(first.transport.disconnecting)
        self.assertFalse(closed.called)
        first.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(closed.called)
        second.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(closed.called)

    @async_test
    async def test_aborts_connections_still_open_after_the_grace_period(self):
        stuck = self.open(40003)
        closed = self.server.factory.disconnect_all("bye", grace=5)
        self.server.clock.advance(4.9)
        self.assertFalse(closed.called)
        self.server.clock.advance(0.2)
        self.assertTrue(closed.called)
        self.assertTrue(stuck.transport.disconnected or stuck.transport.disconnecting)

    def test_all_answered_waits_for_lines_still_in_flight(self):
        factory = self.server.factory
        factory.in_flight.started()
        factory.in_flight.started()
        answered = factory.all_answered()
        factory.in_flight.finished()
        self.assertFalse(answered.called)
        factory.in_flight.finished()
        self.assertTrue(answered.called)

    def test_all_answered_gives_up_after_the_grace_period(self):
        factory = self.server.factory
        factory.in_flight.started()
        self.addCleanup(factory.in_flight.finished)
        answered = factory.all_answered(grace=5)
        self.server.clock.advance(4.9)
        self.assertFalse(answered.called)
        self.server.clock.advance(0.2)
        self.assertIsNone(self.successResultOf(answered))


class ShutdownRecordsTests(unittest.TestCase):
    @async_test
    async def test_every_logout_is_stored_before_storage_closes(self):
        location = sqlite_file(self)
        server = await start_server(self, location)
        for name in ("alice", "bob"):
            await server.register(name)
        await server.stop()
        with closing(sqlite3.connect(location)) as db:
            last_events = db.execute(
                "SELECT actor, event FROM activity WHERE id IN"
                " (SELECT MAX(id) FROM activity GROUP BY user_id)"
                " AND user_id IS NOT NULL ORDER BY actor"
            ).fetchall()
        self.assertEqual(
            [row for row in last_events if row[0] != "admin"],
            [("alice", "logout"), ("bob", "logout")],
        )

    @async_test
    async def test_storage_closes_after_the_lines_still_being_answered(self):
        server = await start_server(self)
        closed = []
        close_database = server.database.close

        def database_closing():
            closed.append(True)
            return close_database()

        server.database.close = database_closing
        # A line read before the goodbye, its reply still being stored.
        server.factory.in_flight.started()
        stopped = server.server.stopService()
        await task.deferLater(reactor, 0, lambda: None)
        self.assertEqual(closed, [])
        server.factory.in_flight.finished()
        await stopped
        self.assertEqual(closed, [True])


class JobOrderTests(unittest.TestCase):
    """The server's jobs run on the loaded chat and stop before its database."""

    @async_test
    async def test_the_activity_pruning_runs_while_the_server_does(self):
        running = RunningServer(self, Path(self.mktemp()))
        await running.start()
        server = running.server
        [job] = server.jobs
        self.assertTrue(job.running)
        seen = []
        close_database = server.database.close

        def database_closing():
            seen.append(("database", job.running, len(server.factory.clients)))
            return close_database()

        server.database.close = database_closing
        await running.stop()
        self.assertEqual(seen, [("database", False, 0)])


class _Reactor:
    """Records the stops a server asks of the reactor."""

    def __init__(self) -> None:
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1


class StopDuringStartTests(unittest.TestCase):
    """A stop while the server still starts is no failed start."""

    @async_test
    async def test_a_stop_during_start_up_neither_logs_a_failure_nor_stops(self):
        clock = task.Clock()
        database = open_database(":memory:", reactor)
        hasher = PasswordHasher(reactor, rounds=BCRYPT_ROUNDS, threads=1)
        chat, factory = chat_factory(database, hasher, clock)
        # The start waits on the chat's load, as on a slow database.
        reached, loading = defer.Deferred(), defer.Deferred()

        def load() -> defer.Deferred:
            reached.callback(None)
            return loading

        chat.load = load
        stopper = _Reactor()
        server = ChatServer(database, chat, None, factory, [], stopper)
        server.startService()
        await reached
        await task.deferLater(reactor, 0, lambda: None)
        await server.stopService()
        self.assertEqual((server.start_failed, stopper.stops), (False, 0))
        self.assertEqual(self.flushLoggedErrors(), [])
