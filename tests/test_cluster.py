"""
Three nodes in one process, sharing a real PostgreSQL schema and a Redis key
prefix of their own, with clients spread over them on loopback TCP: they
must behave as one chat server, and carry on when one of them dies.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from chatroom.storage.retention import ActivityRetention
from tests.clients import count_of
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
from tests.realserver import LOOPBACK, make_server, poll, wait

PRESENCE_TIMEOUT = 1  # seconds: a dead node's users go offline within ~1.4 s


class ClusterTestCase(NodeClients, unittest.TestCase):
    """Nodes in C{self.nodes} (by name), one database and Redis namespace each run."""

    skip = postgres_unavailable() or redis_unavailable()
    timeout = 60

    def setUp(self):
        self.schema = Schema()
        self.addCleanup(self.schema.drop)
        prefix = unique_name("chatroom_test")
        self.redis_url = f"{REDIS_URL}?prefix={prefix}"
        self.addCleanup(drop_redis_keys, prefix)
        self.nodes: dict = {}
        # Nodes only ever talk to each other here: any message one of them
        # drops as malformed means the sender and the validator disagree.
        self.dropped: list[dict] = []
        globalLogPublisher.addObserver(self._watch_drops)
        self.addCleanup(globalLogPublisher.removeObserver, self._watch_drops)
        self.addCleanup(
            lambda: self.assertEqual(
                [event["why"] for event in self.dropped], [], "bus messages dropped"
            )
        )

    def _watch_drops(self, event: dict) -> None:
        if "malformed message from the bus" in event.get("log_format", ""):
            self.dropped.append(event)

    @defer.inlineCallbacks
    def start_node(self, name: str, presence_timeout: int = PRESENCE_TIMEOUT):
        server = make_server(
            Path(self.mktemp()),
            "--db", self.schema.url,
            "--redis", self.redis_url,
            "--node", name,
            "--presence-timeout", str(presence_timeout),
            "--port", LOOPBACK,
            reactor=reactor,
        )  # fmt: skip
        server.startService()
        self.nodes[name] = server
        self.addCleanup(self.stop_node, name)
        yield server.ready
        server.port = server.ports[0].getHost().port
        return server

    def stop_node(self, name: str):
        server = self.nodes.pop(name, None)
        if server is None or not server.running:
            return None
        return server.stopService()

    @defer.inlineCallbacks
    def crash_node(self, name: str):
        """Kill a node as a crash would: no goodbye, connections cut."""
        server = self.nodes.pop(name)
        cluster = server.cluster
        cluster.presence._beat.stop()
        yield server.getServiceNamed(ActivityRetention.name).stopService()
        for factory in (cluster.bus._subscriber, cluster.bus._commands):
            for slot in factory.slots:
                slot.reconnect = False
            for connection in list(factory.pool):
                connection.transport.abortConnection()
        for listener in server.listeners:
            yield listener.stopService()
        for account in list(server.chat.online.values()):
            for session in list(account.sessions):
                session.mind.transport.abortConnection()
        yield server.database.close()
        server.chat.hasher.stop()
        yield cluster.bus.stop()
        cluster.fanout.stop()

    def cut_bus(self, name: str):
        """
        Cut a node's subscription to the bus and keep it cut: its clients
        stay, it hears nothing.  Returns what lets it reconnect.
        """
        factory = self.nodes[name].cluster.bus._subscriber
        [slot] = factory.slots
        slot.reconnect = False
        for connection in list(factory.pool):
            connection.transport.abortConnection()

        def reconnect() -> None:
            slot.reconnect = True
            slot.service.startService()

        return reconnect

    @defer.inlineCallbacks
    def three_nodes(self):
        yield defer.gatherResults([self.start_node(n) for n in ("a", "b", "c")])


class RoomTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_room_message_reaches_members_on_every_node_once(self):
        yield self.three_nodes()
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        cat = yield self.client("c", "cat")
        yield ann.ok("hello from a")
        yield bob.until(count_of(1))
        yield cat.until(count_of(1))
        yield wait(0.2)
        self.assertEqual(bob.messages(), ["[lobby] ann: hello from a"])
        self.assertEqual(cat.messages(), ["[lobby] ann: hello from a"])
        self.assertEqual(ann.messages(), [])

    @defer.inlineCallbacks
    def test_every_node_delivers_a_room_in_the_same_order(self):
        yield self.three_nodes()
        senders = []
        for node in ("a", "b", "c"):
            senders.append((yield self.client(node, f"s{node}")))
        listeners = []
        for node in ("a", "b", "c"):
            listeners.append((yield self.client(node, f"l{node}")))
        per_sender = 20
        # Everyone talks at once: numbering, storing and publishing interleave.
        yield defer.gatherResults(
            [
                sender.ok(f"{i} from {n}")
                for i in range(per_sender)
                for n, sender in enumerate(senders)
            ]
        )
        total = per_sender * len(senders)
        yield defer.gatherResults(
            [listener.until(count_of(total)) for listener in listeners]
        )
        orders = [listener.messages() for listener in listeners]
        self.assertEqual(orders[0], orders[1])
        self.assertEqual(orders[0], orders[2])
        self.assertEqual(len(set(orders[0])), total)
        history = yield listeners[0].ok(f"/history lobby {total}")
        self.assertEqual([line.split(" ", 1)[1] for line in history], orders[0])

    @defer.inlineCallbacks
    def test_a_room_created_on_one_node_is_joined_on_another(self):
        yield self.three_nodes()
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        yield ann.ok("/c den")
        yield wait(0.1)
        yield bob.ok("/j den")
        yield ann.until(count_of(1, "* bob joined"))
        yield ann.ok("/public den psst")
        yield bob.until(lambda lines: "[den] ann: psst" in lines)
        members = yield bob.ok("/who den")
        self.assertEqual(members, ["ann (online) (owner)", "bob (online)"])
        yield bob.ok("/l den")
        yield ann.until(count_of(1, "* bob left"))
        members = yield ann.ok("/who den")
        self.assertEqual(members, ["ann (online) (owner)"])

    @defer.inlineCallbacks
    def test_a_failed_write_does_not_stall_the_room(self):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        dan = yield self.client("a", "dan")
        bob = yield self.client("b", "bob")
        store = self.nodes["a"].chat.store
        write = store.store_room_message

        def fail_once(*args):
            store.store_room_message = write
            return defer.fail(RuntimeError("the disk is full"))

        store.store_room_message = fail_once
        reply, _ = yield ann.send("lost")
        self.assertTrue(reply.startswith("-ERR server-error"), reply)
        self.flushLoggedErrors(RuntimeError)
        yield ann.ok("next")
        # The gap timeout is 2 s: the number that failed holds nobody up.
        for listener in (bob, dan):
            yield listener.until(
                lambda lines: "[lobby] ann: next" in lines, timeout=1.5
            )
        # Published before its write failed, it was delivered: seen, not kept.
        self.assertEqual(bob.messages(), ["[lobby] ann: lost", "[lobby] ann: next"])
        history = yield bob.ok("/history lobby 5")
        self.assertEqual(
            [line.split(" ", 1)[1] for line in history], ["[lobby] ann: next"]
        )

    @defer.inlineCallbacks
    def test_a_rename_is_seen_on_every_node(self):
        yield self.three_nodes()
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        yield ann.ok("/u anne")
        yield bob.until(count_of(1, "* #lobby: ann is now known as anne"))
        members = yield bob.ok("/who lobby")
        self.assertIn("anne (online)", members)


class PrivateAndPresenceTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_private_message_to_a_user_on_another_node(self):
        yield self.three_nodes()
        ann = yield self.client("a", "ann")
        bob = yield self.client("c", "bob")
        yield wait(0.1)
        yield ann.ok("/msg bob hi bob")
        yield bob.until(lambda lines: "[private] ann: hi bob" in lines)

    @defer.inlineCallbacks
    def test_private_message_to_an_offline_user_waits_for_their_login(self):
        yield self.three_nodes()
        bob = yield self.client("b", "bob")
        yield bob.ok("/logout")
        ann = yield self.client("a", "ann")
        yield wait(0.1)
        yield ann.ok("/msg bob while you were out")
        bob = yield self.client("c")
        yield bob.ok("/login bob pw-bob")
        yield bob.until(lambda lines: "[private] ann: while you were out" in lines)

    @defer.inlineCallbacks
    def test_private_message_stored_while_its_recipient_logs_in_elsewhere(self):
        yield self.start_node("a")
        yield self.start_node("b")
        bob = yield self.client("b", "bob")
        yield bob.ok("/logout")
        ann = yield self.client("a", "ann")
        store = self.nodes["a"].chat.store
        write, gate, held = store.store_private, defer.Deferred(), []

        def held_back(*args, **kwargs):
            held.append(True)
            return gate.addCallback(lambda _: write(*args, **kwargs))

        store.store_private = held_back
        sent = ann.ok("/msg bob are you there")
        yield poll(lambda: held)
        # bob logs in on b and has read his kept messages: none yet.
        bob = yield self.client("b")
        yield bob.ok("/login bob pw-bob")
        yield wait(0.2)
        gate.callback(None)
        yield sent
        yield bob.until(lambda lines: "[private] ann: are you there" in lines)
        # Marked delivered by b: a later login does not show it again.
        yield wait(0.2)
        again = yield self.client("a")
        yield again.ok("/login bob pw-bob")
        yield again.ok("/ping")
        yield wait(0.2)
        self.assertEqual(again.messages(), [])
        self.assertEqual(bob.messages(), ["[private] ann: are you there"])

    @defer.inlineCallbacks
    def test_default_room_changed_on_one_node_holds_on_the_other(self):
        yield self.three_nodes()
        ann_a = yield self.client("a", "ann")
        ann_b = yield self.client("b")
        yield ann_b.ok("/login ann pw-ann")
        bob = yield self.client("c", "bob")
        yield ann_a.ok("/c den")
        yield until_reply(ann_b, "/rooms", "den")
        yield poll(lambda: "den" in self.nodes["c"].chat.rooms.by_key)
        yield bob.ok("/j den")
        yield ann_a.ok("/cd den")
        yield until_reply(ann_b, "/rooms", "den (default)")
        yield ann_b.ok("said on b")
        yield bob.until(lambda lines: "[den] ann: said on b" in lines)
        self.assertNotIn("[lobby] ann: said on b", bob.messages())

    @defer.inlineCallbacks
    def test_who_and_users_see_every_node(self):
        yield self.three_nodes()
        yield self.client("a", "ann")
        yield self.client("b", "bob")
        admin = yield self.client("c")
        yield admin.ok("/login admin admin-secret")
        yield wait(0.1)
        members = yield admin.ok("/who lobby")
        self.assertEqual(members, ["admin (online)", "ann (online)", "bob (online)"])
        users = yield admin.ok("/users")
        self.assertEqual(
            users, ["admin (online) (admin)", "ann (online)", "bob (online)"]
        )

    @defer.inlineCallbacks
    def test_two_sessions_on_two_nodes_both_receive(self):
        yield self.three_nodes()
        ann_a = yield self.client("a", "ann")
        ann_b = yield self.client("b")
        yield ann_b.ok("/login ann pw-ann")
        bob = yield self.client("c", "bob")
        yield bob.ok("to the lobby")
        yield bob.ok("/msg ann to you")
        for session in (ann_a, ann_b):
            yield session.until(
                lambda lines: (
                    "[lobby] bob: to the lobby" in lines
                    and "[private] bob: to you" in lines
                )
            )
        yield ann_a.ok("/logout")
        yield wait(0.2)
        members = yield bob.ok("/who lobby")
        self.assertIn("ann (online)", members)


class NodeFailureTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_node_killed_mid_chat_leaves_the_others_chatting(self):
        yield self.three_nodes()
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        cat = yield self.client("c", "cat")
        talk = [ann.ok(f"before {i}") for i in range(5)]
        yield self.crash_node("b")
        yield defer.gatherResults(talk)
        yield bob.closed
        yield ann.ok("after the crash")
        yield cat.until(lambda lines: "[lobby] ann: after the crash" in lines)
        self.assertEqual(
            [line for line in cat.messages()],
            [f"[lobby] ann: before {i}" for i in range(5)]
            + ["[lobby] ann: after the crash"],
        )
        yield cat.ok("still here")
        yield ann.until(lambda lines: "[lobby] cat: still here" in lines)

    @defer.inlineCallbacks
    def test_private_message_to_a_user_whose_node_just_died_is_kept(self):
        # Presence takes 10 s to notice: the message is sent in that window.
        for name in ("a", "b", "c"):
            yield self.start_node(name, presence_timeout=10)
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        yield until_reply(ann, "/who lobby", "bob (online)")
        yield self.crash_node("b")
        yield bob.closed
        self.assertIn("bob (online)", (yield ann.ok("/who lobby")))
        yield ann.ok("/msg bob did you get this")
        bob = yield self.client("c")
        yield bob.ok("/login bob pw-bob")
        yield bob.until(lambda lines: "[private] ann: did you get this" in lines)

    @defer.inlineCallbacks
    def test_users_of_a_dead_node_go_offline_within_the_timeout(self):
        yield self.three_nodes()
        yield self.client("b", "bob")
        ann = yield self.client("a", "ann")
        yield wait(0.1)
        self.assertIn("bob (online)", (yield ann.ok("/who lobby")))
        yield self.crash_node("b")
        yield wait(PRESENCE_TIMEOUT * 1.5 + 0.3)
        self.assertIn("bob", (yield ann.ok("/who lobby")))

    @defer.inlineCallbacks
    def test_a_restarted_node_rejoins(self):
        yield self.three_nodes()
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        yield self.crash_node("b")
        yield bob.closed
        yield ann.ok("while b was down")
        yield self.start_node("b")
        bob = yield self.client("b")
        yield bob.ok("/login bob pw-bob")
        history = yield bob.ok("/history lobby 1")
        self.assertTrue(history[0].endswith("[lobby] ann: while b was down"))
        yield ann.ok("b is back")
        yield bob.until(lambda lines: "[lobby] ann: b is back" in lines)
        yield bob.ok("hello again")
        yield ann.until(lambda lines: "[lobby] bob: hello again" in lines)
        self.assertIn("bob (online)", (yield ann.ok("/who lobby")))


class BusOutageTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_node_back_on_the_bus_sees_what_changed_meanwhile(self):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        cat = yield self.client("b", "cat")
        yield until_reply(ann, "/who lobby", "cat (online)")
        reconnect = self.cut_bus("a")
        yield poll(lambda: not self.nodes["a"].cluster.bus.connected)
        yield bob.ok("/c den")
        yield bob.ok("/u bobby")
        yield cat.ok("/l lobby")
        yield bob.ok("/msg ann sent while you were cut off")
        reconnect()
        yield ann.until(
            lambda lines: "[private] bobby: sent while you were cut off" in lines
        )
        yield ann.ok("/j den")
        self.assertEqual(
            (yield ann.ok("/who den")), ["ann (online)", "bobby (online) (owner)"]
        )
        lobby = yield ann.ok("/who lobby")
        self.assertIn("bobby (online)", lobby)
        self.assertNotIn("cat (online)", lobby)
        yield ann.ok("/public den back")
        yield bob.until(lambda lines: "[den] ann: back" in lines)


class Talker:
    """Keeps C{depth} messages in flight from C{client}, numbered from 1."""

    def __init__(self, client, depth: int = 10) -> None:
        self.client = client
        self.sent = 0
        self.replies: list[str] = []
        for _ in range(depth):
            self._send()

    def _send(self) -> None:
        self.sent += 1
        d = self.client.send(f"m{self.sent}")
        d.addCallbacks(self._answered, self._unanswered)

    def _answered(self, reply) -> None:
        self.replies.append(reply[0])
        self._send()

    def _unanswered(self, failure) -> None:
        # Sent as the server said goodbye: no reply is the shutdown's answer.
        failure.trap(ConnectionDone)


class ShutdownTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_node_stopped_under_traffic_answers_no_server_error(self):
        yield self.start_node("a")
        yield self.start_node("b")
        bob = yield self.client("b", "bob")
        talkers = {}
        for name in ("ann", "cat", "dan"):
            talkers[name] = Talker((yield self.client("a", name)))
        yield poll(lambda: all(len(t.replies) >= 20 for t in talkers.values()))
        yield self.stop_node("a")
        for talker in talkers.values():
            yield talker.client.closed
            self.assertIn("* the server is shutting down", talker.client.pushed)
        refused = [r for t in talkers.values() for r in t.replies if r != "+OK"]
        self.assertEqual(refused, [])
        # Every message that got its +OK reached the other node.
        for name, talker in talkers.items():
            last = f"[lobby] {name}: m{len(talker.replies)}"
            yield bob.until(lambda lines, last=last: last in lines)

    @defer.inlineCallbacks
    def test_a_node_leaves_the_cluster_after_its_clients_and_before_its_database(
        self,
    ):
        server = yield self.start_node("a")
        ann = yield self.client("a", "ann")
        seen = []
        node, database = server.cluster, server.database
        stop_node, close_database = node.stopService, database.close

        def node_stopping():
            seen.append(("node", len(server.factory.clients), len(server.ports)))
            return stop_node()

        def database_closing():
            seen.append(("database", node.running, node.bus.connected))
            return close_database()

        node.stopService, database.close = node_stopping, database_closing
        yield self.stop_node("a")
        yield ann.closed
        self.assertEqual(seen, [("node", 0, 0), ("database", False, False)])
        self.assertIn("* the server is shutting down", ann.pushed)
