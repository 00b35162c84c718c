"""
What the service hands to minds.  Each event is built once per fan-out; the
C{wire} slot lets the first front end that encodes it share the bytes with
every other recipient.  C{to_dict} and L{event_from_dict} carry an event
between server processes (the Redis fan-out) as plain data.
"""

from __future__ import annotations


class RoomMessage:
    __slots__ = ("room", "seq", "sender", "text", "at", "wire")

    def __init__(self, room: str, seq: int, sender: str, text: str, at: int) -> None:
        self.room = room
        self.seq = seq
        self.sender = sender
        self.text = text
        self.at = at
        self.wire: bytes | None = None

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
        }


class PrivateMessage:
    """
    A private message; C{kept_id} is its stored id while it waits to be
    marked delivered (no session of the recipient was on the sender's node).
    """

    __slots__ = ("sender", "text", "at", "kept_id", "wire")

    def __init__(
        self, sender: str, text: str, at: int, kept_id: int | None = None
    ) -> None:
        self.sender = sender
        self.text = text
        self.at = at
        self.kept_id = kept_id
        self.wire: bytes | None = None

    def deliver(self, client) -> None:
        client.private_message(self)

    def to_dict(self) -> dict:
        return {
            "kind": "private",
            "sender": self.sender,
            "text": self.text,
            "at": self.at,
            "kept_id": self.kept_id,
        }


class Notice:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def deliver(self, client) -> None:
        client.notice(self.text)

    def to_dict(self) -> dict:
        return {"kind": "notice", "text": self.text}


def event_from_dict(data: dict) -> RoomMessage | PrivateMessage | Notice:
    """The event that C{to_dict} described."""
    kind = data["kind"]
    if kind == "room":
        return RoomMessage(
            data["room"], data["seq"], data["sender"], data["text"], data["at"]
        )
    if kind == "private":
        return PrivateMessage(
            data["sender"], data["text"], data["at"], data.get("kept_id")
        )
    if kind == "notice":
        return Notice(data["text"])
    raise ValueError(f"unknown event kind {kind!r}")
