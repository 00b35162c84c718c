"""
End-to-end ciphertexts across the nodes of a cluster: a device's sessions
get them at once on whichever node they are, and mark them delivered there;
placeholders reach the recipient's other sessions on every node.
"""

from __future__ import annotations

from twisted.internet import defer

from tests.realserver import wait
from tests.test_cluster import ClusterTestCase
from tests.test_e2e import CIPHERTEXT, PLACEHOLDER, publish


class ClusterE2ETests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_device_on_another_node_gets_it_at_once_and_only_once(self):
        yield self.start_node("a")
        yield self.start_node("b")
        phone = yield self.client("b", "bob")
        yield phone.ok(publish("phone"))
        plain_b = yield self.client("b", "bob")
        alice = yield self.client("a", "alice")
        yield alice.ok(publish("laptop"))
        yield wait(0.1)
        yield alice.ok(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        lines = yield phone.until(
            lambda lines: any(line.startswith("~ ") for line in lines)
        )
        [line] = [line for line in lines if line.startswith("~ ")]
        self.assertEqual(
            line.split()[:7],
            ["~", "e2e", "alice", "laptop", "bob", "phone", "msgid-0001"],
        )
        self.assertEqual(line.split()[-1], CIPHERTEXT)
        yield plain_b.until(lambda lines: PLACEHOLDER in lines)
        self.assertNotIn(PLACEHOLDER, phone.pushed)
        # Marked delivered on b: the device's next publish, on a, has nothing.
        yield wait(0.2)
        again = yield self.client("a", "bob")
        yield again.ok(publish("phone"))
        yield again.ok("/ping")
        self.assertEqual([line for line in again.pushed if line.startswith("~ ")], [])
