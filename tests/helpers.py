"""
Fixtures shared by the tests: a whole chat server on SQLite with cheap bcrypt
and a fake clock, and clients that speak to it through its real protocol over
a L{StringTransport}.

Storage and bcrypt run in real threads, so anything that touches them
returns a Deferred for trial to wait on; the clock is a L{task.Clock}.
"""

from __future__ import annotations

import os

from twisted.internet import defer, reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from chatroom.auth import PasswordHasher
from chatroom.protocol.chat import ChatProtocol
from chatroom.protocol.factory import ChatFactory
from chatroom.server import ChatServer
from chatroom.service.chat import HISTORY_DEFAULT, ChatService
from chatroom.service.realm import chat_portal
from chatroom.storage.pool import Database, open_database
from chatroom.storage.store import ChatStore
from tests.asynctest import async_test

__all__ = ["async_test"]  # test modules take it from here with the rest

BCRYPT_ROUNDS = 4
ADMIN_PASSWORD = "admin-secret"
# Far enough from the epoch that a wrong unit (seconds for ms) shows.
START_TIME = 1_000_000_000.0


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
        self.factory: ChatFactory = server.factory

    def connect(self, peer: str = "127.0.0.1") -> Client:
        return Client(self.factory, peer)

    async def register(self, name: str, password: str | None = None) -> Client:
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

    async def login(self, name: str, password: str) -> Client:
        """A new connection that has just been welcomed as C{name}."""
        client = self.connect()
        reply = await client.send(f"/login {name} {password}")
        assert reply[-1].startswith("+OK"), reply
        return client

    async def admin(self) -> Client:
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
) -> Server:
    """
    Start a whole server (storage, bcrypt pool, chat service; no listener)
    on C{location}, stopped again when the test ends.
    """
    clock = task.Clock()
    clock.advance(START_TIME)
    database = open_database(location, reactor)
    hasher = PasswordHasher(reactor, rounds=BCRYPT_ROUNDS, threads=1)
    chat = ChatService(
        ChatStore(database), hasher, clock, history_default=history_default
    )
    factory = ChatFactory(chat, chat_portal(chat))
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


class _Transport(StringTransport):
    """A StringTransport that tells its client when bytes arrive."""

    def __init__(self, client: Client, peer: str) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", peer, 40000))
        self._client = client

    def write(self, data: bytes) -> None:
        super().write(data)
        self._client._arrived()

    def writeSequence(self, seq) -> None:
        super().writeSequence(seq)
        self._client._arrived()

    def loseConnection(self) -> None:
        super().loseConnection()
        self._client._closing()

    # A real transport lets a producer be paused or resumed while closing.
    def pauseProducing(self) -> None:
        if not self.disconnecting:
            super().pauseProducing()

    def resumeProducing(self) -> None:
        if not self.disconnecting:
            super().resumeProducing()


def is_final(line: str) -> bool:
    return line.startswith(("+OK", "-ERR"))


def data_lines(reply: list[str]) -> list[str]:
    """The C{= } data lines of C{reply}, prefix removed."""
    return [line[2:] for line in reply if line.startswith("= ")]


class Client:
    """
    One connection to the server.  L{send} writes a line and fires with the
    lines received up to and including its final reply; L{take} returns what
    arrived unasked (messages, notices) since the last read.
    """

    def __init__(self, factory: ChatFactory, peer: str = "127.0.0.1") -> None:
        self.transport = _Transport(self, peer)
        self.protocol: ChatProtocol = factory.buildProtocol(self.transport.getPeer())
        self._read = 0
        # Final replies asked for so far: the contract gives one per line.
        self._expected = 0
        self._waiting: list[tuple[int, defer.Deferred]] = []
        self._receiving = False
        self._scheduled = None
        self.protocol.makeConnection(self.transport)
        self.greeting = self.take()

    def lines(self) -> list[str]:
        """Every complete line received, CRLF removed."""
        *complete, _partial = self.transport.value().split(b"\r\n")
        return [line.decode("utf-8") for line in complete]

    def take(self) -> list[str]:
        """The lines received since the last read."""
        lines = self.lines()
        new, self._read = lines[self._read :], len(lines)
        return new

    def send(self, line: str) -> defer.Deferred[list[str]]:
        """Send one line (LF added); fire with what came back up to its reply."""
        return self.send_bytes(line.encode("utf-8") + b"\n")

    def send_bytes(self, data: bytes, replies: int = 1) -> defer.Deferred[list[str]]:
        """
        Hand C{data} to the protocol as one read; fire once C{replies} more
        final replies have arrived, with every line up to the last of them.
        """
        self._expected += replies
        wanted = self._expected
        d: defer.Deferred[list[str]] = defer.Deferred()
        self._waiting.append((wanted, d))
        # Replies to what the protocol can answer at once are handed over
        # after it returns, as the network would, not from inside its write.
        self._receiving = True
        try:
            self.protocol.dataReceived(data)
        finally:
            self._receiving = False
        if self.transport.disconnecting:
            self._lost()
        self._hand_over()
        return d

    @property
    def closed(self) -> bool:
        return not self.protocol.connected

    def disconnect(self) -> None:
        """The client goes away."""
        self.transport.loseConnection()

    def _closing(self) -> None:
        if not self._receiving:
            self._lost()

    def _lost(self) -> None:
        if self.protocol.connected:
            self.protocol.connectionLost(Failure(ConnectionDone()))

    def _arrived(self) -> None:
        # Bytes written from a callback reach the client on a later turn of
        # the reactor, once the server has finished what it was doing.
        if self._receiving or not self._waiting or self._scheduled is not None:
            return
        self._scheduled = reactor.callLater(0, self._hand_over)

    def _hand_over(self) -> None:
        if self._scheduled is not None:
            if self._scheduled.active():
                self._scheduled.cancel()
            self._scheduled = None
        lines = self.lines()
        finals = [i for i, line in enumerate(lines) if is_final(line)]
        ready = [(n, d) for n, d in self._waiting if len(finals) >= n]
        for entry in ready:
            self._waiting.remove(entry)
        for wanted, d in ready:
            end = finals[wanted - 1] + 1
            reply, self._read = lines[self._read : end], max(self._read, end)
            d.callback(reply)


class ServerTestCase(unittest.TestCase):
    """A test case with a fresh server, started before each test."""

    # Everything here is local; a hang is a bug, so fail fast.
    timeout = 10
    history_default = HISTORY_DEFAULT

    def setUp(self) -> defer.Deferred:
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        self.server = await start_server(self, history_default=self.history_default)

    def assertFailed(self, reply: list[str], code: str) -> None:
        """The final line of C{reply} is C{-ERR code ...}."""
        self.assertEqual(reply[-1].split(" ")[:2], ["-ERR", code], reply)
