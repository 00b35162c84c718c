"""
What the service hands to minds.  Each event is built once per fan-out; each
front end caches its encoding in a slot of its own (C{wire} for the line
protocol; C{irc}, on room messages, for IRC), so the first recipient of
each front end encodes it for the others, and no front end ever sends
another's bytes.  C{to_dict} and L{event_from_dict} carry an event
between server processes (the Redis fan-out) as plain data.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from chatroom.storage.devices import StoredE2E


class ModeChange(NamedTuple):
    """One change of a room's modes (L{chatroom.service.moderation})."""

    adding: bool
    mode: str
    param: str | None = None


# The kinds of message: a plain one, a notice (IRC's NOTICE: nobody, no
# bot, should answer it automatically), or an action (the line protocol's
# /me, IRC's CTCP ACTION: the text says what its sender does).  Front ends
# without notices show a notice as a message.
MESSAGE = "message"
NOTICE = "notice"
ACTION = "action"
# A private message's kind that stands for an end-to-end encrypted one
# (chatroom.service.e2e): shown, as a notice, only to sessions that cannot
# decrypt it; a device session gets the ciphertext (L{E2EMessage}) instead.
E2E_PLACEHOLDER = "e2e"


def new_tag_id() -> str:
    """A unique id for a message that is never stored (so has no number)."""
    return secrets.token_hex(8)


