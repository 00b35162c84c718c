"""
The wire of the bus: every message a node publishes, as a frozen dataclass
with named fields, and the check of what comes off it.  A node trusts Redis to
carry what the others published, not every publisher to be well: a message of
the wrong shape is refused here, before it touches any state, and the bus
logs and drops it.  One node's bug (or anyone who can publish on the channel)
must not crash another node's subscriber, stall its room order, or put control
characters in front of its clients.

Nodes of different versions need not understand each other: a cluster is
upgraded by stopping every node, then starting the new ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar

from chatroom.errors import BadCiphertext, BadName, BadText, ChatError
from chatroom.names import check_name, check_reason, check_text
from chatroom.service import e2e, moderation
from chatroom.service.events import (
    ACTION,
    E2E_PLACEHOLDER,
    MESSAGE,
    NOTICE,
    Membership,
)


class BadMessage(ValueError):
    """A bus message that is not one a node sends."""


# Checkers of one field of a dict: raise BadMessage, or return nothing.
Check = Callable[[dict, str], None]


def _field(data: dict, name: str, kind: type) -> object:
    value = data.get(name)
    # bool is an int to Python, never to us.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadMessage(f"{name}: missing or not a {kind.__name__}")
    return value


def _id(data: dict, name: str) -> None:
    if _field(data, name, int) < 1:
        raise BadMessage(f"{name}: not an id")


def _time(data: dict, name: str) -> None:
    if _field(data, name, int) < 0:
        raise BadMessage(f"{name}: not a time")


def _name(data: dict, name: str) -> None:
    try:
        check_name(_field(data, name, str))
    except BadName:
        raise BadMessage(f"{name}: not a valid name") from None


def _node(data: dict, name: str) -> None:
    node = _field(data, name, str)
    if not 0 < len(node) <= 255 or not node.isprintable():
        raise BadMessage("bad node name")


def _text(data: dict, name: str) -> None:
    try:
        check_text(_field(data, name, str))
    except BadText:
        raise BadMessage(f"{name}: not text a client may see") from None


def _or_none(check: Check) -> Check:
    """C{check}, for a field that may also be absent or None."""

    def check_or_none(data: dict, name: str) -> None:
        if data.get(name) is not None:
            check(data, name)

    return check_or_none


_id_or_none = _or_none(_id)
_name_or_none = _or_none(_name)
_text_or_none = _or_none(_text)


def _reason_or_none(data: dict, name: str) -> None:
    reason = data.get(name)
    # As the sending node's service left it: one it would have changed is not.
    if reason is not None and (
        type(reason) is not str or check_reason(reason) != reason
    ):
        raise BadMessage(f"{name}: not a reason a client may see")


def _message_kind(data: dict, name: str) -> None:
    # Absent from a message that is a plain one.
    if data.get(name, MESSAGE) not in (MESSAGE, NOTICE, ACTION, E2E_PLACEHOLDER):
        raise BadMessage(f"{name}: not a kind of message")


_CHANGES = (
    Membership.JOIN,
    Membership.LEAVE,
    Membership.RENAME,
    Membership.QUIT,
    Membership.MODE,
    Membership.TOPIC,
    Membership.KICK,
    Membership.INVITE,
    Membership.DELETE,
)


def _change(data: dict, name: str) -> None:
    if _field(data, name, str) not in _CHANGES:
        raise BadMessage(f"{name}: not a membership change")


# Built once, not per message: a tuple, as a list (unhashable) may come in.
_MODE_LETTERS = tuple(moderation.MODES)
_FLAG_LETTERS = frozenset(moderation.FLAG_MODES)


def _mode_param(value: object) -> bool:
    return value is None or (
        type(value) is str and 0 < len(value) <= 255 and value.isprintable()
    )


def _detail(data: dict, name: str) -> None:
    """A moderation change's detail, its shape by the change (after C{change})."""
    detail, change = data.get(name), data["change"]
    if change == Membership.MODE:
        if (
            type(detail) is not list
            or not 0 < len(detail) <= 64
            or not all(
                type(one) is list
                and len(one) == 3
                and type(one[0]) is bool
                and one[1] in _MODE_LETTERS
                and _mode_param(one[2])
                for one in detail
            )
        ):
            raise BadMessage(f"{name}: not mode changes")
    elif change == Membership.TOPIC:
        # The topic, "" when cleared.
        if detail != "":
            _text(data, name)
    elif change == Membership.KICK:
        if type(detail) is not list or len(detail) != 2:
            raise BadMessage(f"{name}: not who was kicked and why")
        _name({"who": detail[0]}, "who")
        _text({"why": detail[1]}, "why")
    elif change == Membership.INVITE:
        _name(data, name)
    elif change == Membership.DELETE:
        _text(data, name)
    elif detail is not None:
        raise BadMessage(f"{name}: a {change} has no detail")


