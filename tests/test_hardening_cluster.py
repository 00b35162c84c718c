"""
The security review of the cluster and of PostgreSQL's place in the logs:
nothing on the Redis bus, however malformed, raises out of a node's
subscriber, touches its state, or reaches its clients; no password is
logged.  No Redis or PostgreSQL needed: the bus is fed by hand.
"""

from __future__ import annotations

import json

from twisted.internet import task
from twisted.logger import Logger, formatEvent, globalLogPublisher
from twisted.trial import unittest

from chatroom.service.events import E2EMessage, Notice, PrivateMessage, RoomMessage
from chatroom.storage.opening import describe

try:
    from chatroom.cluster.bus import RedisAddress
    from chatroom.cluster.messages import (
        BadMessage,
        Broadcast,
        Bye,
        DefaultChanged,
        Event,
        Hello,
        Joined,
        Left,
        Offline,
        Online,
        PasswordChanged,
        Renamed,
        SessionsEnded,
        Skipped,
        decode,
        encode,
    )
    from chatroom.cluster.node import ClusterNode
except ImportError:  # txredisapi missing
    ClusterNode = None

SKIP = None if ClusterNode is not None else "txredisapi is not installed"


class Mind:
    def __init__(self) -> None:
        self.got: list[str] = []

    def room_message(self, message: RoomMessage) -> None:
        self.got.append(f"{message.room} {message.seq} {message.text}")

    def private_message(self, message: PrivateMessage) -> None:
        self.got.append(f"private {message.sender} {message.text}")

    def notice(self, text: str) -> None:
        self.got.append(f"* {text}")

    def membership(self, event) -> None:
        self.notice(event.text)


def room_event(seq=5, text="hi", room="den", sender="ann", channel=("room", 7)):
    event = RoomMessage(room, seq, sender, text, 1000).to_dict()
    return {
        "kind": "event",
        "node": "other",
        "channel": list(channel),
        "event": event,
        "token": None,
    }


def e2e_event() -> dict:
    ciphertext = "AAEC" * 24
    event = E2EMessage(
        9, "ann", "laptop", "bob", "phone", "msgid-0001", 1000, ciphertext
    )
    return {
        "kind": "event",
        "node": "other",
        "channel": ["user", 3],
        "event": event.to_dict(),
        "token": None,
    }


def good() -> list:
    """What each kind of node message looks like, as the node code builds them."""
    return [
        Event.from_dict(room_event()),
        Event("other", ("user", 3), PrivateMessage("ann", "psst", 1000).to_dict(), 4),
        Event("other", ("room", 7), Notice("bob joined #den").to_dict()),
        Online("other", 3),
        Offline("other", 3),
        Hello("other"),
        Bye("other"),
        Joined("other", 7, "den", 3, "bob"),
        Left("other", 7, 3),
        Renamed("other", 3, "Bobby"),
        Event(
            "other",
            ("user", 3),
            PrivateMessage("ann", "kept", 1000, kept_id=12).to_dict(),
        ),
        DefaultChanged("other", 3, 7),
        DefaultChanged("other", 3, None),
        Skipped("other", 7, 5),
        PasswordChanged("other", 3),
        SessionsEnded("other", 3, "you were disconnected by the admin"),
        Broadcast("other", "notice from admin: back soon"),
        Event.from_dict(e2e_event()),
        Event(
            "other",
            ("user", 3),
            PrivateMessage("ann", "[placeholder]", 1000, 13, "e2e").to_dict(),
        ),
    ]


def malformed() -> list[object]:
    """Raw payloads that are not a message any node sends."""

    def changed(message: dict, *path_and_value) -> str:
        *path, value = path_and_value
        message = json.loads(json.dumps(message))
        target = message
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return json.dumps(message)

    event = room_event()
    e2e = e2e_event()
    return [
        changed(e2e, "event", "device", "ph one"),
        changed(e2e, "event", "sender_device", ""),
        changed(e2e, "event", "msgid", "short"),
        changed(e2e, "event", "ciphertext", "AAEC"),
        changed(e2e, "event", "ciphertext", "not*base64" * 10),
        changed(e2e, "event", "id", 0),
        changed(e2e, "event", "recipient", "bad name"),
        "not json",
        b"\xff\xfe",
        42,  # txredisapi turns a numeric payload into a number
        None,
        "[" * 100_000 + "]" * 100_000,  # RecursionError in json
        "[]",
        '"a string"',
        "{}",
        json.dumps({"node": "other", "kind": "gossip"}),
        json.dumps({"node": 5, "kind": "hello"}),
        json.dumps({"node": "", "kind": "hello"}),
        json.dumps({"node": "evil\x1b[2J", "kind": "hello"}),
        changed(event, "event", "seq", "6"),
        changed(event, "event", "seq", True),
        changed(event, "event", "seq", 0),
        changed(event, "event", "seq", KeyError),
        changed(event, "event", "text", "\x1b]0;owned\x07"),
        changed(event, "event", "text", "\u202eevil"),
        changed(event, "event", "text", ["hi"]),
        changed(event, "event", "room", "not a room!"),
        changed(event, "event", "sender", None),
        changed(event, "event", "kind", "shell"),
        changed(event, "event", "at", "noon"),
        changed(event, "channel", ["user", 7]),
        changed(event, "channel", ["room"]),
        changed(event, "channel", ["room", "7"]),
        changed(event, "channel", [["room"], 7]),
        changed(event, "token", "token"),
        json.dumps({"node": "other", "kind": "online", "user_id": [1]}),
        json.dumps({"node": "other", "kind": "offline", "user_id": "3"}),
        json.dumps({"node": "other", "kind": "join", "room_id": 7,
                    "room_name": "d\x00n", "user_id": 3, "user_name": "bob"}),
        json.dumps({"node": "other", "kind": "leave", "room_id": None, "user_id": 3}),
        json.dumps({"node": "other", "kind": "rename", "user_id": 3, "user_name": 7}),
        json.dumps({"node": "other", "kind": "default", "user_id": 3,
                    "room_id": "den"}),
        json.dumps({"node": "other", "kind": "skip", "room_id": 7, "seq": "5"}),
        json.dumps({"node": "other", "kind": "skip", "room_id": 7}),
        json.dumps({"node": "other", "kind": "password", "user_id": "3"}),
        json.dumps({"node": "other", "kind": "password", "user_id": 0}),
        json.dumps({"node": "other", "kind": "password"}),
    ]  # fmt: skip


