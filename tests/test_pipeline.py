"""
Messages from one connection overlap while they wait on storage; every
reply still comes back in the order of the lines.
"""

from __future__ import annotations

from twisted.internet import defer

from chatroom.protocol.line import commands
from chatroom.protocol.line.pipeline import MAX_PIPELINE, RESUME_AT
from tests.asynctest import async_test
from tests.helpers import ServerTestCase


class HeldStorage:
    """Stands in for the store's room-message write: fires when told."""

    def __init__(self, testcase: ServerTestCase) -> None:
        store = testcase.server.store
        self.real = store.store_room_message
        self.writes: list[tuple[defer.Deferred, tuple]] = []
        testcase.patch(store, "store_room_message", self.hold)
        # Shutdown waits for every line in flight: let held writes through
        # (cleanups run last-added first, so before the server stops).
        testcase.addCleanup(lambda: defer.ensureDeferred(self.release()))

    def hold(self, *args) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.writes.append((d, args))
        return d

    async def commit(self, index: int) -> None:
        d, args = self.writes[index]
        await self.real(*args)
        d.callback(None)

    async def release(self) -> None:
        for index, (d, _) in enumerate(self.writes):
            if not d.called:
                await self.commit(index)


class PipelineTests(ServerTestCase):
    @async_test
    async def test_messages_start_before_earlier_ones_are_stored(self):
        alice = await self.server.register("alice")
        storage = HeldStorage(self)
        alice.send_bytes(b"one\ntwo\nthree\n", replies=3)
        self.assertEqual(len(storage.writes), 3)
        self.assertEqual(alice.transport.producerState, "producing")

    @async_test
    async def test_replies_keep_the_order_of_the_lines(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        storage = HeldStorage(self)
        replies = alice.send_bytes(b"one\n/public lobby two\n/msg bob three\n", 2)
        await storage.commit(1)
        self.assertEqual(alice.take(), [])
        await storage.commit(0)
        self.assertEqual(await replies, ["+OK", "+OK"])
        # Room messages go out before their commit, the private one once
        # stored (it did not wait on room storage): all in the lines' order.
        self.assertEqual(
            bob.take(),
            ["[lobby] alice: one", "[lobby] alice: two", "[private] alice: three"],
        )

    @async_test
    async def test_a_command_waits_for_the_messages_before_it(self):
        alice = await self.server.register("alice")
        storage = HeldStorage(self)
        replies = alice.send_bytes(b"kept\n/c dev\n/rooms\n", replies=3)
        self.assertEqual(alice.transport.producerState, "paused")
        self.assertNotIn("dev", self.server.chat.rooms.by_key)
        await storage.commit(0)
        self.assertEqual(
            await replies,
            ["+OK", "+OK created #dev", "= dev", "= lobby (default)", "+OK 2 rooms"],
        )

    @async_test
    async def test_a_refused_line_is_answered_in_its_turn(self):
        alice = await self.server.register("alice")
        storage = HeldStorage(self)
        replies = alice.send_bytes(b"first\n" + b"x" * 5000 + b"\n", replies=2)
        self.assertEqual(alice.take(), [])
        await storage.commit(0)
        reply = await replies
        self.assertEqual(reply[0], "+OK")
        self.assertTrue(reply[1].startswith("-ERR line-too-long"), reply)

    @async_test
    async def test_reading_stops_when_too_many_messages_wait(self):
        alice = await self.server.register("alice")
        storage = HeldStorage(self)
        lines = b"".join(b"m%d\n" % i for i in range(MAX_PIPELINE + 5))
        replies = alice.send_bytes(lines, replies=MAX_PIPELINE + 5)
        self.assertEqual(len(storage.writes), MAX_PIPELINE)
        self.assertEqual(alice.transport.producerState, "paused")
        for index in range(MAX_PIPELINE + 5):
            await storage.commit(index)
        self.assertEqual(await replies, ["+OK"] * (MAX_PIPELINE + 5))
        self.assertEqual(alice.transport.producerState, "producing")

    @async_test
    async def test_once_full_reading_resumes_only_when_half_are_done(self):
        alice = await self.server.register("alice")
        storage = HeldStorage(self)
        count = MAX_PIPELINE * 2
        replies = alice.send_bytes(
            b"".join(b"m%d\n" % i for i in range(count)), replies=count
        )
        self.assertEqual(len(storage.writes), MAX_PIPELINE)
        # The held line starts as the first is answered; what is behind it
        # stays in the socket until only RESUME_AT are in flight.
        for index in range(MAX_PIPELINE - RESUME_AT):
            await storage.commit(index)
            self.assertEqual(alice.transport.producerState, "paused")
        self.assertEqual(len(storage.writes), MAX_PIPELINE + 1)
        await storage.commit(MAX_PIPELINE - RESUME_AT)
        self.assertEqual(
            len(storage.writes), MAX_PIPELINE + 1 + MAX_PIPELINE - RESUME_AT
        )
        self.assertEqual(alice.transport.producerState, "paused")
        await storage.release()
        while len(storage.writes) < count:
            await storage.release()
        self.assertEqual(await replies, ["+OK"] * count)
        self.assertEqual(alice.transport.producerState, "producing")

    @async_test
    async def test_reading_stops_when_too_many_lines_wait_on_all_connections(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        storage = HeldStorage(self)
        self.server.factory.in_flight.limit = 3
        alice_replies = alice.send_bytes(b"a1\na2\n", replies=2)
        bob_replies = bob.send_bytes(b"b1\nb2\n", replies=2)
        # Bob's first line starts anyway: one line each is never held back.
        self.assertEqual(len(storage.writes), 3)
        self.assertEqual(bob.transport.producerState, "paused")
        for index in range(4):
            await storage.commit(index)
        for replies in (await alice_replies, await bob_replies):
            self.assertEqual([r for r in replies if r.startswith("+")], ["+OK"] * 2)
        self.assertEqual(bob.transport.producerState, "producing")
        self.assertEqual(self.server.factory.in_flight.count, 0)

    @async_test
    async def test_a_held_line_is_parsed_once(self):
        alice = await self.server.register("alice")
        storage = HeldStorage(self)
        parsed: list[str] = []
        parse = commands.parse

        def counting(text):
            parsed.append(text)
            return parse(text)

        self.patch(commands, "parse", counting)
        # /rooms waits for the message before it, then runs as parsed.
        replies = alice.send_bytes(b"hello\n/rooms\n", replies=2)
        self.assertEqual(alice.transport.producerState, "paused")
        await storage.commit(0)
        self.assertEqual((await replies)[-1], "+OK 1 room")
        self.assertEqual(parsed, ["hello", "/rooms"])
