"""
The admin's actions across a cluster (real PostgreSQL and Redis): a
suspension on node A ends the account's sessions on node B and refuses its
login there; a broadcast reaches every node.
"""

from twisted.internet import defer

from tests.realserver import poll
from tests.test_cluster import ClusterTestCase

SUSPENDED = "* your account was suspended by the admin"


class AdminClusterTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_suspension_on_one_node_holds_on_every_node(self):
        yield self.start_node("a")
        yield self.start_node("b")
        admin = yield self.client("a")
        yield admin.ok("/login admin admin-secret")
        ann = yield self.client("b", "ann")
        bob = yield self.client("b", "bob")
        yield admin.ok("/suspend ann")
        yield ann.until(lambda lines: SUSPENDED in lines)
        yield poll(lambda: ann.closed.called)
        yield poll(lambda: "ann" not in self.nodes["b"].chat.online_by_key)
        again = yield self.client("b")
        reply, _ = yield again.send("/login ann pw-ann")
        self.assertTrue(reply.startswith("-ERR account-suspended"), reply)
        yield bob.ok("/ping")
        self.assertNotIn(SUSPENDED, bob.pushed)

    @defer.inlineCallbacks
    def test_a_broadcast_reaches_every_node(self):
        yield self.start_node("a")
        yield self.start_node("b")
        admin = yield self.client("a")
        yield admin.ok("/login admin admin-secret")
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        yield admin.ok("/broadcast restart at noon")
        for client in (ann, bob):
            yield client.until(
                lambda lines: "* notice from admin: restart at noon" in lines
            )