def capture_log(test: unittest.TestCase) -> list[dict]:
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class MessageCheckTests(unittest.TestCase):
    skip = SKIP

    def test_every_message_a_node_sends_passes(self):
        for message in good():
            self.assertEqual(decode(encode(message)), message)

    def test_messages_travel_with_named_fields(self):
        self.assertEqual(
            json.loads(encode(Joined("here", 7, "den", 3, "bob"))),
            {
                "kind": "join",
                "node": "here",
                "room_id": 7,
                "room_name": "den",
                "user_id": 3,
                "user_name": "bob",
            },
        )

    def test_malformed_messages_are_refused(self):
        for raw in malformed():
            with self.assertRaises(BadMessage, msg=repr(raw)[:80]):
                decode(raw)


class NodeTests(unittest.TestCase):
    """A whole node, never started: what it does with what Redis hands it."""

    skip = SKIP

    def setUp(self):
        self.clock = task.Clock()
        self.node = ClusterNode("redis://127.0.0.1:1/0", self.clock, name="here")
        self.mind = Mind()
        self.node.fanout.subscribe(("room", 7), self.mind)
        self.node.fanout.expect(7, 4)
        self.log = capture_log(self)

    def feed(self, raw) -> None:
        self.node.bus._received(raw)

    def test_malformed_messages_are_logged_and_dropped(self):
        for raw in malformed():
            self.feed(raw)
        self.assertEqual(self.mind.got, [])
        dropped = [e for e in self.log if "malformed" in e.get("log_format", "")]
        self.assertEqual(len(dropped), len(malformed()))
        self.assertFalse([e for e in self.log if e.get("log_failure")])

    def test_a_malformed_message_does_not_stall_the_room(self):
        self.feed(json.dumps(room_event(seq="5")))
        self.feed(json.dumps(room_event(seq=10**18, text="x\x1b")))
        for seq in (5, 6):
            self.feed(json.dumps(room_event(seq=seq, text=f"m{seq}")))
        self.assertEqual(self.mind.got, ["den 5 m5", "den 6 m6"])

    def test_no_control_character_from_the_bus_reaches_a_client(self):
        self.feed(json.dumps(room_event(text="\x1b[31mred")))
        self.feed(json.dumps(room_event(text="fine")))
        self.assertEqual(self.mind.got, ["den 5 fine"])

    def test_a_failure_handling_a_message_is_logged_without_its_text(self):
        def broken(message):
            raise RuntimeError("boom")

        self.node.bus.on_message = broken
        # A logger of its own: trial's bridge to the legacy log rewrites a
        # field called "message".
        events: list[dict] = []
        self.node.bus.log = Logger(observer=events.append)
        self.feed(json.dumps(room_event(text="a secret between us")))
        self.assertEqual(len(events), 1)
        self.assertTrue(events[0]["log_failure"].check(RuntimeError))
        self.assertNotIn("a secret", formatEvent(events[0]))
        self.assertNotIn("a secret", repr(events[0]))

    def test_a_bad_entry_in_a_presence_set_does_not_stop_the_refresh(self):
        presence = self.node.presence
        presence._refreshed(["there", [1, "junk", None, 2]], {})
        self.assertEqual(presence.remote, {"there": {1, 2}})
        self.assertTrue(presence.is_online_elsewhere(2))


class PasswordsInLogsTests(unittest.TestCase):
    def test_database_urls_lose_their_passwords(self):
        cases = {
            "postgresql://chat:s3cret@db/chat": "postgresql://chat:***@db/chat",
            # An @ in the password: libpq finds the host after the last one.
            "postgresql://chat:s3@cr@t@db:5432/chat": "postgresql://chat:***@db:5432/chat",
            "postgresql://:s3cret@db/chat": "postgresql://:***@db/chat",
            "postgres://db/chat?sslmode=verify-full&password=s3cret":
                "postgres://db/chat?sslmode=verify-full&password=***",
            "postgresql://chat@db/chat?PASSWORD=s3cret": "postgresql://chat@db/chat?PASSWORD=***",
            "postgresql://chat@db/chat": "postgresql://chat@db/chat",
            "/var/lib/chatroom/chatroom.sqlite3": "/var/lib/chatroom/chatroom.sqlite3",
        }  # fmt: skip
        for location, shown in cases.items():
            self.assertEqual(describe(location), shown)

    def test_the_redis_password_is_not_in_the_address_repr(self):
        if ClusterNode is None:
            raise unittest.SkipTest(SKIP)
        address = RedisAddress.parse("redis://:s3cret@cache:6380/2")
        self.assertEqual(address.password, "s3cret")
        self.assertNotIn("s3cret", repr(address))
