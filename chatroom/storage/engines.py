"""
What differs between database engines: the driver, its placeholder, its DDL
types and how it opens a write transaction.  Callers write SQL once with
C{?} placeholders; L{Engine.sql} converts it.  PostgreSQL's engine lives in
L{chatroom.storage.postgres}, so psycopg is imported only when it is used.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


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
        """C{statement}, written with C{?}, in this engine's placeholders."""
        return convert_placeholders(statement, self.placeholder)

    def is_integrity_error(self, error: BaseException) -> bool:
        return isinstance(error, self.module.IntegrityError)


@lru_cache(maxsize=512)
def convert_placeholders(statement: str, placeholder: str) -> str:
    """C{statement} with each C{?} replaced by C{placeholder}, cached."""
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
