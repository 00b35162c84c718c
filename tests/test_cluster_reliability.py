"""
Issue 11's cluster items on in-process nodes (real PostgreSQL and Redis):
a stored message is acknowledged whatever the bus does, a room created on one
node can be joined at once on another, and a password change ends the
account's other sessions on every node.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from chatroom.errors import ServerError
from chatroom.service.chat import ChatService
from chatroom.service.events import RoomMessage
from chatroom.service.fanout import PUBLISH_RETRIES, LocalFanout
from chatroom.service.rooms import Room
from chatroom.storage.rooms import RoomRecord
from tests.asynctest import async_test
from tests.clients import count_of
from tests.helpers import ChatWorld, ServerTestCase, fired
from tests.realserver import poll
from tests.test_cluster import ClusterTestCase

try:
    from chatroom.cluster.fanout import GAP_TIMEOUT
except ImportError:  # txredisapi missing
    GAP_TIMEOUT = None


class FailingPublish:
    """
    Makes a node's bus fail its next C{times} publishes of events, as an
    unreachable Redis does; C{refused} holds what it refused.
    """

    def __init__(self, node, times: int) -> None:
        self.bus = node.cluster.bus
        self.publish = self.bus.publish
        self.times = times
        self.refused: list = []
        self.bus.publish = self._publish

    def _publish(self, message):
        if message.kind == "event" and len(self.refused) < self.times:
            self.refused.append(message)
            return defer.fail(ServerError("the cluster's message bus is unreachable"))
        return self.publish(message)

    def stop(self) -> None:
        self.bus.publish = self.publish


class StoredMessageTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_stored_message_whose_publish_fails_is_acknowledged_once(self):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        dan = yield self.client("a", "dan")
        bob = yield self.client("b", "bob")
        failing = FailingPublish(self.nodes["a"], times=2)
        reply, _ = yield ann.send("said once")
        self.assertEqual(reply, "+OK")
        self.assertEqual(len(failing.refused), 2)
        for listener in (bob, dan):
            yield listener.until(lambda lines: "[lobby] ann: said once" in lines)
        history = yield bob.ok("/history lobby 5")
        self.assertEqual(
            [line.split(" ", 1)[1] for line in history if "said once" in line],
            ["[lobby] ann: said once"],
        )
        self.assertEqual(bob.messages(), ["[lobby] ann: said once"])

    @defer.inlineCallbacks
    def test_a_message_the_bus_never_takes_is_acknowledged_and_in_history(self):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        failing = FailingPublish(self.nodes["a"], times=100)
        reply, _ = yield ann.send("never on the bus")
        self.assertEqual(reply, "+OK")
        self.flushLoggedErrors(ServerError)
        failing.stop()
        yield ann.ok("after it")
        # The other node skips the lost number after its gap timeout (2 s).
        yield bob.until(lambda lines: "[lobby] ann: after it" in lines, timeout=4)
        self.assertEqual(bob.messages(), ["[lobby] ann: after it"])
        history = yield bob.ok("/history lobby 2")
        self.assertEqual(
            [line.split(" ", 1)[1] for line in history],
            ["[lobby] ann: never on the bus", "[lobby] ann: after it"],
        )

    @defer.inlineCallbacks
    def test_a_private_message_whose_publish_fails_is_acknowledged_and_arrives(
        self,
    ):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        failing = FailingPublish(self.nodes["a"], times=2)
        reply, _ = yield ann.send("/msg bob just once")
        self.assertEqual(reply, "+OK")
        self.assertEqual(len(failing.refused), 2)
        yield bob.until(lambda lines: "[private] ann: just once" in lines)
        self.assertEqual(bob.messages(), ["[private] ann: just once"])


class FlakyFanout(LocalFanout):
    """A fan-out whose first C{failures} publishes fail."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.tries: list[float] = []
        self.clock: task.Clock | None = None

    def publish(self, channel, event, exclude=None):
        self.tries.append(self.clock.seconds())
        if len(self.tries) <= self.failures:
            return defer.fail(ServerError("the cluster's message bus is unreachable"))
        return super().publish(channel, event, exclude)


