"""
The cluster fan-out's ordering, without Redis: what arrives from the bus is
delivered to local subscribers in room sequence order, once; and a kept
private message reaches a session once, by whichever way it comes first.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from chatroom.service.events import (
    Notice,
    PrivateMessage,
    RoomMessage,
    event_from_dict,
)
from tests.asynctest import async_test
from tests.helpers import ServerTestCase

try:
    from chatroom.cluster.fanout import RedisFanout
    from chatroom.cluster.messages import Event
except ImportError:  # txredisapi missing
    RedisFanout = None


class Mind:
    def __init__(self) -> None:
        self.got: list[str] = []

    def room_message(self, message: RoomMessage) -> None:
        self.got.append(f"{message.room} {message.seq} {message.text}")

    def notice(self, text: str) -> None:
        self.got.append(f"* {text}")

    def membership(self, event) -> None:
        self.notice(event.text)


def from_bus(seq: int, node: str = "other", token=None) -> Event:
    event = RoomMessage("den", seq, "ann", f"m{seq}", 0)
    return Event(node, ("room", 7), event.to_dict(), token)


class EventsTests(unittest.TestCase):
    def test_events_survive_the_trip_as_plain_data(self):
        message = RoomMessage("den", 3, "ann", "hi", 1234)
        copy = event_from_dict(message.to_dict())
        self.assertEqual(
            (copy.room, copy.seq, copy.sender, copy.text, copy.at),
            ("den", 3, "ann", "hi", 1234),
        )
        self.assertEqual(event_from_dict(Notice("x").to_dict()).text, "x")

    def test_a_kept_private_message_keeps_its_id_on_the_trip(self):
        copy = event_from_dict(PrivateMessage("ann", "hi", 5, kept_id=42).to_dict())
        self.assertEqual((copy.sender, copy.text, copy.kept_id), ("ann", "hi", 42))


class OrderTests(unittest.TestCase):
    skip = None if RedisFanout is not None else "txredisapi is not installed"

    def setUp(self):
        self.clock = task.Clock()
        self.fanout = RedisFanout("here", self.clock, gap_timeout=2.0)
        self.mind = Mind()
        self.fanout.subscribe(("room", 7), self.mind)
        self.fanout.expect(7, 4)

    def test_in_order_messages_go_straight_through(self):
        for seq in (5, 6, 7):
            self.fanout.received(from_bus(seq))
        self.assertEqual(self.mind.got, ["den 5 m5", "den 6 m6", "den 7 m7"])

    def test_a_message_that_overtakes_its_predecessor_waits_for_it(self):
        self.fanout.received(from_bus(6))
        self.fanout.received(from_bus(7))
        self.assertEqual(self.mind.got, [])
        self.fanout.received(from_bus(5))
        self.assertEqual(self.mind.got, ["den 5 m5", "den 6 m6", "den 7 m7"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_number_never_published_is_skipped_after_the_timeout(self):
        self.fanout.received(from_bus(6))
        self.clock.advance(1.9)
        self.assertEqual(self.mind.got, [])
        self.clock.advance(0.2)
        self.assertEqual(self.mind.got, ["den 6 m6"])
        self.fanout.received(from_bus(5))
        self.assertEqual(self.mind.got, ["den 6 m6"])

    def test_old_numbers_are_not_delivered_twice(self):
        self.fanout.received(from_bus(4))
        self.fanout.received(from_bus(5))
        self.fanout.received(from_bus(5))
        self.assertEqual(self.mind.got, ["den 5 m5"])

    def test_notices_are_not_held_behind_a_gap(self):
        self.fanout.received(from_bus(6))
        notice = Event("x", ("room", 7), Notice("bob joined #den").to_dict())
        self.fanout.received(notice)
        self.assertEqual(self.mind.got, ["* bob joined #den"])

    def test_our_own_sender_is_left_out_when_the_message_comes_back(self):
        sender = Mind()
        self.fanout.subscribe(("room", 7), sender)
        self.fanout._excluded[1] = sender
        self.fanout.received(from_bus(5, node="here", token=1))
        self.assertEqual(sender.got, [])
        self.assertEqual(self.mind.got, ["den 5 m5"])

    def test_a_number_whose_write_failed_holds_nothing_up(self):
        self.fanout.received(from_bus(6))
        self.fanout.skipped(7, 5)
        self.assertEqual(self.mind.got, ["den 6 m6"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_skip_that_overtakes_the_message_before_it_waits_its_turn(self):
        self.fanout.skipped(7, 6)
        self.fanout.received(from_bus(7))
        self.assertEqual(self.mind.got, [])
        self.fanout.received(from_bus(5))
        self.assertEqual(self.mind.got, ["den 5 m5", "den 7 m7"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_message_held_for_its_turn_is_delivered_though_then_skipped(self):
        # Published before its write failed: the skip comes after it.
        self.fanout.received(from_bus(6))
        self.fanout.skipped(7, 6)
        self.fanout.received(from_bus(5))
        self.assertEqual(self.mind.got, ["den 5 m5", "den 6 m6"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_skip_of_a_number_already_passed_changes_nothing(self):
        self.fanout.received(from_bus(5))
        self.fanout.skipped(7, 5)
        self.fanout.skipped(8, 1)
        self.fanout.received(from_bus(6))
        self.assertEqual(self.mind.got, ["den 5 m5", "den 6 m6"])

    def test_a_kept_private_message_goes_to_the_chat_service(self):
        arrived = []
        self.fanout.on_kept_private = lambda *args: arrived.append(args)
        event = PrivateMessage("ann", "hi", 0, kept_id=9)
        self.fanout.received(Event("x", ("user", 3), event.to_dict()))
        [(user_id, message)] = arrived
        self.assertEqual((user_id, message.kept_id), (3, 9))

    def test_our_own_kept_private_message_is_not_handled_twice(self):
        # The sending node handed it to its own sessions when it stored it.
        arrived = []
        self.fanout.on_kept_private = lambda *args: arrived.append(args)
        event = PrivateMessage("ann", "hi", 0, kept_id=9)
        self.fanout.received(Event("here", ("user", 3), event.to_dict()))
        self.assertEqual(arrived, [])


class KeptPrivateTests(ServerTestCase):
    """A kept private message may reach a session live and from its login."""

    async def bob_with_one_kept(self):
        bob = await self.server.register("bob")
        [session] = self.server.chat.online_by_key["bob"].sessions
        kept_id = await self.server.store.store_private(
            None, "ann", session.account.id, "psst", 1, delivered=False
        )
        return bob, session, PrivateMessage("ann", "psst", 1, kept_id)

    @async_test
    async def test_handed_over_live_then_read_at_login_shows_once(self):
        bob, session, message = await self.bob_with_one_kept()
        session.take_private(message)
        await session.deliver_kept_private()
        self.assertEqual(bob.take(), ["[private] ann: psst"])
        kept = await self.server.store.undelivered_private(session.account.id, 10)
        self.assertEqual(kept, [])

    @async_test
    async def test_read_at_login_then_handed_over_live_shows_once(self):
        bob, session, message = await self.bob_with_one_kept()
        await session.deliver_kept_private()
        session.take_private(message)
        self.assertEqual(bob.take(), ["[private] ann: psst"])
