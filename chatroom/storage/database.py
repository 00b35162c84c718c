"""
One wrapper around C{adbapi.ConnectionPool} that knows each engine's quirks.

Every interaction is a named function that takes a L{Cursor} and its
arguments, so a profile, a log or a traceback says which transaction it was:
C{db.read(find_user_by_key, key)}.  All writes go through L{Database.write},
which groups whatever arrives while a transaction is in flight into the next
one (group commit): one commit per batch instead of one per message, and
writes still land in the order they were submitted.  Rows that no write reads
back (room messages, activity) go through L{Database.append}: a batch writes
the rows of one L{ManyRows} statement a few hundred to a statement, and
those of a plain statement with one C{executemany}.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import chain
from typing import Any, NamedTuple, TypeVar

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.storage.engines import Engine

T = TypeVar("T")

MAX_BATCH = 1000
# Placeholders in one statement: SQLite before 3.32 takes at most 999.
MAX_PARAMETERS = 999


class ManyRows:
    """
    An C{INSERT} that takes any number of rows in one statement: C{template}
    has C{{rows}} where the C{VALUES} tuples go, each C{width} placeholders.

    The database thread takes the GIL back after every statement, and a
    reactor thread busy in Python yields it only every 5 ms
    (C{sys.getswitchinterval}).  In a micro-benchmark against such a thread,
    1000 rows took 0.36-0.42 s one statement a row (C{executemany}) and
    21-24 ms in ten statements; against a thread that makes system calls
    (which release the GIL), 2-9 ms either way.
    """

    def __init__(self, template: str, width: int) -> None:
        self.template = template
        self.width = width
        # Rows in the largest statement: a power of two, so that the few
        # sizes a batch splits into stay in the driver's statement cache.
        self.most = 1 << ((MAX_PARAMETERS // width).bit_length() - 1)
        self.one = self.sql(1)

    def sql(self, count: int) -> str:
        return _rows_sql(self.template, self.width, count)

    def __repr__(self) -> str:
        return f"ManyRows({self.template!r}, {self.width})"


@lru_cache(maxsize=256)
def _rows_sql(template: str, width: int, count: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return template.format(rows=", ".join([row] * count))


def row_chunks(rows: list[tuple], most: int) -> Iterable[list[tuple]]:
    """C{rows} in order, in chunks of C{most}, then of the powers of two that
    make up the rest (at most one of each)."""
    start, left = 0, len(rows)
    size = most
    while left:
        while size > left:
            size >>= 1
        yield rows[start : start + size]
        start += size
        left -= size


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

    def insert_rows(self, statement: ManyRows, rows: list[tuple]) -> None:
        """C{rows}, in order, in as few statements as the engine takes."""
        for chunk in row_chunks(rows, statement.most):
            self.execute(statement.sql(len(chunk)), tuple(chain.from_iterable(chunk)))

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        """Rows the last UPDATE or DELETE changed."""
        return self._cursor.rowcount

    def savepoint(self, action: str) -> None:
        self._cursor.execute(f"{action} batch_op")


Operation = Callable[..., T]


class _Row(NamedTuple):
    """One row of an INSERT queued by L{Database.append}."""

    statement: str | ManyRows
    values: tuple


def wait_for_earlier_writes(cursor: Cursor) -> None:
    """Nothing: its commit means every write queued before it has committed."""


class Database:
    """The pool, its engine, and a group-commit queue for writes."""

    log = Logger()

    def __init__(self, pool: adbapi.ConnectionPool, engine: Engine) -> None:
        self.pool = pool
        self.engine = engine
        # Queued writes, in order: (operation or row, its arguments, guarded,
        # done: None for a row nobody waits for).
        self._pending: list[
            tuple[Operation | _Row, tuple, bool, defer.Deferred | None]
        ] = []
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
        return self.write(wait_for_earlier_writes)

    def read(self, operation: Operation[T], *args: Any) -> defer.Deferred[T]:
        """Run C{operation(cursor, *args)}, read-only, in a pool thread."""
        return self.pool.runInteraction(self._with_cursor, operation, *args)

    def write(
        self, operation: Operation[T], *args: Any, guarded: bool = False
    ) -> defer.Deferred[T]:
        """
        Queue C{operation(cursor, *args)}; the Deferred fires with its result
        once its transaction has committed.

        @param guarded: the operation may raise (a uniqueness check, say); run
            it inside a savepoint so its failure does not undo its batch-mates.
        """
        d: defer.Deferred = defer.Deferred()
        self._pending.append((operation, args, guarded, d))
        if self._in_flight is None:
            self._flush()
        return d

    def append(
        self, statement: str | ManyRows, row: tuple, acknowledged: bool = True
    ) -> defer.Deferred[None] | None:
        """
        Queue one row of an C{INSERT} that no write operation reads back (room
        messages, activity); the Deferred fires once it has committed.  A
        batch runs its operations first, then each statement's rows in the
        order they came: a L{ManyRows} a few hundred rows to a statement, a
        plain one with one C{executemany}.

        @param acknowledged: if false, nobody waits for the row: no Deferred
            is made (one row per message), and a failed batch is only logged.
        """
        if acknowledged:
            return self.write(_Row(statement, row))
        self._pending.append((_Row(statement, row), (), False, None))
        if self._in_flight is None:
            self._flush()
        return None

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
        rows: dict[str | ManyRows, list[tuple]] = {}
        for operation, args, guarded, _ in batch:
            if type(operation) is _Row:
                rows.setdefault(operation.statement, []).append(operation.values)
                outcomes.append(None)
                continue
            if not guarded:
                outcomes.append(operation(cursor, *args))
                continue
            cursor.savepoint("SAVEPOINT")
            try:
                outcomes.append(operation(cursor, *args))
            except Exception as e:
                cursor.savepoint("ROLLBACK TO SAVEPOINT")
                outcomes.append(Failure(e))
            cursor.savepoint("RELEASE SAVEPOINT")
        for statement, values in rows.items():
            if type(statement) is ManyRows:
                cursor.insert_rows(statement, values)
            else:
                cursor.executemany(statement, values)
        return outcomes

    def _batch_done(self, outcomes: list | Failure, batch: list) -> None:
        self._in_flight = None
        if isinstance(outcomes, Failure):
            self.log.failure(
                "write batch of {size} failed ({operations});"
                " nothing in it was acknowledged",
                outcomes,
                size=len(batch),
                operations=_operation_names(entry[0] for entry in batch),
            )
            outcomes = [outcomes] * len(batch)
        # Start the next batch before firing callbacks: they may queue more.
        if self._pending:
            self._flush()
        for (_, _, _, d), outcome in zip(batch, outcomes, strict=True):
            if d is None:
                continue
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)


_INSERT_INTO = re.compile(r"\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)


def _operation_names(operations: Iterable[Operation | _Row]) -> str:
    """
    What a batch held, for its failure log: each operation's name in the
    order they came, with a count where it came more than once (C{insert_user,
    append messages x50}).
    """
    counts = Counter(map(_operation_name, operations))
    return ", ".join(
        name if count == 1 else f"{name} x{count}" for name, count in counts.items()
    )


def _operation_name(operation: Operation | _Row) -> str:
    if type(operation) is _Row:
        statement = operation.statement
        if type(statement) is ManyRows:
            statement = statement.template
        table = _INSERT_INTO.match(statement)
        return f"append {table[1] if table else statement}"
    return getattr(operation, "__qualname__", repr(operation))
