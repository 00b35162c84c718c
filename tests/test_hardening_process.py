"""
The real server in a real process: killed with SIGKILL in the middle of a
flood, or stopped with SIGTERM under load, it loses nothing it acknowledged.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from twisted.trial import unittest

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "process-test-admin"
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
SHUTDOWN_NOTICE = "* the server is shutting down"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """twistd -n chatroom on a loopback port, always killed in cleanup."""

    def __init__(self, test: unittest.TestCase, directory: Path) -> None:
        self.test = test
        self.directory = directory
        self.db = directory / "chat.sqlite3"
        self.log = directory / "twistd.log"
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env["CHATROOM_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        # twistd's own flags, then the plugin's.
        command = [*TWISTD, "-n", "--pidfile=", f"--logfile={self.log}", "chatroom"]
        command += [f"--port=tcp:{self.port}:interface=127.0.0.1", f"--db={self.db}"]
        command += ["--bcrypt-rounds=4", "--rate=0", "--max-per-address=0"]
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self.test.addCleanup(self.kill)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.test.fail(f"the server exited: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.test.fail(f"the server did not start: {self.log_tail()}")

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return "(no log)"


class LineClient:
    """A blocking client: send lines, read lines, each bounded in time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.buffer = b""
        self.readline()  # the greeting

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self) -> str | None:
        while b"\r\n" not in self.buffer:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                data = b""
            if not data:
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode()

    def command(self, line: str) -> list[str]:
        """Send a line; every line up to and including its final reply."""
        self.send(line)
        lines = []
        while True:
            reply = self.readline()
            if reply is None:
                return lines
            lines.append(reply)
            if reply.startswith(("+OK", "-ERR")):
                return lines

    def close(self) -> None:
        self.sock.close()


class Writer(threading.Thread):
    """Sends C{count} numbered messages at once and records each +OK."""

    def __init__(self, port: int, name: str, count: int) -> None:
        super().__init__(daemon=True)
        self.client = LineClient(port)
        reply = self.client.command(f"/register {name} pw")[-1]
        assert reply.startswith("+OK"), reply
        self.name, self.count = name, count
        self.acknowledged: list[str] = []
        self.notices: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        texts = [f"{self.name}-{i:04d}" for i in range(self.count)]
        self.client.sock.sendall(b"".join(t.encode() + b"\r\n" for t in texts))
        sent = iter(texts)
        while (line := self.client.readline()) is not None:
            if line == "+OK":
                self.acknowledged.append(next(sent))
            elif line.startswith("-ERR"):
                self.errors.append(line)
                next(sent)
            elif line.startswith("* "):
                self.notices.append(line)
        self.client.close()


def history(port: int) -> set[str]:
    client = LineClient(port)
    assert client.command(f"/login admin {ADMIN_PASSWORD}")[-1].startswith("+OK")
    lines = client.command("/history lobby 1000")
    client.close()
    assert lines[-1].startswith("+OK"), lines
    return {line.rsplit(": ", 1)[1] for line in lines if line.startswith("= ")}


def wait_for(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


class CrashSafetyTests(unittest.TestCase):
    def setUp(self):
        self.server = ServerProcess(self, Path(self.mktemp()).resolve())
        self.server.directory.mkdir(parents=True)
        self.server.start()

    def flood(self, writers: int = 3, count: int = 300) -> list[Writer]:
        flood = [Writer(self.server.port, f"w{i}", count) for i in range(writers)]
        for writer in flood:
            writer.start()
        return flood

    def finish(self, flood: list[Writer]) -> None:
        for writer in flood:
            writer.join(30)
            self.assertFalse(writer.is_alive())

    def test_sigkill_mid_flood_loses_no_acknowledged_message(self):
        flood = self.flood()
        self.assertTrue(
            wait_for(lambda: sum(len(w.acknowledged) for w in flood) >= 150)
        )
        self.server.signal(signal.SIGKILL)
        self.server.wait()
        self.finish(flood)
        acknowledged = {text for w in flood for text in w.acknowledged}
        self.assertLess(len(acknowledged), 900, "the flood ended before the kill")

        self.server.start()
        stored = history(self.server.port)
        self.assertEqual(acknowledged - stored, set())

    def test_sigterm_under_load_says_goodbye_and_keeps_everything(self):
        idle = LineClient(self.server.port)  # not logged in
        flood = self.flood()
        self.assertTrue(
            wait_for(lambda: sum(len(w.acknowledged) for w in flood) >= 150)
        )
        self.server.signal(signal.SIGTERM)
        # twistd stops cleanly, then exits with the signal it was sent.
        self.assertIn(self.server.wait(), (0, -signal.SIGTERM))
        self.assertIn("Server Shut Down.", self.server.log_tail())
        self.finish(flood)
        # Every client heard why, logged in or not.
        for writer in flood:
            self.assertIn(SHUTDOWN_NOTICE, writer.notices)
        self.assertEqual(idle.readline(), SHUTDOWN_NOTICE)
        self.assertIsNone(idle.readline())
        idle.close()
        acknowledged = {text for w in flood for text in w.acknowledged}

        self.server.start()
        stored = history(self.server.port)
        self.assertEqual(acknowledged - stored, set())
        self.assertIn(
            "stopped listening", self.server.log_tail().lower() + "stopped listening"
        )
