"""
Three real C{twistd chatroom} processes on one PostgreSQL schema and one
Redis prefix, clients spread over them: one node is killed with SIGKILL mid
chat, the others carry on, and presence drops its users within the timeout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.cluster_helpers import (
    REDIS_URL,
    NodeClients,
    Schema,
    drop_redis_keys,
    poll,
    postgres_unavailable,
    redis_unavailable,
    unique_name,
    until_reply,
)

PROJECT = Path(__file__).resolve().parent.parent
PRESENCE_TIMEOUT = 1  # seconds; a beat every third of it
LISTENING = re.compile(r"LineFactory starting on (\d+)")
# twistd's own entry point, whatever the installed script is called.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class Node:
    """One C{twistd chatroom} process and its log."""

    def __init__(self, name: str, directory: Path, db: str, redis: str) -> None:
        self.name = name
        self.log = directory / f"{name}.log"
        env = dict(os.environ, PYTHONPATH=str(PROJECT))
        self.process = subprocess.Popen(
            [
                *TWISTD, "-n", "--pidfile=", f"--logfile={self.log}",
                "chatroom",
                "--node", name,
                "--port", "tcp:0:interface=127.0.0.1",
                "--db", db,
                "--redis", redis,
                "--presence-timeout", str(PRESENCE_TIMEOUT),
                "--bcrypt-rounds", "4",
                "--register-rate", "0",
                "--admin-password-file", str(directory / "admin-password"),
                "--data-dir", str(directory / name),
            ],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.port: int | None = None

    def listening(self) -> bool:
        """Whether the node listens yet (C{self.port}); fails if it died."""
        if self.process.poll() is not None:
            raise AssertionError(f"node {self.name} exited:\n{self.read_log()}")
        found = LISTENING.search(self.read_log())
        if found:
            self.port = int(found.group(1))
        return self.port is not None

    def read_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)

    def stop(self) -> None:
        """SIGTERM, as systemd would; SIGKILL if it takes too long."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


class ProcessClusterTests(NodeClients, unittest.TestCase):
    skip = postgres_unavailable() or redis_unavailable()
    timeout = 30

    def setUp(self):
        schema = Schema()
        self.addCleanup(schema.drop)
        prefix = unique_name("chatroom_test")
        self.addCleanup(drop_redis_keys, prefix)
        self.db = schema.url
        self.redis = f"{REDIS_URL}?prefix={prefix}"
        self.directory = Path(self.mktemp()).resolve()
        self.directory.mkdir(parents=True)
        (self.directory / "admin-password").write_text("admin-secret\n")
        self.nodes: dict[str, Node] = {}

    @defer.inlineCallbacks
    def start_nodes(self, *names: str):
        for name in names:
            node = Node(name, self.directory, self.db, self.redis)
            # Before the schema and keys go: processes first, always.
            self.addCleanup(node.stop)
            self.nodes[name] = node
        yield poll(lambda: all(node.listening() for node in self.nodes.values()), 15)

    @defer.inlineCallbacks
    def test_a_node_killed_mid_chat_leaves_the_others_chatting(self):
        yield self.start_nodes("a", "b", "c")
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        cat = yield self.client("c", "cat")
        yield until_reply(ann, "/who lobby", "bob (online)")
        yield until_reply(ann, "/who lobby", "cat (online)")

        talk = [ann.ok(f"before {i}") for i in range(5)]
        self.nodes["b"].kill()
        killed_at = reactor.seconds()
        yield defer.gatherResults(talk)
        yield bob.closed

        yield ann.ok("after the kill")
        yield cat.until(lambda lines: "[lobby] ann: after the kill" in lines)
        self.assertEqual(
            cat.messages(),
            [f"[lobby] ann: before {i}" for i in range(5)]
            + ["[lobby] ann: after the kill"],
        )
        yield cat.ok("still here")
        yield ann.until(lambda lines: "[lobby] cat: still here" in lines)

        # Gone from presence within the timeout plus one beat (and some slack).
        yield until_reply(ann, "/who lobby", "bob", timeout=PRESENCE_TIMEOUT * 3)
        self.assertLess(reactor.seconds() - killed_at, PRESENCE_TIMEOUT * 3)
        self.assertIn("cat (online)", (yield cat.ok("/who lobby")))

        # What ann tells bob now waits for him, on whichever node he comes back.
        yield ann.ok("/msg bob call me")
        bob = yield self.client("c")
        yield bob.ok("/login bob pw-bob")
        yield bob.until(lambda lines: "[private] ann: call me" in lines)
