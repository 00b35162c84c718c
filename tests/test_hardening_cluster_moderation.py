"""
The bus check of what moderation tells other nodes: its notices (MODE,
TOPIC, KICK, INVITE, DELETE) and away changes as events, a room's state
snapshot, a deleted room, an away text; and the snapshots' order.  No Redis
or PostgreSQL needed.
"""

from __future__ import annotations

import json

from twisted.trial import unittest

from chatroom.service import moderation
from chatroom.service.events import AwayChanged, Membership, ModeChange
from chatroom.service.rooms import Room

try:
    from chatroom.cluster.membership import RedisMembershipBus
    from chatroom.cluster.messages import (
        AwaySet,
        BadMessage,
        Event,
        RoomDeleted,
        RoomStateChanged,
        decode,
        encode,
    )
except ImportError:  # txredisapi missing
    RedisMembershipBus = None

SKIP = None if RedisMembershipBus is not None else "txredisapi is not installed"


def notice(kind: str, detail) -> Event:
    event = Membership(kind, "den", "ann", f"#den: ann did {kind}", detail=detail)
    return Event("other", ("room", 7), event.to_dict())


def a_room() -> Room:
    room = Room(7, "den")
    room.members = {3: "ann", 4: "bob"}
    modes = moderation.state_of(room)
    modes.owner_id = 3
    modes.flags = "imnt"
    modes.key, modes.limit = "sesame", 10
    modes.topic, modes.topic_by, modes.topic_at = "plans", "ann", 1000
    modes.roles = {3: moderation.OP, 4: moderation.VOICE, -2: moderation.OP}
    modes.bans = {
        "eve!*@*": moderation.Ban("eve!*@*", "ann", 900),
        "m:bob!*@*": moderation.Ban("m:bob!*@*", "ann", 950),
    }
    modes.invited = {5: None, -9: None}
    return room


def state(**changed) -> str:
    message = RoomStateChanged("other", 7, 2, moderation.snapshot(a_room()))
    data = json.loads(encode(message))
    data["state"].update(changed)
    for name in [name for name, value in changed.items() if value is KeyError]:
        del data["state"][name]
    return json.dumps(data)


def good() -> list:
    return [
        notice(Membership.MODE, (ModeChange(True, "b", "eve!*@*"),)),
        notice(Membership.MODE, (ModeChange(False, "t", None),)),
        notice(Membership.TOPIC, "plans"),
        notice(Membership.TOPIC, ""),
        notice(Membership.KICK, ("bob", "spam")),
        notice(Membership.INVITE, "bob"),
        notice(Membership.DELETE, "#den was deleted by ann"),
        Event("other", ("room", 7), AwayChanged("ann", "lunch").to_dict()),
        Event("other", ("room", 7), AwayChanged("ann", None).to_dict()),
        RoomStateChanged("other", 7, 2, moderation.snapshot(a_room())),
        RoomStateChanged("other", 7, 1, moderation.snapshot(Room(7, "den"))),
        RoomDeleted("other", 7),
        AwaySet("other", 3, "lunch"),
        AwaySet("other", 3, None),
    ]


