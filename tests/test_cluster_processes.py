"""
Three real C{twistd chatroom} processes on one PostgreSQL schema and one
Redis prefix, clients spread over them: one node is killed with SIGKILL mid
chat, the others carry on, and presence drops its users within the timeout.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.cluster_helpers import (
    REDIS_URL,
    NodeClients,
    Schema,
    drop_redis_keys,
    postgres_unavailable,
    redis_unavailable,
    unique_name,
    until_reply,
)
from tests.realserver import TwistdProcess

PRESENCE_TIMEOUT = 1  # seconds; a beat every third of it


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
        self.nodes: dict[str, TwistdProcess] = {}

    @defer.inlineCallbacks
    def start_nodes(self, *names: str):
        for name in names:
            # Processes stop (in cleanup) before the schema and keys go.
            self.nodes[name] = TwistdProcess(
                self,
                self.directory,
                "--node", name,
                "--db", self.db,
                "--redis", self.redis,
                "--presence-timeout", str(PRESENCE_TIMEOUT),
                name=name,
            )  # fmt: skip
        yield defer.gatherResults(
            [defer.ensureDeferred(node.start(15)) for node in self.nodes.values()]
        )

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
