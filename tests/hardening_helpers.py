"""
A whole chat server in memory and in one thread, for the hardening tests.

Storage runs on SQLite synchronously (no pool thread), bcrypt runs inline at
the lowest cost, and time is a task.Clock: every command finishes inside the
call that sent it, so a test reads the reply right after sending.
"""

from __future__ import annotations

import sqlite3

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatroom.auth import PasswordHasher, hash_password, verify_password
from chatroom.protocol.factory import ChatFactory
from chatroom.protocol.limits import Limits
from chatroom.service.chat import ChatService
from chatroom.service.realm import chat_portal
from chatroom.service.throttle import LoginThrottle
from chatroom.storage.database import Database
from chatroom.storage.engines import SQLITE
from chatroom.storage.schema import migrate
from chatroom.storage.store import ChatStore

ADMIN_PASSWORD = "admin-secret"
FAST_ROUNDS = 4
# Limits that stay out of the way of tests about something else.
RELAXED = Limits(
    rate=0,
    login_timeout=0,
    ping_interval=0,
    max_connections=0,
    max_per_address=0,
    register_rate=0,
)


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
        super().__init__(None, rounds=FAST_ROUNDS, threads=1)
        self.verified: list[str | None] = []
        # Passwords hashed: what registrations cost.
        self.hashed = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def hash(self, password: str):
        self.hashed += 1
        return defer.succeed(hash_password(password, self.rounds))

    def verify(self, password: str, stored: str | None):
        self.verified.append(stored)
        if stored is None:
            verify_password(password, self._decoy)
            return defer.succeed(False)
        return defer.succeed(verify_password(password, stored))


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
        self.clock = Clock()
        self.pool = SyncPool(location)
        self.database = Database(self.pool, SQLITE)
        fired(migrate(self.database))
        self.hasher = InlineHasher()
        self.chat = ChatService(
            ChatStore(self.database), self.hasher, self.clock, **rules
        )
        fired(defer.ensureDeferred(self.chat.load()))
        fired(defer.ensureDeferred(self.chat.ensure_admin(ADMIN_PASSWORD)))
        self.factory = ChatFactory(self.chat, chat_portal(self.chat), limits, throttle)

    def connect(self, host: str = "10.0.0.1", port: int = 40000) -> Client:
        return Client(self.factory, host, port)

    def user(self, name: str, password: str = "pw", host: str = "10.0.0.1"):
        """A connected client, registered (or logged in) as C{name}."""
        client = self.connect(host)
        reply = client.command(f"/register {name} {password}")
        if reply.startswith("-ERR name-taken"):
            reply = client.command(f"/login {name} {password}")
        assert reply.startswith("+OK"), reply
        client.lines()
        return client


class BufferedTransport(StringTransport):
    """
    A StringTransport with a send buffer that behaves like TCP's: past
    C{bufferSize} it pauses its streaming producer; L{drain} empties it and
    resumes the producer, as FileDescriptor.doWrite does.
    """

    bufferSize = 65536

    def __init__(self, host: str, port: int) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", host, port))
        self.pending = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        if self.aborted:
            return
        super().write(data)
        self.pending += len(data)
        if self.producer is not None and self.streaming:
            if self.pending > self.bufferSize:
                self.producer.pauseProducing()

    def writeSequence(self, data) -> None:
        self.write(b"".join(data))

    def drain(self) -> None:
        self.pending = 0
        if self.producer is not None:
            self.producer.resumeProducing()

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


class Client:
    """One connection to the in-memory server, as a script would drive it."""

    def __init__(self, factory: ChatFactory, host: str, port: int) -> None:
        addr = IPv4Address("TCP", host, port)
        self.protocol = factory.buildProtocol(addr)
        self.transport = BufferedTransport(host, port)
        self.protocol.makeConnection(self.transport)
        self._read = 0

    def send_bytes(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def send(self, line: str) -> None:
        self.send_bytes(line.encode("utf-8") + b"\r\n")

    def lines(self) -> list[str]:
        """The lines received since the last call."""
        data = self.transport.value()
        new, self._read = data[self._read :], len(data)
        return new.decode("utf-8").split("\r\n")[:-1]

    def command(self, line: str) -> str:
        """Send a line and return its final reply (the last +OK/-ERR line)."""
        self.send(line)
        return final_replies(self.lines())[-1]

    @property
    def closing(self) -> bool:
        return self.transport.disconnecting

    def close(self) -> None:
        from twisted.internet.error import ConnectionDone

        self.protocol.connectionLost(Failure(ConnectionDone()))


def final_replies(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("+OK", "-ERR"))]