def _channel(data: dict, name: str) -> None:
    channel = _field(data, name, list)
    if len(channel) != 2 or channel[0] not in ("room", "user"):
        raise BadMessage(f"{name}: not a channel")
    _id({"id": channel[1]}, "id")


def _tags(data: dict, name: str) -> None:
    tags = _field(data, name, dict)
    if not all(
        type(key) is str and key.startswith("+") and type(value) is str
        for key, value in tags.items()
    ):
        raise BadMessage(f"{name}: not client-only tags")


_tags_or_none = _or_none(_tags)


def _msgid(data: dict, name: str) -> None:
    value = _field(data, name, str)
    if not 0 < len(value) <= 64 or not value.isprintable():
        raise BadMessage(f"{name}: not a message id")


def _device(data: dict, name: str) -> None:
    if not e2e.DEVICE.match(_field(data, name, str)):
        raise BadMessage(f"{name}: not a device's name")


def _e2e_msgid(data: dict, name: str) -> None:
    if not e2e.MSGID.match(_field(data, name, str)):
        raise BadMessage(f"{name}: not an end-to-end message id")


def _ciphertext(data: dict, name: str) -> None:
    try:
        e2e.checked_ciphertext(_field(data, name, str))
    except BadCiphertext:
        raise BadMessage(f"{name}: not a ciphertext") from None


def _status(data: dict, name: str) -> None:
    if _field(data, name, str) not in ("@", "+"):
        raise BadMessage(f"{name}: not a status")


_EVENTS: dict[str, dict[str, Check]] = {
    "room": {
        "room": _name,
        "seq": _id,
        "sender": _name,
        "text": _text,
        "at": _time,
        "message_kind": _message_kind,
        "tags": _tags_or_none,
    },
    "private": {
        "sender": _name,
        "text": _text,
        "at": _time,
        "kept_id": _id_or_none,
        "message_kind": _message_kind,
        "tags": _tags_or_none,
    },
    "e2e": {
        "id": _id,
        "sender": _name,
        "sender_device": _device,
        "recipient": _name,
        "device": _device,
        "msgid": _e2e_msgid,
        "at": _time,
        "ciphertext": _ciphertext,
    },
    "tags": {
        "room": _name_or_none,
        "sender": _name,
        "tags": _tags,
        "at": _time,
        "msgid": _msgid,
    },
    "status": {
        "room": _name,
        "status": _status,
        "sender": _name,
        "text": _text,
        "at": _time,
        "msgid": _msgid,
        "message_kind": _message_kind,
        "tags": _tags_or_none,
    },
    "notice": {"text": _text},
    "membership": {
        "change": _change,
        "room": _name,
        "name": _name,
        "text": _text,
        "new_name": _name_or_none,
        "reason": _reason_or_none,
        "detail": _detail,
    },
    "away": {"name": _name, "text": _text_or_none},
}


def _event(data: dict, name: str) -> None:
    event = _field(data, name, dict)
    checks = _EVENTS.get(event.get("kind"))
    if checks is None:
        raise BadMessage(f"{name}: unknown event kind")
    for field, check in checks.items():
        check(event, field)


