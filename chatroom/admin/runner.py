"""
The storage transactions run synchronously, for a short-lived command: the
same functions the server's L{chatroom.storage.database.Database} runs in
its pool (C{operation(cursor, *args)}), so the SQL has one source.

Safe beside a running server: each call is one short transaction; SQLite
is opened as the server opens it (WAL, so readers never wait on the
writer, and a busy timeout, so a write waits its turn rather than fails);
the only schema change is the server's own migrations (L{migrate_schema}).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from chatroom.storage.database import Cursor
from chatroom.storage.engines import SQLITE, Engine
from chatroom.storage.opening import make_private_sqlite_file, set_up_sqlite_connection
from chatroom.storage.schema import migrate_schema

T = TypeVar("T")


class NoDatabase(Exception):
    """The location names no database this command will open."""


class SyncStorage:
    """One connection, and a transaction per call."""

    def __init__(self, connection: Any, engine: Engine) -> None:
        self.connection = connection
        self.engine = engine

    def read(self, operation: Callable[..., T], *args: Any) -> T:
        """Run C{operation(cursor, *args)} in a read transaction (one snapshot)."""
        return self._transaction("BEGIN", operation, args)

    def write(self, operation: Callable[..., T], *args: Any) -> T:
        """Run C{operation(cursor, *args)} in a write transaction, committed."""
        return self._transaction(self.engine.begin, operation, args)

    def migrate(self) -> int:
        """Apply what the server would apply at start-up; the schema version."""
        return self.write(migrate_schema, self.engine)

    def close(self) -> None:
        self.connection.close()

    def _transaction(
        self, begin: str | None, operation: Callable[..., T], args: tuple
    ) -> T:
        cursor = Cursor(self.connection.cursor(), self.engine)
        if self.engine is SQLITE and begin:
            cursor.execute(begin)
        try:
            result = operation(cursor, *args)
        except BaseException:
            self.connection.rollback()
            raise
        self.connection.commit()
        return result


def open_storage(location: str) -> SyncStorage:
    """
    The database at C{location}, as C{twistd chatroom --db} takes it: a SQLite
    file, which must exist (a mistyped path must not make an empty
    database), or a C{postgresql://} URL.
    """
    if urlsplit(location).scheme in ("postgresql", "postgres"):
        from chatroom.storage.postgres import POSTGRES, psycopg

        try:
            return SyncStorage(psycopg.connect(location), POSTGRES)
        except psycopg.Error as e:
            raise NoDatabase(f"cannot connect to the database: {e}") from None
    path = Path(location)
    if location == ":memory:" or not path.is_file():
        raise NoDatabase(
            f"there is no database at {location}: give the --data-dir or --db"
            " the server uses (it makes the database on its first start)"
        )
    make_private_sqlite_file(path)
    connection = sqlite3.connect(location, isolation_level=None)
    set_up_sqlite_connection(connection)
    return SyncStorage(connection, SQLITE)
