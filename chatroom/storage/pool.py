"""
One wrapper around C{adbapi.ConnectionPool} that knows each engine's quirks.

Callers write SQL once with C{?} placeholders; the engine converts it.  All
writes go through L{Database.write}, which groups whatever arrives while a
transaction is in flight into the next one (group commit): one commit per
batch instead of one per message, and writes still land in the order they
were submitted.  Rows that no write reads back (room messages, activity) go
through L{Database.append}: a batch writes all rows of one statement with one
C{executemany}.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure

T = TypeVar("T")

MAX_BATCH = 1000


@dataclass(frozen=True)
class Engine:
    """What differs between database engines, and nothing else."""

    name: str
    module: Any
    placeholder: str
    ddl: dict[str, str] = field(default_factory=dict)
    # Statement that opens a write transaction, where the driver does not.
    begin: str | None = None
    # Statement that makes concurrent migrations (several nodes) wait in turn.
    schema_lock: str | None = None

    def sql(self, statement: str) -> str:
        return _convert(statement, self.placeholder)

    def is_integrity_error(self, error: BaseException) -> bool:
        return isinstance(error, self.module.IntegrityError)


@lru_cache(maxsize=512)
def _convert(statement: str, placeholder: str) -> str:
    return statement if placeholder == "?" else statement.replace("?", placeholder)


SQLITE = Engine(
    name="sqlite",
    module=sqlite3,
    placeholder="?",
    ddl={"id_pk": "INTEGER PRIMARY KEY", "bigint": "INTEGER"},
    # The connection is in autocommit mode, so a batch opens its transaction
    # itself; IMMEDIATE takes the write lock up front.
    begin="BEGIN IMMEDIATE",
)


class Cursor:
    """A DB-API cursor that takes C{?} placeholders whatever the engine."""

    __slots__ = ("_cursor", "_engine")

    def __init__(self, cursor: Any, engine: Engine) -> None:
        self._cursor = cursor
        self._engine = engine

    def execute(self, statement: str, params: tuple = ()) -> Cursor:
        self._cursor.execute(self._engine.sql(statement), params)
        return self

    def executemany(self, statement: str, rows: list[tuple]) -> None:
        self._cursor.executemany(self._engine.sql(statement), rows)

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def savepoint(self, action: str) -> None:
        self._cursor.execute(f"{action} batch_op")


Operation = Callable[[Cursor], T]


class _Row(NamedTuple):
    """One row of an INSERT queued by L{Database.append}."""

    statement: str
    values: tuple


class Database:
    """The pool, its engine, and a group-commit queue for writes."""

    log = Logger()

    def __init__(self, pool: adbapi.ConnectionPool, engine: Engine) -> None:
        self.pool = pool
        self.engine = engine
        # Queued writes, in order: (operation or row, guarded, done).
        self._pending: list[tuple[Operation | _Row, bool, defer.Deferred]] = []
        self._in_flight: defer.Deferred | None = None

    def start(self) -> None:
        self.pool.start()

    def close(self) -> defer.Deferred:
        """Wait for queued writes, then close the pool."""
        d = self.flushed()
        d.addBoth(lambda _: self.pool.close())
        return d

    def flushed(self) -> defer.Deferred:
        """A Deferred that fires once every write submitted so far is committed."""
        if not self._pending and self._in_flight is None:
            return defer.succeed(None)
        return self.write(lambda cursor: None)

    def read(self, operation: Operation[T], *args: Any) -> defer.Deferred[T]:
        """Run a read-only interaction in the pool thread."""
        return self.pool.runInteraction(self._with_cursor, operation, *args)

    def write(
        self, operation: Operation[T], guarded: bool = False
    ) -> defer.Deferred[T]:
        """
        Queue a write; the Deferred fires once its transaction has committed.

        @param guarded: the operation may raise (a uniqueness check, say); run
            it inside a savepoint so its failure does not undo its batch-mates.
        """
        d: defer.Deferred = defer.Deferred()
        self._pending.append((operation, guarded, d))
        if self._in_flight is None:
            self._flush()
        return d

    def append(self, statement: str, row: tuple) -> defer.Deferred[None]:
        """
        Queue one row of an C{INSERT} that no write operation reads back (room
        messages, activity); the Deferred fires once it has committed.  A
        batch runs its operations first, then each statement once with
        C{executemany} over its rows in the order they came: one call per
        table per batch rather than one per row.
        """
        return self.write(_Row(statement, row))

    def _flush(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        self._in_flight = self.pool.runInteraction(self._run_batch, batch)
        self._in_flight.addBoth(self._batch_done, batch)

    def _with_cursor(self, transaction: Any, operation: Operation[T], *args: Any) -> T:
        return operation(Cursor(transaction, self.engine), *args)

    def _run_batch(self, transaction: Any, batch: list) -> list:
        cursor = Cursor(transaction, self.engine)
        if self.engine.begin:
            cursor.execute(self.engine.begin)
        outcomes: list = []
        rows: dict[str, list[tuple]] = {}
        for operation, guarded, _ in batch:
            if type(operation) is _Row:
                rows.setdefault(operation.statement, []).append(operation.values)
                outcomes.append(None)
                continue
            if not guarded:
                outcomes.append(operation(cursor))
                continue
            cursor.savepoint("SAVEPOINT")
            try:
                outcomes.append(operation(cursor))
            except Exception as e:
                cursor.savepoint("ROLLBACK TO SAVEPOINT")
                outcomes.append(Failure(e))
            cursor.savepoint("RELEASE SAVEPOINT")
        for statement, values in rows.items():
            cursor.executemany(statement, values)
        return outcomes

    def _batch_done(self, outcomes: list | Failure, batch: list) -> None:
        self._in_flight = None
        if isinstance(outcomes, Failure):
            self.log.failure(
                "write batch of {size} failed; nothing in it was acknowledged",
                outcomes,
                size=len(batch),
            )
            outcomes = [outcomes] * len(batch)
        # Start the next batch before firing callbacks: they may queue more.
        if self._pending:
            self._flush()
        for (_, _, d), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)


def _sqlite_open(connection: sqlite3.Connection) -> None:
    # WAL lets readers run beside the writer; synchronous=FULL makes every
    # commit durable before its Deferred fires, so an +OK survives power loss.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=5000")


def open_database(location: str, reactor: IReactorCore) -> Database:
    """
    Open the database named by C{location}: a SQLite file path, C{:memory:},
    or a C{postgresql://} URL.
    """
    scheme = urlsplit(location).scheme
    if scheme in ("postgresql", "postgres"):
        from chatroom.storage.postgres import open_postgres

        return open_postgres(location, reactor)
    if location != ":memory:":
        Path(location).parent.mkdir(parents=True, exist_ok=True)
    pool = adbapi.ConnectionPool(
        "sqlite3",
        location,
        check_same_thread=False,
        isolation_level=None,
        cp_min=1,
        cp_max=1,  # SQLite has one writer; more connections only add lock waits
        cp_openfun=_sqlite_open,
        cp_reactor=reactor,
    )
    return Database(pool, SQLITE)


def describe(location: str) -> str:
    """
    The location with any password removed, for logs: the one in the user
    part of a URL (which may itself hold an C{@}), and a C{password=} query
    parameter, which libpq also takes.
    """
    if "://" not in location:
        return location  # a file
    parts = urlsplit(location)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))
