"""
Moderation on a cluster: two nodes sharing a real PostgreSQL schema and a
Redis namespace, a change made on one taking effect on the other: bans,
mutes, the topic, a room's deletion, an away text; on the line protocol
and IRC.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, endpoints, reactor

from tests.cluster_helpers import until_reply
from tests.realserver import LOOPBACK, make_server, poll
from tests.test_cluster import PRESENCE_TIMEOUT, ClusterTestCase
from tests.test_irc_server import IRCLines


class ModerationClusterTestCase(ClusterTestCase):
    @defer.inlineCallbacks
    def start_node(self, name: str, presence_timeout: int = PRESENCE_TIMEOUT):
        # As the cluster tests' nodes, with an IRC port for guests too.
        server = make_server(
            Path(self.mktemp()),
            "--db", self.schema.url,
            "--redis", self.redis_url,
            "--node", name,
            "--presence-timeout", str(presence_timeout),
            "--port", LOOPBACK,
            "--irc-port", LOOPBACK,
            "--irc-guests",
            reactor=reactor,
        )  # fmt: skip
        server.startService()
        self.nodes[name] = server
        self.addCleanup(self.stop_node, name)
        yield server.ready
        server.port = server.ports[0].getHost().port
        server.irc_port = server.ports[1].getHost().port
        return server

    @defer.inlineCallbacks
    def two_nodes_and_a_room(self):
        """Ann on node a owns #den; bob is on node b, out of it."""
        yield defer.gatherResults([self.start_node(n) for n in ("a", "b")])
        self.ann = yield self.client("a", "ann")
        self.bob = yield self.client("b", "bob")
        yield self.ann.ok("/c den")
        yield poll(lambda: "den" in self.nodes["b"].chat.rooms.by_key)

    @defer.inlineCallbacks
    def irc(self, node: str, nick: str):
        endpoint = endpoints.TCP4ClientEndpoint(
            reactor, "127.0.0.1", self.nodes[node].irc_port
        )
        client = yield endpoints.connectProtocol(endpoint, IRCLines())
        self.addCleanup(client.transport.loseConnection)
        client.send(f"NICK {nick}")
        client.send(f"USER {nick} 0 * :{nick}")
        yield client.until(" 376 ")
        return client

    @defer.inlineCallbacks
    def refused(self, client, line: str, code: str):
        reply, _ = yield client.send(line)
        self.assertTrue(reply.startswith(f"-ERR {code}"), f"{line!r}: {reply!r}")


class BanTests(ModerationClusterTestCase):
    @defer.inlineCallbacks
    def test_a_ban_on_one_node_refuses_a_line_join_on_another(self):
        yield self.two_nodes_and_a_room()
        yield self.ann.ok("/ban den bob")
        yield until_reply(self.bob, "/room show den", "ban bob!*@*")
        yield self.refused(self.bob, "/j den", "banned")
        yield self.ann.ok("/unban den bob")
        yield until_reply(self.bob, "/room show den", "topic (none)")
        yield poll(lambda: not self.nodes["b"].chat.rooms.by_key["den"].mod.bans)
        yield self.bob.ok("/j den")

    @defer.inlineCallbacks
    def test_a_ban_on_one_node_refuses_an_irc_join_on_another(self):
        yield self.two_nodes_and_a_room()
        yield self.ann.ok("/ban den carol")
        yield until_reply(self.bob, "/room show den", "ban carol!*@*")
        carol = yield self.irc("b", "carol")
        carol.send("JOIN #den")
        line = yield carol.until(" 474 ")
        self.assertIn("#den", line)

    @defer.inlineCallbacks
    def test_a_ban_set_on_irc_refuses_a_line_join_on_another_node(self):
        yield defer.gatherResults([self.start_node(n) for n in ("a", "b")])
        dave = yield self.irc("a", "dave")
        dave.send("JOIN #pit")
        yield dave.until("JOIN #pit")
        dave.send("MODE #pit +b bob!*@*")
        yield dave.until("MODE #pit +b bob!*@*")
        bob = yield self.client("b", "bob")
        yield self.refused(bob, "/j pit", "banned")

    @defer.inlineCallbacks
    def test_a_room_looked_up_from_storage_keeps_its_bans(self):
        # Node b hears nothing of the room: it reads it when bob asks.
        yield defer.gatherResults([self.start_node(n) for n in ("a", "b")])
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        self.cut_bus("b")
        yield poll(lambda: not self.nodes["b"].cluster.bus._listening)
        yield ann.ok("/c den")
        yield ann.ok("/ban den bob")
        yield self.refused(bob, "/j den", "banned")

    @defer.inlineCallbacks
    def test_a_ban_made_while_a_node_was_off_the_bus_holds_once_it_is_back(self):
        yield self.two_nodes_and_a_room()
        reconnect = self.cut_bus("b")
        yield poll(lambda: not self.nodes["b"].cluster.bus._listening)
        yield self.ann.ok("/ban den bob")
        yield self.ann.ok("/topic den while you were away")
        reconnect()
        yield until_reply(self.bob, "/room show den", "ban bob!*@*")
        yield until_reply(self.bob, "/room show den", "topic while you were away")
        yield self.refused(self.bob, "/j den", "banned")


