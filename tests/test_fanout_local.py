"""
The in-process fan-out: each subscriber but the one excluded gets an event
once, and one whose delivery fails costs the others nothing.  Room messages
take a shorter path than other events: both are tested.
"""

from twisted.trial import unittest

from chatroom.service.events import Notice, RoomMessage
from chatroom.service.fanout import LocalFanout, OneByOne
from tests.helpers import ChatWorld, capture_log


class Mind:
    def __init__(self, name: str, broken: bool = False) -> None:
        self.name = name
        self.broken = broken
        self.got: list[str] = []

    def room_message(self, message: RoomMessage) -> None:
        self._take(message.text)

    def notice(self, text: str) -> None:
        self._take(f"* {text}")

    def _take(self, line: str) -> None:
        if self.broken:
            raise ConnectionError(f"{self.name} is broken")
        self.got.append(line)


class LocalFanoutTests(unittest.TestCase):
    def setUp(self):
        self.fanout = LocalFanout()
        self.minds = [Mind("ann"), Mind("bob", broken=True), Mind("cy"), Mind("di")]
        for mind in self.minds:
            self.fanout.subscribe("den", mind)
        self.log = capture_log(self)

    def events(self):
        return {
            "room message": (RoomMessage("den", 1, "ann", "hello", 0), "hello"),
            "notice": (Notice("news"), "* news"),
        }

    def test_every_subscriber_but_the_excluded_gets_it_once(self):
        ann, bob, cy, di = self.minds
        bob.broken = False
        for kind, (event, line) in self.events().items():
            with self.subTest(kind):
                self.fanout.deliver("den", event, exclude=cy)
                for mind in (ann, bob, di):
                    self.assertEqual(mind.got, [line])
                    mind.got.clear()
                self.assertEqual(cy.got, [])

    def test_a_broken_subscriber_costs_the_others_nothing(self):
        ann, bob, cy, di = self.minds
        for kind, (event, line) in self.events().items():
            with self.subTest(kind):
                del self.log[:]
                self.fanout.deliver("den", event)
                for mind in (ann, cy, di):
                    self.assertEqual(mind.got, [line])
                    mind.got.clear()
                [failure] = [e for e in self.log if "log_failure" in e]
                self.assertIsInstance(failure["log_failure"].value, ConnectionError)
                self.assertIs(failure["client"], bob)
                self.flushLoggedErrors(ConnectionError)

    def test_who_joins_or_leaves_between_messages_is_seen_by_the_next(self):
        ann, bob, cy, di = self.minds
        bob.broken = False
        eve = Mind("eve")
        self.fanout.deliver("den", RoomMessage("den", 1, "ann", "one", 0))
        self.fanout.subscribe("den", eve)
        self.fanout.deliver("den", RoomMessage("den", 2, "ann", "two", 0))
        self.fanout.unsubscribe("den", bob)
        self.fanout.deliver("den", RoomMessage("den", 3, "ann", "three", 0))
        self.assertEqual(eve.got, ["two", "three"])
        self.assertEqual(bob.got, ["one", "two"])
        self.assertEqual(ann.got, ["one", "two", "three"])

    def test_a_subscriber_leaving_during_a_delivery_costs_the_others_nothing(self):
        ann, bob, cy, di = self.minds
        bob.broken = False
        fanout = self.fanout

        class Leaver(Mind):
            def room_message(self, message):
                super().room_message(message)
                for mind in (self, cy, di):
                    fanout.unsubscribe("den", mind)

        leaver = Leaver("lee")
        fanout.subscribe("den", leaver)
        fanout.deliver("den", RoomMessage("den", 1, "ann", "one", 0))
        self.assertEqual([m.got for m in (ann, bob, cy, di, leaver)], [["one"]] * 5)
        fanout.deliver("den", RoomMessage("den", 2, "ann", "two", 0))
        self.assertEqual([m.got for m in (cy, di, leaver)], [["one"]] * 3)
        self.assertEqual(ann.got, ["one", "two"])

    def test_clients_whose_class_has_a_room_fan_are_reached_through_it(self):
        made = []

        class Fan(OneByOne):
            def __init__(self, members):
                super().__init__(members)
                made.append(self)
                self.calls = 0

            def deliver(self, message, exclude, failed):
                self.calls += 1
                super().deliver(message, exclude, failed)

        class Many(Mind):
            room_fan = Fan

        ann, bob, cy, di = self.minds
        bob.broken = False
        eve, fay = Many("eve"), Many("fay")
        for mind in (eve, fay):
            self.fanout.subscribe("den", mind)
        self.fanout.deliver("den", RoomMessage("den", 1, "ann", "hi", 0), exclude=fay)
        self.fanout.deliver("den", RoomMessage("den", 2, "ann", "ho", 0))
        # One group for the room, kept from one message to the next.
        [fan] = made
        self.assertEqual(sorted(m.name for m in fan.members), ["eve", "fay"])
        self.assertEqual(fan.calls, 2)
        self.assertEqual(
            [m.got for m in (ann, bob, cy, di, eve, fay)],
            [["hi", "ho"]] * 5 + [["ho"]],
        )
        # A member joining makes the room's groups anew.
        self.fanout.subscribe("den", Many("gus"))
        self.fanout.deliver("den", RoomMessage("den", 3, "ann", "hey", 0))
        self.assertEqual(len(made), 2)

    def test_a_channel_of_one_holds_no_set(self):
        lone = Mind("eve")
        self.fanout.subscribe("own", lone)
        self.fanout.deliver("own", RoomMessage("own", 1, "ann", "hi", 0))
        self.assertEqual(lone.got, ["hi"])
        self.fanout.deliver("own", RoomMessage("own", 2, "ann", "no", 0), exclude=lone)
        self.assertEqual(lone.got, ["hi"])


class LineSharedRunTests(unittest.TestCase):
    """The line protocol's members share a turn's room messages too."""

    def test_the_run_keeps_its_encoding_when_its_encoder_sets_timestamps(self):
        world = ChatWorld()
        ann, bob, cy = (world.user(name) for name in ("ann", "bob", "cy"))
        for client in (ann, bob, cy):
            client.take()

        def hand(client, line):
            client.protocol.dataReceived(line.encode() + b"\r\n")

        hand(ann, "one")
        [(_, _, encoder)] = bob.protocol._run.fan._runs.values()
        changed, other = (bob, cy) if bob.protocol is encoder else (cy, bob)
        hand(changed, "/set timestamps on")
        hand(ann, "two")
        self.assertEqual(other.take(), ["[lobby] ann: one", "[lobby] ann: two"])
        lines = [line for line in changed.take() if "ann:" in line]
        self.assertEqual(lines[0], "[lobby] ann: one")
        self.assertTrue(lines[1].endswith("[lobby] ann: two"), lines)
        self.assertNotEqual(lines[1], "[lobby] ann: two")
