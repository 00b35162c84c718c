"""
Whole chat servers in memory, spoken to through L{MemoryClient}s.

L{start_server} runs the server as twistd does (storage and bcrypt in real
threads, a fake clock): anything touching them returns a Deferred for trial
to wait on.  L{ChatWorld} runs it in one thread (synchronous SQLite, inline
bcrypt): every command finishes inside the call that sent it.

L{chat_factory} is the one place either builds the chat service and its
factory; L{start_server} is the one place the in-memory L{ChatServer} is made.
"""

from __future__ import annotations

import os
import sqlite3

from twisted.internet import defer, reactor, task
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest

from chatroom.auth import PasswordHasher, hash_password, verify_password
from chatroom.options import Options
from chatroom.protocol.limits import Limits, registration_limit
from chatroom.protocol.line.factory import LineFactory
from chatroom.server import ChatServer
from chatroom.service.admission import Admission
from chatroom.service.chat import HISTORY_DEFAULT, ChatService
from chatroom.service.throttle import LoginThrottle
from chatroom.storage.database import Database
from chatroom.storage.engines import SQLITE
from chatroom.storage.opening import open_database
from chatroom.storage.schema import migrate
from chatroom.storage.store import ChatStore
from tests.clients import MemoryClient

BCRYPT_ROUNDS = 4
ADMIN_PASSWORD = "admin-secret"
# Far enough from the epoch that a wrong unit (seconds for ms) shows.
START_TIME = 1_000_000_000.0
# Limits that stay out of the way of tests about something else.
RELAXED = Limits(
    rate=0,
    byte_rate=0,
    login_timeout=0,
    ping_interval=0,
    max_connections=0,
    max_per_address=0,
    register_rate=0,
)
# What a ChatWorld client's kernel would buffer before it stops the writer.
SOCKET_BUFFER = 65536


def chat_factory(
    database: Database,
    hasher: PasswordHasher,
    clock,
    limits: Limits | None = None,
    throttle: LoginThrottle | None = None,
    **rules,
) -> tuple[ChatService, LineFactory]:
    """
    The chat service on C{database} and the line protocol's factory for it,
    its admission gate built from C{limits}.  C{rules} go to the
    L{ChatService}: C{history_default}, C{mailbox_size}...
    """
    chat = ChatService(ChatStore(database), hasher, clock, **rules)
    limits = limits if limits is not None else Limits()
    admission = Admission(chat, throttle, registration_limit(limits, clock))
    return chat, LineFactory(admission, limits)


def parse_options(testcase, *args: str) -> Options:
    """The plugin's options from C{args}, data kept in the test's temp dir."""
    config = Options()
    config.parseOptions(["--data-dir", testcase.mktemp(), *args])
    return config


class TurnClock(task.Clock):
    """
    A fake clock whose zero-delay calls (the server's output flush) also run
    on the real reactor's next turn, as they would on the reactor: replies
    that storage and bcrypt threads finish reach the client without the test
    advancing time.  Timed calls still wait for the test to advance it.
    """

    _turn = None

    def callLater(self, delay, f, *args, **kw):
        call = super().callLater(delay, f, *args, **kw)
        if delay <= 0 and self._turn is None:
            self._turn = reactor.callLater(0, self._next_turn)
        return call

    def _next_turn(self) -> None:
        self._turn = None
        self.advance(0)


class _StartFailed:
    """Stands in for the reactor ChatServer stops when it cannot start."""

    def stop(self) -> None:
        raise AssertionError("the chat server failed to start")


class Server:
    """A started L{ChatServer} and what tests reach into."""

    def __init__(self, server: ChatServer, clock: task.Clock) -> None:
        self.server = server
        self.clock = clock
        self.chat: ChatService = server.chat
        self.store: ChatStore = server.chat.store
        self.database: Database = server.database
        self.factory: LineFactory = server.factory

    def connect(self, peer: str = "127.0.0.1") -> MemoryClient:
        return MemoryClient(self.factory, peer)

    async def register(self, name: str, password: str | None = None) -> MemoryClient:
        """
        A new connection that has registered C{name} (password C{pw-NAME}
        unless given), is logged in, and has read everything so far.
        """
        client = self.connect()
        password = f"pw-{name}" if password is None else password
        reply = await client.send(f"/register {name} {password}")
        assert reply[-1].startswith("+OK"), reply
        # Let the login's follow-up (kept private messages) finish first.
        await client.send("/ping")
        client.take()
        return client

    async def login(self, name: str, password: str) -> MemoryClient:
        """A new connection that has just been welcomed as C{name}."""
        client = self.connect()
        reply = await client.send(f"/login {name} {password}")
        assert reply[-1].startswith("+OK"), reply
        return client

    async def admin(self) -> MemoryClient:
        """A new connection logged in as the admin, everything so far read."""
        client = await self.login("admin", ADMIN_PASSWORD)
        await client.send("/ping")
        client.take()
        return client

    async def stop(self) -> None:
        if self.server.running:
            await self.server.stopService()


async def start_server(
    testcase,
    location: str = ":memory:",
    admin_password: str | None = ADMIN_PASSWORD,
    history_default: int = HISTORY_DEFAULT,
    limits: Limits | None = None,
) -> Server:
    """
    Start a whole server (storage, bcrypt pool, chat service; no listener)
    on C{location}, stopped again when the test ends.
    """
    clock = TurnClock()
    clock.advance(START_TIME)
    database = open_database(location, reactor)
    hasher = PasswordHasher(reactor, rounds=BCRYPT_ROUNDS, threads=1)
    chat, factory = chat_factory(
        database, hasher, clock, limits, history_default=history_default
    )
    server = Server(
        ChatServer(database, chat, admin_password, factory, [], _StartFailed()),
        clock,
    )
    testcase.addCleanup(server.stop)
    server.server.startService()
    await server.server.ready
    return server