def _pairs_of_ids(value: object, most: int, width: int) -> bool:
    return (
        type(value) is list
        and len(value) <= most
        and all(
            type(one) is list
            and len(one) == width
            and all(type(x) is int and x > 0 for x in one[:2])
            for one in value
        )
    )


def _state(data: dict, name: str) -> None:
    """A room's moderation state, as L{moderation.snapshot} makes it."""
    state = _field(data, name, dict)
    _id_or_none(state, "owner_id")
    flags = _field(state, "flags", str)
    if len(set(flags)) != len(flags) or not set(flags) <= _FLAG_LETTERS:
        raise BadMessage(f"{name}: not room flags")
    key = state.get("key")
    if key is not None and (
        type(key) is not str
        or len(key) > moderation.KEY_MAX
        or moderation._KEY.fullmatch(key) is None
    ):
        raise BadMessage(f"{name}: not a room key")
    if not 0 <= _field(state, "limit", int) <= moderation.LIMIT_MAX:
        raise BadMessage(f"{name}: not a member limit")
    topic = _field(state, "topic", str)
    if topic:
        _text(state, "topic")
        if len(topic) > moderation.TOPIC_MAX:
            raise BadMessage(f"{name}: topic too long")
    if _field(state, "topic_by", str):
        _name(state, "topic_by")
    _time(state, "topic_at")
    roles = state.get("roles")
    if not _pairs_of_ids(roles, 100_000, 2) or not all(
        role in (moderation.VOICE, moderation.OP, moderation.VOICE | moderation.OP)
        for _, role in roles
    ):
        raise BadMessage(f"{name}: not members' roles")
    bans = _field(state, "bans", list)
    if len(bans) > moderation.BANS_MAX or not all(
        type(ban) is list and len(ban) == 3 for ban in bans
    ):
        raise BadMessage(f"{name}: not bans")
    for mask, set_by, set_at in bans:
        try:
            if type(mask) is not str or moderation.normalise_mask(mask) != mask:
                raise BadMessage(f"{name}: not a ban mask")
        except ChatError:
            raise BadMessage(f"{name}: not a ban mask") from None
        _name({"by": set_by}, "by")
        _time({"at": set_at}, "at")
    invited = _field(state, "invited", list)
    if len(invited) > moderation.INVITES_MAX or not all(
        type(uid) is int and uid > 0 for uid in invited
    ):
        raise BadMessage(f"{name}: not invitations")


@dataclass(frozen=True, slots=True)
class BusMessage:
    """What every message says: its kind (on the wire) and the node it is from."""

    kind: ClassVar[str]
    checks: ClassVar[dict[str, Check]] = {}
    # Set below for each kind: fields() costs too much per room message.
    names: ClassVar[tuple[str, ...]] = ()
    node: str

    def to_dict(self) -> dict:
        data = {"kind": self.kind}
        for name in self.names:
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BusMessage:
        """The message C{data} holds, once every field is checked; or L{BadMessage}."""
        cls.check(data)
        return cls(**{name: data.get(name) for name in cls.names})

    @classmethod
    def check(cls, data: dict) -> None:
        _node(data, "node")
        for name, check in cls.checks.items():
            check(data, name)


@dataclass(frozen=True, slots=True)
class Event(BusMessage):
    """An event (its C{to_dict}) for a channel's subscribers on every node."""

    kind = "event"
    checks = {"channel": _channel, "event": _event, "token": _id_or_none}
    channel: tuple[str, int]
    event: dict
    # Set by the publishing node to find whom to leave out when it comes back.
    token: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> Event:
        cls.check(data)
        channel, event = data["channel"], data["event"]
        if event["kind"] == "room" and channel[0] != "room":
            raise BadMessage("a room message belongs on a room channel")
        return cls(data["node"], tuple(channel), event, data.get("token"))


@dataclass(frozen=True, slots=True)
class Skipped(BusMessage):
    """Number C{seq} of the room will carry no message: its write failed."""

    kind = "skip"
    checks = {"room_id": _id, "seq": _id}
    room_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class Online(BusMessage):
    kind = "online"
    checks = {"user_id": _id}
    user_id: int


