"""
History by span and read markers: the chat actions behind IRCv3
chathistory and read-marker, mixed into the session (L{avatar.Session}).

Rooms' history is the one the line protocol's C{/history} reads; private
history is what storage keeps of private messages, between two accounts
(a guest's private messages are never stored, so a guest has none).  A
read marker is the account's: stored, so its clients agree on what was
read, and told to its other sessions here when it moves; a guest's are
kept on its account in memory, and go with it.
"""

from __future__ import annotations

from typing import NamedTuple

from chatroom.errors import BadArguments, NoSuchRoom, NoSuchUser
from chatroom.names import check_name, check_room_name, name_key
from chatroom.service import moderation
from chatroom.service.events import MESSAGE
from chatroom.service.interfaces import IReadMarkers
from chatroom.service.results import History
from chatroom.storage.store import HistorySpan

# The most messages, and targets, one history request returns.
SPAN_MAX = 1000


class ConversationLine(NamedTuple):
    """A private message between the session's account and another."""

    id: int
    sender: str
    recipient: str
    text: str
    at: int
    kind: str = MESSAGE


class Conversation(NamedTuple):
    """Private messages with one other account, oldest first."""

    other: str
    messages: list[ConversationLine]


class HistoryTarget(NamedTuple):
    """A room or account with history, and when its last message was."""

    name: str
    is_room: bool
    latest_at: int


def _limit(limit: int) -> int:
    if limit < 1:
        raise BadArguments(f"the limit is how many to show, from 1 to {SPAN_MAX}")
    return min(limit, SPAN_MAX)


def read_marker_key(target: str) -> str:
    """A read marker's target, checked: C{#room} or a user's name, any case."""
    if target.startswith("#"):
        return "#" + name_key(check_room_name(target))
    return name_key(check_name(target))


class HistoryActions:
    """What a session may read of history, and its read markers."""

    __slots__ = ()

    async def room_span(
        self, room: str, span: HistorySpan, limit: int, newest: bool
    ) -> History:
        """
        At most C{limit} messages of a room the account is in, within
        C{span}, oldest first: the newest such if C{newest}, else the oldest.
        """
        target = self._member_room(room)
        messages = await self.chat.store.room_messages_in(
            target.id, span, _limit(limit), newest
        )
        return History(target.name, messages)

    async def conversation_span(
        self, user: str, span: HistorySpan, limit: int, newest: bool
    ) -> Conversation:
        """As L{room_span}, for the private messages with C{user}."""
        check_name(user)
        limit = _limit(limit)
        chat, account = self.chat, self.account
        other = chat.online_by_key.get(name_key(user))
        if other is not None:
            other_id, other_name = other.id, other.name
        else:
            record = await chat.store.find_user(name_key(user))
            if record is None:
                raise NoSuchUser(f"there is no user called {user}")
            other_id, other_name = record.id, record.name
        if account.is_guest or other_id < 0:
            return Conversation(other_name, [])
        stored = await chat.store.conversation_in(
            account.id, other_id, span, limit, newest
        )
        return Conversation(
            other_name,
            [
                ConversationLine(
                    message.id,
                    message.sender,
                    other_name if message.sender_id == account.id else account.name,
                    message.text,
                    message.created_at,
                    message.kind,
                )
                for message in stored
            ],
        )

    async def history_targets(
        self, after_at: int, before_at: int, limit: int
    ) -> list[HistoryTarget]:
        """
        The account's rooms and correspondents whose last message is
        strictly between the times, by that message's time, earliest first.
        """
        limit = _limit(limit)
        chat, account = self.chat, self.account
        rooms = {room.id: room for room in chat.rooms.rooms_of(account.id)}
        found = [
            HistoryTarget(rooms[room_id].name, True, at)
            for room_id, at in await chat.store.latest_room_times(
                list(rooms), after_at, before_at, limit
            )
        ]
        if not account.is_guest:
            found += [
                HistoryTarget(name, False, at)
                for name, at in await chat.store.latest_conversation_times(
                    account.id, after_at, before_at, limit
                )
            ]
        found.sort(key=lambda target: (target.latest_at, target.name))
        return found[:limit]

    async def read_marker(self, target: str) -> int | None:
        """When the account read C{target} up to (ms), or None if never marked."""
        key = read_marker_key(target)
        account = self.account
        if account.is_guest:
            return (account.read_markers or {}).get(key)
        return await self.chat.store.read_marker(account.id, key)

    async def mark_read(self, target: str, at: int) -> int:
        """
        Move the account's marker of C{target} to C{at}, never back; the
        marker as it now stands, also told to the account's other sessions.
        """
        key = read_marker_key(target)
        if at < 0:
            raise BadArguments("a read marker is a time after 1970")
        # Only of what exists (and may be seen): markers stay bounded by the
        # rooms and users there are.
        await self._check_marker_target(target)
        account = self.account
        if account.is_guest:
            markers = account.read_markers = account.read_markers or {}
            stored = markers[key] = max(at, markers.get(key, at))
        else:
            stored = await self.chat.store.advance_read_marker(account.id, key, at)
        for session in account.sessions:
            if session is not self and IReadMarkers.providedBy(session.mind):
                session.mind.read_marker_moved(target, stored)
        return stored

    async def _check_marker_target(self, target: str) -> None:
        chat = self.chat
        if target.startswith("#"):
            room = chat.rooms.by_key.get(read_marker_key(target)[1:])
            if room is None or not moderation.is_visible(room, self.account.id):
                raise NoSuchRoom(f"there is no room called {target}")
            return
        key = name_key(target)
        if key in chat.online_by_key:
            return
        if await chat.store.find_user(key) is None:
            raise NoSuchUser(f"there is no user called {target}")