def malformed() -> list[str]:
    def event(kind: str, detail) -> str:
        data = json.loads(encode(notice(Membership.JOIN, None)))
        data["event"].update(change=kind, detail=detail)
        return json.dumps(data)

    away = json.loads(encode(good()[7]))
    return [
        event("promote", None),
        event(Membership.MODE, [[True, "x", None]]),
        event(Membership.MODE, [[1, "b", "eve!*@*"]]),
        event(Membership.MODE, [[True, "b", "eve\x1b!*@*"]]),
        event(Membership.MODE, []),
        event(Membership.MODE, "+b"),
        event(Membership.TOPIC, "\x1b[2Jowned"),
        event(Membership.TOPIC, None),
        event(Membership.KICK, ["bob"]),
        event(Membership.KICK, ["bob", "\u202eevil"]),
        event(Membership.INVITE, "not a name!"),
        event(Membership.DELETE, None),
        event(Membership.JOIN, "extra"),
        json.dumps({**away, "event": {**away["event"], "text": "\x07"}}),
        json.dumps({**away, "event": {**away["event"], "name": None}}),
        state(flags="nx"),
        state(flags="nn"),
        state(key="a key"),
        state(key="k" * 24),
        state(limit=-1),
        state(limit=True),
        state(topic="\x1b]0;owned\x07"),
        state(topic="t" * 391),
        state(topic_by="not a name!"),
        state(topic_at="noon"),
        state(owner_id=0),
        state(roles=[[3, 4]]),
        state(roles=[[-2, 2]]),
        state(roles={"3": 2}),
        state(bans=[["eve!bob@host", "ann", 1]]),
        state(bans=[["EVE!*@*", "ann", 1]]),
        state(bans=[["eve!*@*", "ann"]]),
        state(bans=[["eve!*@*", "ann", 1]] * 101),
        state(invited=[-9]),
        state(invited=[1] * 101),
        state(roles=KeyError),
        json.dumps({"node": "other", "kind": "room-state", "room_id": 7,
                    "version": 0, "state": {}}),
        json.dumps({"node": "other", "kind": "room-deleted", "room_id": "7"}),
        json.dumps({"node": "other", "kind": "away", "user_id": 3, "text": 5}),
        json.dumps({"node": "other", "kind": "away", "user_id": 3,
                    "text": "\x1b[2J"}),
    ]  # fmt: skip


class MessageCheckTests(unittest.TestCase):
    skip = SKIP

    def test_every_message_moderation_sends_passes(self):
        for message in good():
            # JSON has no tuples: compared as they travel.
            self.assertEqual(encode(decode(encode(message))), encode(message))

    def test_malformed_moderation_messages_are_refused(self):
        for raw in malformed():
            with self.assertRaises(BadMessage, msg=raw[:120]):
                decode(raw)

    def test_a_snapshot_leaves_guests_out(self):
        snapshot = moderation.snapshot(a_room())
        self.assertEqual(snapshot["roles"], [[3, moderation.OP], [4, moderation.VOICE]])
        self.assertEqual(snapshot["invited"], [5])


class Chat:
    """What the membership bus needs of a chat service to apply a snapshot."""

    def __init__(self, room: Room) -> None:
        self.rooms = type("Rooms", (), {"by_id": {room.id: room}})()

    def apply_room_state(self, room: Room, state: dict) -> None:
        moderation.apply_snapshot(room, state)


class SnapshotOrderTests(unittest.TestCase):
    skip = SKIP

    def setUp(self):
        self.room = Room(7, "den")
        self.room.members = {3: "ann", 4: "bob"}
        self.bus = RedisMembershipBus("here", bus=None)
        self.bus.chat = Chat(self.room)

    def told(self, version: int, node: str, topic: str) -> None:
        other = Room(7, "den")
        moderation.state_of(other).topic = topic
        snapshot = moderation.snapshot(other)
        self.bus.received(RoomStateChanged(node, 7, version, snapshot))

    def test_a_snapshot_replaces_the_state_but_a_guests_roles(self):
        moderation.state_of(self.room).roles[-2] = moderation.OP
        self.bus.received(RoomStateChanged("b", 7, 1, moderation.snapshot(a_room())))
        modes = self.room.mod
        self.assertEqual(
            (modes.topic, modes.key, modes.flags), ("plans", "sesame", "imnt")
        )
        self.assertEqual(modes.roles, {-2: moderation.OP, 3: moderation.OP, 4: 1})
        self.assertEqual(list(modes.bans), ["eve!*@*", "m:bob!*@*"])
        self.assertEqual(modes.invited, {5: None})

    def test_an_older_snapshot_arriving_late_changes_nothing(self):
        self.told(2, "b", "newer")
        self.told(1, "c", "older")
        self.assertEqual(self.room.mod.topic, "newer")

    def test_the_same_version_from_two_nodes_goes_to_the_greater_node(self):
        self.told(3, "c", "from c")
        self.told(3, "b", "from b")
        self.assertEqual(self.room.mod.topic, "from c")

    def test_a_change_here_outranks_every_snapshot_heard(self):
        self.told(4, "b", "heard")
        published = []
        self.bus._tell = published.append
        self.bus.tell_room_state(self.room)
        self.assertEqual(published[0].version, 5)
        self.told(4, "c", "late")
        self.assertEqual(self.room.mod.topic, "heard")