class RoomMessage:
    """
    A room message; C{tags} are the sender's client-only tags (IRCv3
    C{+name}), passed on as they came and never stored.
    """

    __slots__ = ("room", "seq", "sender", "text", "at", "kind", "tags", "wire", "irc")

    def __init__(
        self,
        room: str,
        seq: int,
        sender: str,
        text: str,
        at: int,
        kind=MESSAGE,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.room = room
        self.seq = seq
        self.sender = sender
        self.text = text
        self.at = at
        self.kind = kind
        self.tags = tags
        self.wire: bytes | None = None
        # IRC's lines, one variant per set of the caps that change them.
        self.irc: list | None = None

    def deliver(self, client) -> None:
        client.room_message(self)

    def to_dict(self) -> dict:
        return {
            "kind": "room",
            "room": self.room,
            "seq": self.seq,
            "sender": self.sender,
            "text": self.text,
            "at": self.at,
            "message_kind": self.kind,
            "tags": self.tags,
        }


class PrivateMessage:
    """
    A private message; C{kept_id} is its stored id while it waits to be
    marked delivered (no session of the recipient was on the sender's node).
    """

    __slots__ = ("sender", "text", "at", "kept_id", "kind", "tags", "wire", "irc")

    def __init__(
        self,
        sender: str,
        text: str,
        at: int,
        kept_id: int | None = None,
        kind: str = MESSAGE,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.sender = sender
        self.text = text
        self.at = at
        self.kept_id = kept_id
        self.kind = kind
        self.tags = tags
        self.wire: bytes | None = None
        # IRC's message id, made once for all of its recipients.
        self.irc: str | None = None

    def deliver(self, client) -> None:
        client.private_message(self)

    def to_dict(self) -> dict:
        return {
            "kind": "private",
            "sender": self.sender,
            "text": self.text,
            "at": self.at,
            "kept_id": self.kept_id,
            "message_kind": self.kind,
            "tags": self.tags,
        }


class E2EMessage:
    """
    One ciphertext for one device of an account (docs/e2e.md): its stored
    C{id}, who sent it from which device, to whom (as the sender named
    them) and which of their devices, the sender's C{msgid}, when the
    server took it (ms) and the base64 C{ciphertext}, which the server has
    no key to read.  Handed only to the sessions that are that device.
    """

    __slots__ = (
        "id",
        "sender",
        "sender_device",
        "recipient",
        "device",
        "msgid",
        "at",
        "ciphertext",
        "wire",
    )

    def __init__(
        self,
        id: int,
        sender: str,
        sender_device: str,
        recipient: str,
        device: str,
        msgid: str,
        at: int,
        ciphertext: str,
    ) -> None:
        self.id = id
        self.sender = sender
        self.sender_device = sender_device
        self.recipient = recipient
        self.device = device
        self.msgid = msgid
        self.at = at
        self.ciphertext = ciphertext
        self.wire: bytes | None = None

    @classmethod
    def from_stored(cls, stored: StoredE2E) -> E2EMessage:
        """The event for a ciphertext as storage has it."""
        return cls(
            stored.id,
            stored.sender,
            stored.sender_device,
            stored.recipient,
            stored.device,
            stored.msgid,
            stored.created_at,
            stored.ciphertext,
        )

    def to_dict(self) -> dict:
        return {
            "kind": "e2e",
            "id": self.id,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "recipient": self.recipient,
            "device": self.device,
            "msgid": self.msgid,
            "at": self.at,
            "ciphertext": self.ciphertext,
        }


class TagMessage:
    """
    Client-only tags with no text (IRCv3 TAGMSG: typing, reactions), to a
    room (C{room}) or to one user: passed on, never stored; C{msgid} names
    it for every recipient.  Only front ends that show tags take it.
    """

    __slots__ = ("room", "sender", "tags", "at", "msgid")

    def __init__(
        self, room: str | None, sender: str, tags: dict[str, str], at: int, msgid: str
    ) -> None:
        self.room = room
        self.sender = sender
        self.tags = tags
        self.at = at
        self.msgid = msgid

    def deliver(self, client) -> None:
        take = getattr(client, "tag_message", None)
        if take is not None:
            take(self)

    def to_dict(self) -> dict:
        return {
            "kind": "tags",
            "room": self.room,
            "sender": self.sender,
            "tags": self.tags,
            "at": self.at,
            "msgid": self.msgid,
        }


class StatusMessage:
    """
    A message to a room's members of a rank (IRC's STATUSMSG, C{@#room}):
    C{status} C{"@"} for its operators, C{"+"} for the voiced and operators.
    Handed to each of them, never stored; C{msgid} names it for every one.
    A front end with no C{status_message} shows it as a notice.
    """

    __slots__ = ("room", "status", "sender", "text", "at", "kind", "tags", "msgid")
    __slots__ += ("irc",)

    def __init__(
        self,
        room: str,
        status: str,
        sender: str,
        text: str,
        at: int,
        msgid: str,
        kind=MESSAGE,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.room = room
        self.status = status
        self.sender = sender
        self.text = text
        self.at = at
        self.msgid = msgid
        self.kind = kind
        self.tags = tags
        # IRC's lines by the caps that change them, made once for all.
        self.irc: dict | None = None

    def deliver(self, client) -> None:
        take = getattr(client, "status_message", None)
        if take is not None:
            take(self)
        else:
            client.notice(f"{self.status}#{self.room} <{self.sender}> {self.text}")

    def to_dict(self) -> dict:
        return {
            "kind": "status",
            "room": self.room,
            "status": self.status,
            "sender": self.sender,
            "text": self.text,
            "at": self.at,
            "msgid": self.msgid,
            "message_kind": self.kind,
            "tags": self.tags,
        }


class Notice:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def deliver(self, client) -> None:
        client.notice(self.text)

    def to_dict(self) -> dict:
        return {"kind": "notice", "text": self.text}


class Membership:
    """
    Someone joined or left a room, or was renamed (C{new_name}), or left the
    server (a guest, whose rooms go with it): a front end that shows these as
    events (IRC's JOIN, PART, NICK, QUIT) reads the fields; one that shows
    text (the line protocol) shows C{text}, the notice it has always shown.

    Moderation (L{chatroom.service.moderation}) tells its changes the same
    way, C{name} being who made them and C{detail} what they were: MODE
    (a tuple of L{ModeChange}), TOPIC (the topic), KICK (who, and why),
    INVITE, told to the one invited (their name), and DELETE, the room is
    gone and every member out of it (why).
    """

    __slots__ = ("kind", "room", "name", "new_name", "text", "reason", "detail")

    JOIN, LEAVE, RENAME, QUIT = "join", "leave", "rename", "quit"
    MODE, TOPIC, KICK, INVITE = "mode", "topic", "kick", "invite"
    DELETE = "delete"

    def __init__(
        self,
        kind: str,
        room: str,
        name: str,
        text: str,
        new_name: str | None = None,
        reason: str | None = None,
        detail=None,
    ) -> None:
        self.kind = kind
        self.room = room
        self.name = name
        self.text = text
        self.new_name = new_name
        # Why they left or quit, in their words (IRC's PART and QUIT reason).
        self.reason = reason
        self.detail = detail

    def deliver(self, client) -> None:
        client.membership(self)

    def to_dict(self) -> dict:
        return {
            "kind": "membership",
            "change": self.kind,
            "room": self.room,
            "name": self.name,
            "text": self.text,
            "new_name": self.new_name,
            "reason": self.reason,
            "detail": self.detail,
        }


class AwayChanged:
    """Someone in a room we are in went away (C{text}) or came back (None)."""

    __slots__ = ("name", "text")

    def __init__(self, name: str, text: str | None) -> None:
        self.name = name
        self.text = text

    def deliver(self, client) -> None:
        client.away_changed(self)

    def to_dict(self) -> dict:
        return {"kind": "away", "name": self.name, "text": self.text}


def event_from_dict(
    data: dict,
) -> (
    RoomMessage
    | PrivateMessage
    | E2EMessage
    | TagMessage
    | StatusMessage
    | Notice
    | Membership
    | AwayChanged
):
    """The event that C{to_dict} described."""
    kind = data["kind"]
    if kind == "room":
        return RoomMessage(
            data["room"],
            data["seq"],
            data["sender"],
            data["text"],
            data["at"],
            data.get("message_kind", MESSAGE),
            tags=data.get("tags"),
        )
    if kind == "private":
        return PrivateMessage(
            data["sender"],
            data["text"],
            data["at"],
            data.get("kept_id"),
            data.get("message_kind", MESSAGE),
            tags=data.get("tags"),
        )
    if kind == "e2e":
        return E2EMessage(
            data["id"],
            data["sender"],
            data["sender_device"],
            data["recipient"],
            data["device"],
            data["msgid"],
            data["at"],
            data["ciphertext"],
        )
    if kind == "tags":
        return TagMessage(
            data["room"], data["sender"], data["tags"], data["at"], data["msgid"]
        )
    if kind == "notice":
        return Notice(data["text"])
    if kind == "membership":
        detail = data.get("detail")
        if data["change"] == Membership.MODE:
            detail = tuple(ModeChange(*change) for change in detail)
        elif isinstance(detail, list):
            detail = tuple(detail)
        return Membership(
            data["change"],
            data["room"],
            data["name"],
            data["text"],
            data["new_name"],
            data.get("reason"),
            detail,
        )
    if kind == "away":
        return AwayChanged(data["name"], data["text"])
    if kind == "status":
        return StatusMessage(
            data["room"],
            data["status"],
            data["sender"],
            data["text"],
            data["at"],
            data["msgid"],
            data.get("message_kind", MESSAGE),
            tags=data.get("tags"),
        )
    raise ValueError(f"unknown event kind {kind!r}")
