"""
A private message that got +OK reaches its recipient: it counts as
delivered only once a live session has passed it on, so a recipient who
leaves while it is stored, or with it still queued, finds it at the next
login.
"""

from __future__ import annotations

from twisted.internet import defer

from tests.asynctest import async_test
from tests.helpers import RELAXED, ChatWorld, ServerTestCase


class HeldPrivateStorage:
    """Stands in for the store's private-message write: fires when told."""

    def __init__(self, testcase: ServerTestCase) -> None:
        store = testcase.server.store
        self.real = store.store_private
        self.writes: list[tuple[defer.Deferred, tuple, dict]] = []
        testcase.patch(store, "store_private", self.hold)

    def hold(self, *args, **kwargs) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.writes.append((d, args, kwargs))
        return d

    async def commit(self, index: int) -> None:
        d, args, kwargs = self.writes[index]
        d.callback(await self.real(*args, **kwargs))


class PrivateDeliveryTests(ServerTestCase):
    # A thousand messages in a few seconds: past the production line rate.
    limits = RELAXED

    @async_test
    async def test_a_recipient_who_leaves_while_it_is_stored_gets_it_next_time(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        storage = HeldPrivateStorage(self)
        reply = alice.send("/msg bob are you there")
        bob.disconnect()
        await storage.commit(0)
        self.assertEqual(await reply, ["+OK"])
        again = await self.server.login("bob", "pw-bob")
        await again.send("/ping")
        self.assertIn("[private] alice: are you there", again.lines())

    @async_test
    async def test_every_acknowledged_message_arrives_while_the_recipient_comes_goes(
        self,
    ):
        alice = await self.server.register("alice")
        await self.server.register("bob")
        received: list[list[str]] = []
        sent: list[defer.Deferred] = []
        for batch in range(20):
            bob = await self.server.login("bob", "pw-bob")
            # Fifty messages in flight, then bob goes before they are all in.
            for number in range(batch * 50, batch * 50 + 50):
                sent.append(alice.send(f"/msg bob m{number}"))
            # Waited on through a DeferredList, which leaves the reply in place.
            await defer.DeferredList([sent[-25]])
            bob.disconnect()
            received.append(bob.take())
        replies = await defer.gatherResults(sent)
        last = await self.server.login("bob", "pw-bob")
        await last.send("/ping")
        received.append(last.take())
        acknowledged = {
            f"[private] alice: m{number}"
            for number, reply in enumerate(replies)
            if reply == ["+OK"]
        }
        self.assertEqual([r for r in replies if r != ["+OK"]], [])
        self.assertEqual(len(acknowledged), 1000)
        seen = [line for lines in received for line in lines]
        self.assertEqual(acknowledged - set(seen), set())
        # A repeat only ever comes in a later session than the first showing.
        for lines in received:
            shown = [line for line in lines if line.startswith("[private]")]
            self.assertEqual(len(shown), len(set(shown)))


class QueuedPrivateTests(ServerTestCase):
    """A session that ends with the message still queued did not deliver it."""

    def test_a_message_left_in_the_output_queue_comes_again(self):
        world = ChatWorld()
        alice = world.user("alice")
        bob = world.user("bob")
        # Bob stops reading: what is queued for him passes the soft limit.
        for _ in range(20):
            alice.command("x" * 4000)
        self.assertEqual(bob.transport.producerState, "paused")
        alice.command("/msg bob still there?")
        bob.close()
        again = world.user("bob")
        again.command("/ping")
        self.assertIn("[private] alice: still there?", again.lines())
