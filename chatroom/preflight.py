"""
What a start needs that can be checked before the reactor runs, each failure
one L{usage.UsageError} line saying what to do: directories the server will
write, the extras a --db or --redis needs, the --cert and --key files.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twisted.python import usage

from chatroom.tls import check_certificate_and_key

# The optional dependency each feature needs: (module, extra of setup.cfg).
POSTGRES = ("psycopg", "postgres")
REDIS = ("txredisapi", "redis")


def check_what_the_start_needs(config: Mapping[str, Any], db_in_data_dir: bool) -> None:
    """Check what a start with the options C{config} will need of its host."""
    if config["cert"] is not None:
        check_tls_files(config["cert"], config["key"])
    if urlsplit(config["db"]).scheme in ("postgresql", "postgres"):
        check_extra_installed("--db postgresql://", POSTGRES)
    elif config["db"] != ":memory:":
        check_writable_file(
            Path(config["db"]), "--data-dir" if db_in_data_dir else "--db"
        )
    if config["redis"] is not None:
        check_extra_installed("--redis", REDIS)
    # A generated admin password and a self-signed certificate go there.
    generates = config["admin-password"] is None or (
        (
            config["tls-ports"]
            or config.get("irc-tls-ports")
            or config.get("web-tls-ports")
        )
        and config["cert"] is None
    )
    if generates:
        check_writable_directory(Path(config["data-dir"]), "--data-dir")


def check_writable_directory(directory: Path, option: str) -> None:
    """
    C{directory} can be written, or made: the nearest of it and its parents
    that exists is a directory in which a file can be created.  Tried, not
    judged from the mode bits, which do not bind root (nor see a read-only
    mount).
    """
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise usage.UsageError(f"{option} {directory}: {existing} is not a directory")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        made = "" if existing == directory else f" ({existing} is not)"
        raise usage.UsageError(
            f"{option} {directory} is not writable{made}: {e.strerror};"
            f" choose a directory this user may write"
        ) from None


def check_writable_file(path: Path, option: str) -> None:
    """
    The file at C{path} can be opened to read and write, or created; and
    files can be created beside it, as SQLite does its -wal and -journal.
    """
    if path.exists():
        try:
            path.open("r+b").close()
        except OSError as e:
            raise usage.UsageError(f"{option} {path}: {e.strerror}") from None
    check_writable_directory(path.parent, option)


def check_extra_installed(feature: str, needs: tuple[str, str]) -> None:
    """The module C{feature} needs imports; if not, name the pip line."""
    module, extra = needs
    try:
        importlib.import_module(module)
    except ImportError:
        raise usage.UsageError(
            f"{feature} needs {module}, which is not installed:"
            f" pip install '.[{extra}]'"
        ) from None


def check_tls_files(cert: str, key: str) -> None:
    """--cert and --key can be read, and the key is the certificate's."""
    try:
        check_certificate_and_key(cert, key)
    except ValueError as e:
        raise usage.UsageError(str(e)) from None