@dataclass(frozen=True, slots=True)
class Offline(BusMessage):
    kind = "offline"
    checks = {"user_id": _id}
    user_id: int


@dataclass(frozen=True, slots=True)
class Hello(BusMessage):
    """The node has (re)started: forget what it had online before."""

    kind = "hello"


@dataclass(frozen=True, slots=True)
class Bye(BusMessage):
    """The node is stopping: its users are offline."""

    kind = "bye"


@dataclass(frozen=True, slots=True)
class Joined(BusMessage):
    kind = "join"
    checks = {"room_id": _id, "room_name": _name, "user_id": _id, "user_name": _name}
    room_id: int
    room_name: str
    user_id: int
    user_name: str


@dataclass(frozen=True, slots=True)
class Left(BusMessage):
    kind = "leave"
    checks = {"room_id": _id, "user_id": _id}
    room_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class Renamed(BusMessage):
    kind = "rename"
    checks = {"user_id": _id, "user_name": _name}
    user_id: int
    user_name: str


@dataclass(frozen=True, slots=True)
class DefaultChanged(BusMessage):
    kind = "default"
    checks = {"user_id": _id, "room_id": _id_or_none}
    user_id: int
    room_id: int | None


@dataclass(frozen=True, slots=True)
class PasswordChanged(BusMessage):
    """The account's password changed: its sessions on other nodes end."""

    kind = "password"
    checks = {"user_id": _id}
    user_id: int


@dataclass(frozen=True, slots=True)
class SessionsEnded(BusMessage):
    """An admin ended the account's sessions (suspended, disconnected, reset)."""

    kind = "end-sessions"
    checks = {"user_id": _id, "reason": _text}
    user_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Broadcast(BusMessage):
    """An admin's notice to everyone online."""

    kind = "broadcast"
    checks = {"text": _text}
    text: str


@dataclass(frozen=True, slots=True)
class RoomStateChanged(BusMessage):
    """
    The room's whole moderation state after a change, numbered: a node keeps
    the highest (version, node) it has heard, so all agree whatever the order.
    """

    kind = "room-state"
    checks = {"room_id": _id, "version": _id, "state": _state}
    room_id: int
    version: int
    state: dict


@dataclass(frozen=True, slots=True)
class RoomDeleted(BusMessage):
    kind = "room-deleted"
    checks = {"room_id": _id}
    room_id: int


@dataclass(frozen=True, slots=True)
class AwaySet(BusMessage):
    """The account is away with C{text}, or back (None)."""

    kind = "away"
    checks = {"user_id": _id, "text": _text_or_none}
    user_id: int
    text: str | None


KINDS: dict[str, type[BusMessage]] = {
    kind.kind: kind
    for kind in (
        Event,
        Skipped,
        Online,
        Offline,
        Hello,
        Bye,
        Joined,
        Left,
        Renamed,
        DefaultChanged,
        PasswordChanged,
        SessionsEnded,
        Broadcast,
        RoomStateChanged,
        RoomDeleted,
        AwaySet,
    )
}
for _kind in KINDS.values():
    _kind.names = tuple(field.name for field in fields(_kind))


def encode(message: BusMessage) -> str:
    return json.dumps(message.to_dict())


def decode(raw: object) -> BusMessage:
    """The message published as C{raw}, checked; or L{BadMessage}."""
    # txredisapi hands over numbers as numbers, and text it cannot decode
    # as bytes.
    if not isinstance(raw, str | bytes):
        raise BadMessage(f"a {type(raw).__name__}, not JSON text")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise BadMessage("not JSON") from e
    if not isinstance(data, dict):
        raise BadMessage("not an object")
    kind = _field(data, "kind", str)
    message_class = KINDS.get(kind)
    if message_class is None:
        raise BadMessage(f"unknown kind {kind[:20]!r}")
    return message_class.from_dict(data)
