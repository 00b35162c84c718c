"""
Guests: sessions without an account, for servers that let anyone in (IRC's
C{--irc-guests}).  A guest's name is reserved only while it is connected and
is never an account's; its memberships live in memory and go when it leaves;
nothing of it is stored but the messages it sends to rooms.
"""

from __future__ import annotations

from chatroom.errors import (
    NameTaken,
    PermissionDenied,
    TooManyRooms,
    TooManyRoomsCreated,
)
from chatroom.names import check_reason, name_key
from chatroom.service.avatar import Session
from chatroom.service.events import Membership
from chatroom.service.rooms import Room

GUEST_REFUSED = "guests have no account: register one to do that"


class GuestSession(Session):
    """A L{Session} whose account is a name held only while connected."""

    __slots__ = ("_rooms_created",)

    def __init__(self, chat, admission, mind, peer) -> None:
        super().__init__(chat, admission, mind, peer)
        self._rooms_created = 0

    def attach_guest(self, name: str) -> GuestSession:
        self.account = self.chat.connect_guest(name, self)
        return self

    def hand_over(self) -> list[Room]:
        """
        End quietly, for the account the guest is becoming: its rooms are
        left without a word, its name freed; the rooms, for the account to
        keep (L{Session.keep_rooms}).
        """
        chat, account = self.chat, self.account
        rooms = chat.rooms.rooms_of(account.id)
        for room in rooms:
            chat.left(account, room)
        super().logout()
        return rooms

    def logout(self, reason: str | None = None) -> None:
        if self.ended:
            return
        chat, account = self.chat, self.account
        reason = check_reason(reason) if reason is not None else None
        if account is not None:
            # The guest's rooms go with it: its members see it quit.
            rooms = chat.rooms.rooms_of(account.id)
            for room in rooms:
                chat.left(account, room)
            self.quit_from(rooms, reason)
        super().logout(reason)

    def quit_from(self, rooms: list[Room], reason: str | None) -> None:
        """Show the members of C{rooms}, which the guest has left, its QUIT."""
        name = self.account.name
        for room in rooms:
            self.chat.announce(
                room,
                Membership(
                    Membership.QUIT,
                    room.name,
                    name,
                    f"{name} left #{room.name}",
                    reason=reason,
                ),
            )

    async def logged_in(self) -> None:
        # Nothing was kept for a guest.
        return None

    # Storage keeps nothing of a guest's rooms.

    async def _store_room(self, name: str) -> int:
        limit = self.chat.max_rooms_created
        if limit and self._rooms_created >= limit:
            raise TooManyRoomsCreated()
        room_id = await self.chat.store.create_room(
            name, name_key(name), None, self.chat.now()
        )
        self._rooms_created += 1
        return room_id

    async def _store_member(self, room: Room) -> None:
        limit = self.chat.max_rooms
        if limit and len(self.chat.rooms.rooms_of(self.account.id)) >= limit:
            raise TooManyRooms()

    async def _unstore_member(self, room: Room) -> None:
        return None

    async def _set_default(self, room: Room | None) -> None:
        self.chat.default_changed(self.account, room.id if room is not None else None)

    # What needs an account

    async def rename(self, name: str) -> str:
        chat, account = self.chat, self.account
        await self.admission.check_guest_name(name, account)
        self._check_ban_keeps_name(name)
        old_name = chat.renamed(account, name)
        self._announce_rename(old_name, name)
        return name

    async def change_password(self, old: str, new: str) -> None:
        raise PermissionDenied(GUEST_REFUSED)

    async def activity(self, user, count):
        raise PermissionDenied(GUEST_REFUSED)


def check_not_online(chat, name: str, account=None) -> None:
    """Raise L{NameTaken} if someone else online goes by C{name}."""
    holder = chat.online_by_key.get(name_key(name))
    if holder is not None and holder is not account:
        raise NameTaken(f"{name} is in use")