class PublishRetryTests(unittest.TestCase):
    """The schedule of tries, on a fake clock, without Redis."""

    def hand_over(self, failures: int) -> tuple[FlakyFanout, defer.Deferred]:
        clock = task.Clock()
        fanout = FlakyFanout(failures)
        fanout.clock = clock
        chat = ChatService(None, None, clock, fanout=fanout)
        message = RoomMessage("den", 5, "ann", "hi", 0)
        d = defer.ensureDeferred(chat.hand_room_message(Room(7, "den"), message))
        clock.pump(PUBLISH_RETRIES)
        return fanout, d

    def test_a_failed_publish_is_tried_again_with_growing_waits(self):
        fanout, d = self.hand_over(failures=2)
        self.successResultOf(d)
        self.assertEqual([round(t, 3) for t in fanout.tries], [0, 0.1, 0.3])

    def test_a_publish_that_keeps_failing_is_logged_not_raised(self):
        fanout, d = self.hand_over(failures=100)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(len(fanout.tries), len(PUBLISH_RETRIES) + 1)
        self.assertEqual(len(self.flushLoggedErrors(ServerError)), 1)

    def test_the_last_try_comes_before_the_other_nodes_skip_the_number(self):
        if GAP_TIMEOUT is None:
            raise unittest.SkipTest("txredisapi is not installed")
        self.assertLess(sum(PUBLISH_RETRIES), GAP_TIMEOUT)


class HeldBus:
    """Holds the membership messages a node's bus hands over, until released."""

    KINDS = ("join", "leave", "rename", "default")

    def __init__(self, node) -> None:
        self.bus = node.cluster.bus
        self.on_message = self.bus.on_message
        self.held: list = []
        self.bus.on_message = self._received

    def _received(self, message) -> None:
        if message.kind in self.KINDS:
            self.held.append(message)
        else:
            self.on_message(message)

    def release(self) -> None:
        self.bus.on_message = self.on_message
        held, self.held = self.held, []
        for message in held:
            self.on_message(message)


class RoomCreationTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_room_created_on_one_node_is_joined_at_once_on_another(self):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        # b has not heard of den yet when bob asks for it.
        held = HeldBus(self.nodes["b"])
        yield ann.ok("/c den")
        reply, _ = yield bob.send("/j den")
        self.assertEqual(reply, "+OK joined #den")
        self.assertEqual(
            (yield bob.ok("/who den")), ["ann (online) (owner)", "bob (online)"]
        )
        yield ann.until(count_of(1, "* bob joined #den"))
        yield ann.ok("/public den psst")
        yield bob.until(lambda lines: "[den] ann: psst" in lines)
        # The announcement that arrives late changes nothing.
        held.release()
        self.assertEqual(
            (yield bob.ok("/who den")), ["ann (online) (owner)", "bob (online)"]
        )
        yield bob.ok("/public den back")
        yield ann.until(lambda lines: "[den] bob: back" in lines)

    @defer.inlineCallbacks
    def test_a_room_created_while_a_node_was_off_the_bus_is_joined_there(self):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        bob = yield self.client("b", "bob")
        self.cut_bus("b")
        yield poll(lambda: not self.nodes["b"].cluster.bus._listening)
        yield ann.ok("/c den")
        yield bob.ok("/j den")
        self.assertEqual(
            (yield bob.ok("/who den")), ["ann (online) (owner)", "bob (online)"]
        )
        # b could not announce the join: logged, as any notice off the bus is.
        self.flushLoggedErrors(ServerError)

    @defer.inlineCallbacks
    def test_a_room_nobody_created_is_still_no_such_room(self):
        yield self.start_node("a")
        yield self.start_node("b")
        bob = yield self.client("b", "bob")
        reply, _ = yield bob.send("/j nowhere")
        self.assertTrue(reply.startswith("-ERR no-such-room"), reply)


