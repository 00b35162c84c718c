"""
Where a device keeps its files, and how they are written: beside the
known_hosts trust store, one directory per server and account, mode 0700,
each file 0600 and replaced atomically, so a crash leaves the old file or the
new one, never half of one. Disk work runs off the reactor, one job at a time.
"""

import fcntl
import json
import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred

from chatroom.names import name_key

KEYS_FILE = "device-keys.json"
CONTACTS_FILE = "contacts.json"
SEEN_FILE = "seen.json"
HISTORY_FILE = "history.txt"
LOCK_FILE = ".lock"

DEVICE_MAX = 32
_NOT_IN_DEVICE = re.compile(r"[^A-Za-z0-9_.-]+")
DEVICE_NAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{DEVICE_MAX}}}\Z")

T = TypeVar("T")
# Runs a blocking function somewhere else, as deferToThreadPool does.
Runner = Callable[..., Deferred]


def account_directory(config: Path, host: str, port: int, user: str) -> Path:
    """C{CONFIG/e2e/HOST_PORT/USER}: a device is one account on one server."""
    return config / "e2e" / f"{host.lower()}_{port}" / name_key(user)


def default_device_name(hostname: str | None = None, token: str | None = None) -> str:
    """This machine's host name, cleaned and cut, and a random suffix."""
    host = _NOT_IN_DEVICE.sub("-", hostname or socket.gethostname()).strip("-.")
    suffix = token or secrets.token_hex(2)
    return f"{host[: DEVICE_MAX - len(suffix) - 1] or 'device'}-{suffix}"


def make_private(directory: Path) -> None:
    """
    Make C{directory} and every missing parent, each mode 0700: the names
    alone (HOST_PORT, USER) tell which servers and accounts one uses.
    """
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def lock_directory(directory: Path) -> int:
    """
    Hold C{directory} for this client until the descriptor returned is
    closed. Two clients on one device would each rotate and save its keys,
    and one's published prekey could be lost from disk.

    @raise OSError: another client holds it.
    """
    make_private(directory)
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise OSError(
            "another chatroom-client is using this device now; end it first"
        ) from None
    except OSError:
        # No locks here (some network file systems): go on unguarded rather
        # than turn end-to-end encryption off.
        pass
    return descriptor


def write_atomically(path: Path, data: bytes) -> None:
    """Replace C{path} by C{data}, readable by its owner only."""
    make_private(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # The rename itself is durable only once its directory is synced: else
    # a power cut could bring back keys older than those published.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def remove_leftovers(path: Path) -> None:
    """
    Delete the temporary files a crash left from replacing C{path}: one of
    device-keys.json would keep prekeys after their rotation deleted them.
    """
    for leftover in path.parent.glob(f".{path.name}.*"):
        leftover.unlink(missing_ok=True)


def read_json(path: Path) -> Any:
    """The JSON in C{path}, or L{None} if there is no such file."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def write_json(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data, indent=1).encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line to C{path}, creating it 0600."""
    make_private(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as stream:
        stream.write(line + "\n")


def run_here(function: Callable[..., T], *args: object) -> Deferred[T]:
    """A L{Runner} that runs at once, for tests."""
    return maybeDeferred(function, *args)


class FileWorker:
    """
    Runs file jobs through C{runner} (a thread, in the client) strictly one
    after another, so a later save can never be overtaken by an earlier one.
    """

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._last: Deferred[object] = Deferred()
        self._last.callback(None)

    def run(self, function: Callable[..., T], *args: object) -> Deferred[T]:
        done: Deferred[T] = Deferred()
        # chainDeferred hands the outcome to done and leaves None behind,
        # so one job's failure never stops the next.
        self._last.addCallback(
            lambda _: self._runner(function, *args).chainDeferred(done)
        )
        return done