class MuteTests(ModerationClusterTestCase):
    @defer.inlineCallbacks
    def test_a_mute_on_one_node_silences_on_another(self):
        yield self.two_nodes_and_a_room()
        yield self.bob.ok("/j den")
        yield self.ann.wait_for("bob joined #den")
        yield self.ann.ok("/mute den bob")
        yield self.bob.wait_for("* #den: ann muted bob")
        yield self.refused(self.bob, "/public den hi", "cannot-speak")
        yield self.ann.ok("/voice den bob")
        yield self.bob.wait_for("gave voice to bob")
        yield self.bob.ok("/public den hi")


class TopicTests(ModerationClusterTestCase):
    @defer.inlineCallbacks
    def test_a_topic_set_on_one_node_shows_on_another(self):
        yield self.two_nodes_and_a_room()
        yield self.bob.ok("/j den")
        yield self.ann.wait_for("bob joined #den")
        yield self.ann.ok("/topic den plans for today")
        yield self.bob.wait_for("* #den: ann set the topic: plans for today")
        reply, _ = yield self.bob.send("/topic den")
        self.assertEqual(reply, "+OK #den: plans for today (set by ann)")

    @defer.inlineCallbacks
    def test_an_irc_member_on_another_node_sees_the_topic_and_modes(self):
        yield self.two_nodes_and_a_room()
        carol = yield self.irc("b", "carol")
        carol.send("JOIN #den")
        yield carol.until("JOIN #den")
        yield self.ann.ok("/topic den plans")
        line = yield carol.until("TOPIC #den")
        self.assertTrue(line.endswith("plans"), line)
        yield self.ann.ok("/room set den moderated")
        yield carol.until("MODE #den +m")


class DeleteTests(ModerationClusterTestCase):
    @defer.inlineCallbacks
    def test_a_room_deleted_on_one_node_is_gone_on_another(self):
        yield self.two_nodes_and_a_room()
        yield self.bob.ok("/j den")
        yield self.ann.wait_for("bob joined #den")
        yield self.ann.ok("/room delete den")
        yield self.bob.wait_for("#den was deleted by ann, with its history")
        yield poll(lambda: "den" not in self.nodes["b"].chat.rooms.by_key)
        self.assertNotIn(7, [r.id for r in self.nodes["b"].chat.rooms.rooms_of(2)])
        yield self.refused(self.bob, "/j den", "no-such-room")
        # The name is free again, on the other node too.
        yield self.bob.ok("/c den")


class AwayTests(ModerationClusterTestCase):
    @defer.inlineCallbacks
    def test_an_away_set_on_one_node_shows_in_whois_on_another(self):
        yield self.two_nodes_and_a_room()
        yield self.ann.ok("/away at lunch")
        yield until_reply(self.bob, "/whois ann", "away: at lunch")
        yield self.ann.ok("/away")
        data = yield until_reply(self.bob, "/whois ann", "rooms: #den #lobby")
        yield poll(lambda: not self.nodes["b"].chat.away_elsewhere)
        data = yield self.bob.ok("/whois ann")
        self.assertNotIn("away: at lunch", data)

    @defer.inlineCallbacks
    def test_an_irc_member_on_another_node_is_told_of_an_away(self):
        yield self.two_nodes_and_a_room()
        carol = yield self.irc("b", "carol")
        carol.send("CAP REQ :away-notify")
        yield carol.until("ACK")
        carol.send("JOIN #lobby")
        yield carol.until("JOIN #lobby")
        yield self.ann.ok("/away at lunch")
        yield carol.until("AWAY :at lunch")
