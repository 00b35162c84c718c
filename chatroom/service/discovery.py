"""
Discovery and presence: what anyone may learn of rooms and users (the line
protocol's /rooms all, /who and /whois; IRC's LIST, WHO and WHOIS read the
same state).  One rule holds throughout: a secret room is shown only to its
members.
"""

from __future__ import annotations

from chatroom.errors import NoSuchUser
from chatroom.names import check_name, name_key
from chatroom.service import moderation
from chatroom.service.results import Member, RoomListing, Whois

# Bytes of an away text, at most (IRC's AWAYLEN cuts to this; the line
# protocol refuses more).
AWAY_MAX_BYTES = 200


def role_name(room, user_id: int) -> str:
    """A member's highest role in C{room}, as people read it."""
    if moderation.modes_of(room).owner_id == user_id:
        return "owner"
    role = moderation.role_of(room, user_id)
    if role & moderation.OP:
        return "operator"
    if role & moderation.VOICE:
        return "voice"
    return ""


class Discovery:
    """The discovery actions of a L{chatroom.service.avatar.Session}."""

    __slots__ = ()

    def room_list(self) -> list[RoomListing]:
        me = self.account.id
        rooms = sorted(self.chat.rooms.by_id.values(), key=lambda room: room.key)
        return [
            RoomListing(
                room.name,
                len(room.members),
                moderation.modes_of(room).topic,
                me in room.members,
            )
            for room in rooms
            if moderation.is_visible(room, me)
        ]

    def who(self, room: str) -> list[Member]:
        # Only a member sees a room's members, as the contract has always said.
        target = self._member_room(room)
        chat = self.chat
        members = sorted(target.members.items(), key=lambda member: member[1].lower())
        result = []
        for user_id, name in members:
            account = chat.online.get(user_id)
            result.append(
                Member(
                    name,
                    chat.is_online(user_id),
                    role_name(target, user_id),
                    _away(chat, user_id, account),
                )
            )
        return result

    async def whois(self, name: str) -> Whois:
        chat, me = self.chat, self.account.id
        key = name_key(check_name(name))
        account = chat.online_by_key.get(key)
        if account is not None:
            user_id, shown = account.id, account.name
        else:
            record = await chat.store.find_user(key)
            if record is None:
                raise NoSuchUser(f"there is no user called {name}")
            user_id, shown = record.id, record.name
        rooms = sorted(
            (
                room
                for room in chat.rooms.rooms_of(user_id)
                if moderation.is_visible(room, me)
            ),
            key=lambda room: room.key,
        )
        online = chat.is_online(user_id)
        last_seen = None if online else await chat.store.last_seen(user_id)
        idle = None
        if account is not None:
            idle = max(0, int(chat.clock.seconds() - account.last_active))
        return Whois(
            shown,
            online,
            last_seen,
            idle,
            _away(chat, user_id, account),
            [room.name for room in rooms],
            [room.name for room in rooms if me in room.members],
        )


def _away(chat, user_id: int, account) -> str | None:
    """The away text of a user online here, or on another node of a cluster."""
    if account is not None:
        return account.away
    if chat.is_online(user_id):
        return chat.away_elsewhere.get(user_id)
    return None