class FindRoomTests(ServerTestCase):
    """The one read a node makes for a room it has not heard of (SQLite here)."""

    @async_test
    async def test_a_room_is_found_by_key_with_its_members(self):
        await self.server.register("ann")
        bob = await self.server.register("bob")
        await bob.send("/c Den")
        await bob.send("/public den hi")
        record, members = await self.server.store.find_room("den")
        self.assertEqual((record.name, record.last_seq), ("Den", 1))
        bob_id = self.server.chat.online_by_key["bob"].id
        self.assertEqual(members, [(bob_id, "bob")])
        lobby, members = await self.server.store.find_room("lobby")
        self.assertEqual(sorted(name for _, name in members), ["admin", "ann", "bob"])

    @async_test
    async def test_no_room_is_none(self):
        self.assertIsNone(await self.server.store.find_room("nowhere"))


class LookUpRoomTests(unittest.TestCase):
    """A node reads a room it has not heard of while the bus may tell of it."""

    def test_a_join_heard_meanwhile_keeps_the_rooms_stored_sequence(self):
        try:
            from chatroom.cluster.membership import RedisMembershipBus
            from chatroom.cluster.messages import Joined
        except ImportError:
            raise unittest.SkipTest("txredisapi is not installed") from None
        world = ChatWorld()
        membership = RedisMembershipBus("b", bus=None)
        membership.chat = world.chat
        reading: defer.Deferred = defer.Deferred()
        self.patch(world.chat.store, "find_room", lambda key: reading)
        looked_up = defer.ensureDeferred(membership.look_up_room("den"))
        # The announcement of a join arrives before the read: a room at 0.
        membership.received(Joined("a", 7, "den", 2, "bob"))
        reading.callback((RoomRecord(7, "den", 41), [(1, "ann")]))
        room = fired(looked_up)
        self.assertEqual((room.last_seq, sorted(room.members)), (41, [1, 2]))


PASSWORD_CHANGED = "* your password was changed: log in again"


class PasswordChangeTests(ServerTestCase):
    """One node: a password change ends the account's other sessions."""

    @async_test
    async def test_the_other_sessions_are_told_and_cut_the_changer_stays(self):
        ann = await self.server.register("ann")
        other = await self.server.login("ann", "pw-ann")
        other.take()
        bob = await self.server.register("bob")
        self.assertEqual(
            await ann.send("/p pw-ann new-secret"), ["+OK password changed"]
        )
        self.assertEqual(other.take(), [PASSWORD_CHANGED])
        self.assertTrue(other.closing)
        other.close()
        self.assertEqual(await ann.send("/ping"), ["+OK pong"])
        self.assertEqual(len(self.server.chat.online_by_key["ann"].sessions), 1)
        await bob.send("hello")
        self.assertEqual(ann.take(), ["[lobby] bob: hello"])
        self.assertFalse(bob.closing)
        again = await self.server.login("ann", "new-secret")
        self.assertFalse(again.closing)

    @async_test
    async def test_a_wrong_old_password_cuts_nobody(self):
        ann = await self.server.register("ann")
        other = await self.server.login("ann", "pw-ann")
        other.take()
        reply = await ann.send("/p wrong new-secret")
        self.assertFailed(reply, "auth-failed")
        self.assertEqual(other.take(), [])
        self.assertFalse(other.closing)


class PasswordChangeClusterTests(ClusterTestCase):
    @defer.inlineCallbacks
    def test_a_password_change_cuts_the_sessions_on_every_node(self):
        yield self.start_node("a")
        yield self.start_node("b")
        ann = yield self.client("a", "ann")
        ann_a = yield self.client("a")
        yield ann_a.ok("/login ann pw-ann")
        ann_b = yield self.client("b")
        yield ann_b.ok("/login ann pw-ann")
        bob = yield self.client("b", "bob")
        yield ann.ok("/p pw-ann new-secret")
        for session in (ann_a, ann_b):
            yield session.until(lambda lines: PASSWORD_CHANGED in lines)
            yield poll(lambda session=session: session.closed.called)
            self.assertIn(PASSWORD_CHANGED, session.pushed)
        yield ann.ok("/ping")
        yield bob.ok("/ping")
        self.assertNotIn(PASSWORD_CHANGED, bob.pushed)
        yield bob.ok("hi ann")
        yield ann.until(lambda lines: "[lobby] bob: hi ann" in lines)
        yield poll(lambda: "ann" not in self.nodes["b"].chat.online_by_key)
        again = yield self.client("b")
        yield again.ok("/login ann new-secret")
