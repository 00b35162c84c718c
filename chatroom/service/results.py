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
    """
    A member of a room: C{role} is C{"owner"}, C{"operator"}, C{"voice"} or
    C{""}; C{away} their away text (None: here, or not known on this node).
    """

    name: str
    online: bool
    role: str = ""
    away: str | None = None


class RoomListing(NamedTuple):
    """A room as anyone may see it listed."""

    name: str
    members: int
    topic: str
    joined: bool


class Whois(NamedTuple):
    """
    What anyone may know of a user: online (C{idle} seconds since they last
    sent, None if not known on this node) or when last seen (ms, None if
    never since it was kept); C{rooms} those of theirs we may see, and of
    them C{shared} those we are in too.
    """

    name: str
    online: bool
    last_seen: int | None
    idle: int | None
    away: str | None
    rooms: list[str]
    shared: list[str]


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
