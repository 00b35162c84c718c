"""
The database a location names: a SQLite file path, C{:memory:}, or a
C{postgresql://} URL; opening it, and describing it for logs.

The SQLite file holds password hashes and kept private messages, so it is
readable by the server's user only, like the TLS key: the file and the
directories made for it are created private whatever the umask, and one
left readable by others (by an older version, say) is tightened.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from twisted.enterprise import adbapi
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger

from chatroom.storage.database import Database
from chatroom.storage.engines import SQLITE

PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700
GROUP_AND_OTHERS = 0o077
# The files SQLite keeps beside a database in WAL mode; it creates them with
# the database file's mode.
SQLITE_COMPANIONS = ("-wal", "-shm")

log = Logger()


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
    pool_class = adbapi.ConnectionPool if location == ":memory:" else SQLiteFilePool
    pool = pool_class(
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


class SQLiteFilePool(adbapi.ConnectionPool):
    """
    A pool on a SQLite file, which it makes private before its first
    connection opens it: in a pool thread, so the disk work is off the
    reactor and nothing is created before the service starts.
    """

    def connect(self) -> sqlite3.Connection:
        if self.threadID() not in self.connections:
            make_private_sqlite_file(Path(self.connargs[0]))
        return super().connect()


def make_private_sqlite_file(path: Path) -> None:
    """
    Create the database file at C{path} (mode 0600) and any directories
    missing above it (0700) before SQLite opens it; take the access of
    others away from the file and its WAL companions if they exist already.
    """
    _make_private_directories(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for file in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS)):
        _take_away_others_access(file)


def _make_private_directories(directory: Path) -> None:
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        # The umask may only narrow the mode, so none is ever wider than 0700.
        directory.mkdir(PRIVATE_DIRECTORY, exist_ok=True)


def _take_away_others_access(file: Path) -> None:
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & GROUP_AND_OTHERS:
        private = mode & ~GROUP_AND_OTHERS
        file.chmod(private)
        log.info(
            "{file} was open to others (mode {mode:o}); now {private:o}",
            file=str(file),
            mode=mode,
            private=private,
        )


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
