"""
What the service hands to minds.  Each event is built once per fan-out; the
C{wire} slot lets the first front end that encodes it share the bytes with
every other recipient.
"""


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


class PrivateMessage:
    __slots__ = ("sender", "text", "at", "wire")

    def __init__(self, sender: str, text: str, at: int) -> None:
        self.sender = sender
        self.text = text
        self.at = at
        self.wire: bytes | None = None

    def deliver(self, client) -> None:
        client.private_message(self)


class Notice:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def deliver(self, client) -> None:
        client.notice(self.text)
