"""
The whole server on real sockets, on 127.0.0.1 port 0: in this process as
twistd would build it (L{make_server}, L{RunningServer}), or as a real
C{twistd -n chatroom} process (L{TwistdProcess}).

L{server_arguments} is the one command line both start from;
L{make_server} is the one place the in-process server is made.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from twisted.internet import defer, reactor, task, utils
from twisted.internet.interfaces import IReactorCore
from twisted.trial import unittest

from chatroom.options import Options
from chatroom.server import ChatServer
from chatroom.tap import makeService
from tests.clients import NetClient, connect, log_in
from tests.helpers import ADMIN_PASSWORD, BCRYPT_ROUNDS

LOOPBACK = "tcp:0:interface=127.0.0.1"
PROJECT = Path(__file__).resolve().parent.parent
# twistd's own entry point, whatever the installed script is called.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
# What Twisted logs once the plain port listens: how a process tells its port.
LISTENING = re.compile(r"LineFactory starting on (\d+)")


def wait(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def poll(predicate: Callable[[], object], timeout: float = 5.0, every: float = 0.02):
    """Fires once C{predicate()} is true; fails after C{timeout} seconds."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {predicate}")
        yield wait(every)


def server_arguments(data_dir: Path, *options: str) -> list[str]:
    """
    The plugin's command line for a test server keeping its files in
    C{data_dir}, with C{options} (C{--port} among them) before the rest.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    password_file = data_dir / "admin-password"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    return [
        # Tests register many users from 127.0.0.1; a test of the limit
        # itself names it in its options, which come later.
        "--register-rate",
        "0",
        *options,
        "--data-dir",
        str(data_dir),
        "--bcrypt-rounds",
        str(BCRYPT_ROUNDS),
        "--admin-password-file",
        str(password_file),
    ]


def make_server(
    data_dir: Path, *options: str, reactor: IReactorCore = reactor
) -> ChatServer:
    """The server twistd would make from C{options}, not started."""
    config = Options()
    config.parseOptions(server_arguments(data_dir, *options))
    return makeService(config, reactor)


class RunningServer:
    """Starts and stops a ChatServer on a data directory of the test's."""

    def __init__(
        self,
        testcase: unittest.TestCase,
        data_dir: Path,
        options: tuple[str, ...] = ("--port", LOOPBACK),
    ) -> None:
        self.testcase = testcase
        self.data_dir = data_dir
        self.options = options
        self.server: ChatServer | None = None
        self.clients: list[NetClient] = []

    async def start(self) -> int:
        self.server = make_server(self.data_dir, *self.options)
        self.server.startService()
        self.testcase.addCleanup(self.stop)
        await self.server.ready
        return self.port()

    def port(self, index: int = 0) -> int:
        """The port number of the C{index}th endpoint."""
        return self.server.ports[index].getHost().port

    async def stop(self) -> None:
        for client in self.clients:
            client.transport.loseConnection()
        self.clients.clear()
        if self.server is not None and self.server.running:
            await self.server.stopService()

    async def client(self, name: str | None = None, password: str = "pw") -> NetClient:
        return await self.log_in(await connect(self.port()), name, password)

    async def log_in(
        self, client: NetClient, name: str | None, password: str = "pw"
    ) -> NetClient:
        """Log C{client} in as C{name} (if any), closed when the server stops."""
        self.clients.append(client)
        if name is not None:
            await log_in(client, name, password)
        return client


def twistd_environment(*pythonpath: Path) -> dict[str, str]:
    """This process's environment, importing C{pythonpath} and then the project."""
    path = os.pathsep.join(str(entry) for entry in (*pythonpath, PROJECT))
    return dict(os.environ, PYTHONPATH=path)


def run_twistd(
    directory: Path, *arguments: str, pythonpath: tuple[Path, ...] = ()
) -> defer.Deferred[tuple[str, str, int]]:
    """
    C{twistd -n --pidfile= chatroom ARGUMENTS} in C{directory}, run to its
    end (a start that fails): fires with its stdout (where twistd -n logs),
    its stderr and its exit status.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ran = utils.getProcessOutputAndValue(
        TWISTD[0],
        [*TWISTD[1:], "-n", "--pidfile=", "chatroom", *arguments],
        env=twistd_environment(*pythonpath),
        path=str(directory),
    )
    return ran.addCallback(
        lambda result: (result[0].decode(), result[1].decode(), result[2])
    )


def unwritable_directory(testcase: unittest.TestCase) -> Path:
    """A directory this process cannot create files in, even as root."""
    if os.geteuid() == 0:
        # Mode bits do not bind root; sysfs refuses new files to anyone.
        if not os.path.isdir("/sys"):
            raise unittest.SkipTest("no unwritable directory for root here")
        return Path("/sys")
    directory = Path(testcase.mktemp())
    directory.mkdir(parents=True)
    directory.chmod(0o500)
    testcase.addCleanup(directory.chmod, 0o700)
    return directory


def writable_file_in_unwritable_directory(testcase: unittest.TestCase) -> Path:
    """
    A file this process may open to read and write, in a directory it
    cannot create files in (as SQLite's -wal and -journal files), even as root.
    """
    if os.geteuid() == 0:
        # Mode bits do not bind root; /proc makes no new files for anyone.
        return Path("/proc/self/comm")
    directory = Path(testcase.mktemp())
    directory.mkdir(parents=True)
    database = directory / "chat.sqlite3"
    database.touch()
    directory.chmod(0o500)
    testcase.addCleanup(directory.chmod, 0o700)
    return database


class TwistdProcess:
    """
    C{twistd -n chatroom} on 127.0.0.1 port 0, its files and its log in
    C{directory}; stopped when the test ends, whatever happened.
    """

    def __init__(
        self,
        testcase: unittest.TestCase,
        directory: Path,
        *options: str,
        name: str = "twistd",
    ) -> None:
        self.testcase = testcase
        self.name = name
        self.directory = directory
        self.log = directory / f"{name}.log"
        self.options = options
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._log_start = 0

    async def start(self, timeout: float = 20) -> int:
        """Start the process; fires with its port once it listens."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # Only what this run logs tells its port: twistd appends to the log.
        self.port, self._log_start = None, len(self.read_log())
        options = ("--port", LOOPBACK, *self.options)
        self.process = subprocess.Popen(
            [
                *TWISTD, "-n", "--pidfile=", f"--logfile={self.log}",
                "chatroom", *server_arguments(self.directory / self.name, *options),
            ],
            cwd=self.directory,
            env=twistd_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.testcase.addCleanup(self.stop)
        await poll(self.listening, timeout)
        return self.port

    def listening(self) -> bool:
        """Whether it listens yet (then C{self.port} is set); fails if it died."""
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.read_log()}")
        found = LISTENING.search(self.read_log()[self._log_start :])
        if found:
            self.port = int(found.group(1))
        return self.port is not None

    def read_log(self) -> str:
        """Everything the process logged, this run and earlier ones."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    async def ended(self, timeout: float = 20) -> int:
        """Fires with the exit status, negative for a signal, as Popen has it."""
        await poll(lambda: self.process.poll() is not None, timeout)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    async def stop(self, grace: float = 5) -> None:
        """SIGTERM, as systemd would; SIGKILL if it takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await self.ended(grace)
        except AssertionError:
            self.kill()
