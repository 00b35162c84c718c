"""
The database a location names: a SQLite file path, C{:memory:}, or a
C{postgresql://} URL; opening it, and describing it for logs.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from twisted.enterprise import adbapi
from twisted.internet.interfaces import IReactorCore

from chatroom.storage.database import Database
from chatroom.storage.engines import SQLITE


def open_database(location: str, reactor: IReactorCore) -> Database:
    """
    Open the database named by C{location}: a SQLite file path, C{:memory:},
    or a C{postgresql://} URL.
    """
    scheme = urlsplit(location).scheme
    if scheme in ("postgresql", "postgres"):
        # Imported here so that psycopg is needed only by those who use it.
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
        cp_openfun=set_up_sqlite_connection,
        cp_reactor=reactor,
    )
    return Database(pool, SQLITE)


def set_up_sqlite_connection(connection: sqlite3.Connection) -> None:
    """Set up each new SQLite connection of the pool, in its thread."""
    # WAL lets readers run beside the writer; synchronous=FULL makes every
    # commit durable before its Deferred fires, so an +OK survives power loss.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=5000")


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
