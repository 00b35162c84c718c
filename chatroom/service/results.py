"""
What the chat actions return: plain values that each front end renders in
its own syntax (the line protocol as data lines, IRC as numerics).
"""

from __future__ import annotations

from typing import NamedTuple

from chatroom.storage.store import StoredMessage


class JoinedRoom(NamedTuple):
    """A room the session's account is in."""

    name: str
    is_default: bool


class Member(NamedTuple):
    """A member of a room."""

    name: str
    online: bool


class RoomSummary(NamedTuple):
    """A room as the admin's list shows it."""

    name: str
    members: int


class UserSummary(NamedTuple):
    """An account as the admin's list shows it."""

    name: str
    online: bool
    is_admin: bool


class History(NamedTuple):
    """The last messages of a room, oldest first."""

    room: str
    messages: list[StoredMessage]
