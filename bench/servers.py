"""Starting and stopping the servers under test, each in its own process group.

Every server is launched from a ``ServerSpec``; ``ServerProcess`` is a context
manager that pins it to its cores, waits until it accepts connections, and
always stops it (SIGTERM, then SIGKILL) on the way out, errors and Ctrl-C
included.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

# The one place where options for the real server's limits go: a benchmark
# offers more than one client or one address may send in production, so the
# harness lifts the per-client line and byte rates and the connection caps
# (0 = off), and prints that it did. Output-queue limits, login timeout and pings stay
# as in production: they are part of what is measured.
EXTRA_CHATROOM_ARGS: list[str] = [
    "--rate", "0",
    "--byte-rate", "0",
    "--max-connections", "0",
    "--max-per-address", "0",
    "--register-rate", "0",
    "--max-rooms", "0",
]  # fmt: skip
# Where each real-server run writes its cProfile statistics (--profile-server).
PROFILE_DIR: Path | None = None


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server; ``{port}`` and ``{data_dir}`` in argv are filled
    in at start."""

    label: str
    argv: tuple[str, ...]
    note: str = ""
    env: dict[str, str] = field(default_factory=dict)
    # Config files written into the data dir before start, by name; their
    # text gets ``{port}`` and ``{data_dir}`` filled in as argv does.
    files: tuple[tuple[str, str], ...] = ()


BARE = "bare"
COALESCING = "bare coalescing"


def bare_spec(coalescing: bool = False) -> ServerSpec:
    """The plain bare forwarder (one write per line), or with ``coalescing``
    the one that joins each connection's lines of a reactor turn."""
    argv = (sys.executable, "-m", "bench.bare_server", "--port", "{port}")
    if coalescing:
        return ServerSpec(
            COALESCING,
            (*argv, "--coalesce"),
            "bare Twisted fan-out, one write per connection per reactor turn",
        )
    return ServerSpec(BARE, argv, "bare Twisted fan-out, no auth, no storage")


def is_baseline(label: str) -> bool:
    return label in (BARE, COALESCING)


def null_spec() -> ServerSpec:
    return ServerSpec(
        "null",
        (sys.executable, "-m", "bench.null_server", "--port", "{port}"),
        "+OK to every line, delivers nothing",
    )


def chatroom_available() -> bool:
    return (ROOT / "chatroom" / "tap.py").exists()


def chatroom_spec(db: str = "", bcrypt_rounds: int = 4) -> ServerSpec:
    """The real server under twistd. ``db`` empty means the default SQLite file
    in the data dir; ``:memory:`` keeps storage in memory."""
    twistd = Path(sys.executable).with_name("twistd")
    argv = [str(twistd), "-n", "--pidfile=", "--logfile={data_dir}/server.log"]
    if PROFILE_DIR is not None:
        # twistd's own profiler: pstats of the reactor thread, saved at stop.
        argv += [
            f"--profile={PROFILE_DIR}/chatroom-{{port}}.pstats",
            "--profiler=cprofile",
            "--savestats",
        ]
    argv += [
        "chatroom",
        "--port",
        f"tcp:{{port}}:interface={HOST}",
        "--data-dir",
        "{data_dir}",
        "--bcrypt-rounds",
        str(bcrypt_rounds),
    ]
    if db:
        argv += ["--db", db]
    argv += EXTRA_CHATROOM_ARGS
    storage = "in memory" if db == ":memory:" else "SQLite file"
    return ServerSpec(
        f"chatroom ({storage}, bcrypt {bcrypt_rounds})",
        tuple(argv),
        f"storage {storage}, bcrypt cost {bcrypt_rounds}",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A running server: ``pid``, ``port``, ``data_dir``, ``started_at``."""

    def __init__(
        self,
        spec: ServerSpec,
        cores: tuple[int, ...],
        data_dir: str | None = None,
        startup_timeout_s: float = 60.0,
    ):
        self.spec = spec
        self.cores = cores
        self.port = free_port()
        self._own_dir = (
            None if data_dir else tempfile.TemporaryDirectory(prefix="chatroom-bench-")
        )
        self.data_dir = data_dir or self._own_dir.name
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.listening_after_s = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def __enter__(self) -> ServerProcess:
        argv = [
            arg.format(port=self.port, data_dir=self.data_dir) for arg in self.spec.argv
        ]
        env = {
            **os.environ,
            **self.spec.env,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])
            ),
        }
        for name, text in self.spec.files:
            text = text.replace("{port}", str(self.port))
            (Path(self.data_dir) / name).write_text(
                text.replace("{data_dir}", self.data_dir)
            )
        log = open(Path(self.data_dir) / "stdout.log", "ab")  # noqa: SIM115
        cores = self.cores
        self.started_at = time.monotonic()
        try:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Pinned before exec, so every thread it starts inherits it.
                preexec_fn=lambda: os.sched_setaffinity(0, cores),
            )
        finally:
            log.close()
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_listening(self) -> None:
        deadline = self.started_at + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.label} exited with "
                    f"{self.process.returncode}: {self.log_tail()}"
                )
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
            except OSError:
                time.sleep(0.02)
                continue
            self.listening_after_s = time.monotonic() - self.started_at
            return
        raise RuntimeError(
            f"{self.spec.label} not listening after "
            f"{self.startup_timeout_s}s: {self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        text = []
        for name in ("stdout.log", "server.log"):
            path = Path(self.data_dir) / name
            if path.exists():
                text += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text)

    def stop(self) -> None:
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(5)
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    def _signal(self, signum: int) -> None:
        # Its own process group (start_new_session): only what it started.
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass
