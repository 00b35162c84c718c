"""
The real PostgreSQL and Redis the multi-node tests run against: where they
are, whether they answer, and a throwaway namespace per test so runs in
parallel never see each other's data; and clients of a test's nodes.
"""

from __future__ import annotations

import os
import secrets
import socket
from functools import cache
from urllib.parse import quote, urlsplit

from twisted.internet import defer, reactor

from tests.clients import NetClient, connect, log_in
from tests.realserver import wait

POSTGRES_URL = os.environ.get(
    "CHATROOM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CHATROOM_TEST_REDIS", "redis://127.0.0.1:6379/0")


@cache
def postgres_unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install .[postgres])"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as e:
        return f"no PostgreSQL at {POSTGRES_URL}: {e}".strip()
    return None


@cache
def redis_unavailable() -> str | None:
    """Why the Redis tests cannot run, or None when they can."""
    try:
        import txredisapi  # noqa: F401
    except ImportError:
        return "txredisapi is not installed (pip install .[redis])"
    address = urlsplit(REDIS_URL)
    try:
        with socket.create_connection(
            (address.hostname, address.port or 6379), timeout=3
        ) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                return f"{REDIS_URL} does not answer PING"
    except OSError as e:
        return f"no Redis at {REDIS_URL}: {e}"
    return None


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


class Schema:
    """A PostgreSQL schema of its own, found first through C{search_path}."""

    def __init__(self) -> None:
        import psycopg

        self.name = unique_name("chatroom_test")
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{self.name}"')
        separator = "&" if "?" in POSTGRES_URL else "?"
        self.url = (
            POSTGRES_URL + separator + "options=" + quote(f"-csearch_path={self.name}")
        )

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{self.name}" CASCADE')


def drop_redis_keys(prefix: str) -> None:
    """Delete every key a test run made under C{prefix}."""
    address = urlsplit(REDIS_URL)
    script = (
        "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end"
    )
    words = [b"EVAL", script.encode(), b"0", f"{prefix}:*".encode()]
    command = f"*{len(words)}\r\n".encode() + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in words
    )
    with socket.create_connection(
        (address.hostname, address.port or 6379), timeout=3
    ) as sock:
        sock.sendall(command)
        sock.recv(64)


@defer.inlineCallbacks
def until_reply(client: NetClient, line: str, wanted: str, timeout: float = 5.0):
    """Send C{line} until its data lines include C{wanted}; fires with them."""
    deadline = reactor.seconds() + timeout
    while True:
        reply, data = yield client.send(line)
        if wanted in data:
            return data
        if reactor.seconds() > deadline:
            raise AssertionError(f"{line!r} still answers {reply!r} {data!r}")
        yield wait(0.02)


class NodeClients:
    """Test-case mixin: scripted clients of the nodes in C{self.nodes}."""

    @defer.inlineCallbacks
    def client(self, node: str, name: str | None = None):
        client = yield defer.ensureDeferred(connect(self.nodes[node].port))
        self.addCleanup(self._close, client)
        if name is not None:
            yield defer.ensureDeferred(log_in(client, name, f"pw-{name}"))
        return client

    def _close(self, client: NetClient):
        if client.transport.connected:
            client.transport.loseConnection()
            return client.closed
        return None