def sqlite_file(testcase) -> str:
    """A path for a SQLite database in the test's own temporary directory."""
    directory = testcase.mktemp()
    os.makedirs(directory)
    return os.path.join(directory, "chat.sqlite3")


class ServerTestCase(unittest.TestCase):
    """A test case with a fresh server, started before each test."""

    # Everything here is local; a hang is a bug, so fail fast.
    timeout = 10
    history_default = HISTORY_DEFAULT
    # The production limits unless a test case needs others.
    limits: Limits | None = None

    def setUp(self) -> defer.Deferred:
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        self.server = await start_server(
            self, history_default=self.history_default, limits=self.limits
        )

    def assertFailed(self, reply: list[str], code: str) -> None:
        """The final line of C{reply} is C{-ERR code ...}."""
        self.assertEqual(reply[-1].split(" ")[:2], ["-ERR", code], reply)


class SyncPool:
    """The slice of adbapi.ConnectionPool that Database uses, without threads."""

    def __init__(self, location: str = ":memory:") -> None:
        self.connection = sqlite3.connect(location, isolation_level=None)
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.closed = False

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        self.connection.close()

    def runInteraction(self, interaction, *args):
        cursor = self.connection.cursor()
        try:
            result = interaction(cursor, *args)
            self.connection.commit()
        except Exception:
            self.connection.rollback()
            return defer.fail()
        return defer.succeed(result)


class InlineHasher(PasswordHasher):
    """bcrypt at cost 4, in the calling thread."""

    def __init__(self) -> None:
        super().__init__(None, rounds=BCRYPT_ROUNDS, threads=1)
        self.verified: list[str | None] = []
        # Passwords hashed: what registrations cost.
        self.hashed = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def hash(self, password: str, party=None):
        self.hashed += 1
        return defer.succeed(hash_password(password, self.rounds))

    def verify(self, password: str, stored: str | None, party=None):
        self.verified.append(stored)
        if stored is None:
            verify_password(password, self._decoy)
            return defer.succeed(False)
        return defer.succeed(verify_password(password, stored))


def capture_log(testcase) -> list[dict]:
    """Every log event emitted until C{testcase} ends."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    testcase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def fired(d: defer.Deferred):
    """The result of a Deferred that has already fired (raise its failure)."""
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class ChatWorld:
    """The service, its factory, the clock and the database, in memory."""

    def __init__(
        self,
        limits: Limits = RELAXED,
        throttle: LoginThrottle | None = None,
        location: str = ":memory:",
        **rules,
    ) -> None:
        """C{rules} go to the L{ChatService}: C{mailbox_size}, C{max_rooms}."""
        self.clock = task.Clock()
        self.pool = SyncPool(location)
        self.database = Database(self.pool, SQLITE)
        fired(migrate(self.database))
        self.hasher = InlineHasher()
        self.chat, self.factory = chat_factory(
            self.database, self.hasher, self.clock, limits, throttle, **rules
        )
        fired(defer.ensureDeferred(self.chat.load()))
        fired(defer.ensureDeferred(self.chat.ensure_admin(ADMIN_PASSWORD)))

    def connect(self, host: str = "10.0.0.1", port: int = 40000) -> MemoryClient:
        return MemoryClient(self.factory, host, port, buffer_size=SOCKET_BUFFER)

    def user(self, name: str, password: str = "pw", host: str = "10.0.0.1"):
        """A connected client, registered (or logged in) as C{name}."""
        client = self.connect(host)
        reply = client.command(f"/register {name} {password}")
        if reply.startswith("-ERR name-taken"):
            reply = client.command(f"/login {name} {password}")
        assert reply.startswith("+OK"), reply
        client.take()
        return client


class HeldInteractions:
    """
    Holds a L{ChatWorld}'s pool interactions of one kind (C{interaction});
    the others go through.  Each waits, not run, until the test commits or
    fails it.
    """

    def __init__(self, world: ChatWorld, interaction) -> None:
        self.interaction = interaction
        self.held: list[tuple[defer.Deferred, tuple]] = []
        self._run = world.pool.runInteraction
        world.pool.runInteraction = self._hold

    def _hold(self, interaction, *args):
        if interaction != self.interaction:
            return self._run(interaction, *args)
        d: defer.Deferred = defer.Deferred()
        self.held.append((d, args))
        return d

    def commit(self) -> None:
        """Run the oldest held interaction and fire what waits on it."""
        d, args = self.held.pop(0)
        self._run(self.interaction, *args).chainDeferred(d)

    def commit_all(self) -> None:
        """Run interactions until none is held (one may queue the next)."""
        while self.held:
            self.commit()

    def fail(self, error: Exception) -> None:
        """The oldest held interaction fails as a whole, as a failed commit does."""
        d, _ = self.held.pop(0)
        d.errback(error)


class HeldWrites(HeldInteractions):
    """Holds a L{ChatWorld}'s write batches (reads go through)."""

    def __init__(self, world: ChatWorld) -> None:
        super().__init__(world, world.database._run_batch)


class HeldReads(HeldInteractions):
    """Holds a L{ChatWorld}'s reads (writes go through)."""

    def __init__(self, world: ChatWorld) -> None:
        super().__init__(world, world.database._with_cursor)
