"""
The chat service's collaborators when it is alone: one process holds every
session, so rooms count in memory and there is nobody else to tell.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet import defer
from zope.interface import implementer

from chatroom.service.interfaces import IMembershipBus, IPresence, ISequencer
from chatroom.service.rooms import Room


@implementer(ISequencer)
class LocalSequencer:
    """Each room counts its own messages in memory."""

    def resume(self, rooms: Iterable[Room]) -> defer.Deferred[None]:
        # Storage's last number is where each room's count already starts.
        return defer.succeed(None)

    def next_seq(self, room: Room) -> defer.Deferred[int]:
        return defer.succeed(room.next_seq())

    def seq_unused(self, room: Room, seq: int) -> None:
        # A hole in the numbers holds nobody up: nobody waits for it.
        pass


@implementer(IPresence)
class LocalPresence:
    """There are no other nodes: nobody is online elsewhere."""

    def came_online(self, user_id: int) -> None:
        pass

    def went_offline(self, user_id: int) -> None:
        pass

    def is_online_elsewhere(self, user_id: int) -> bool:
        return False


@implementer(IMembershipBus)
class LocalMembershipBus:
    """There are no other nodes to tell."""

    def look_up_room(self, key: str) -> defer.Deferred[Room | None]:
        # Every room is created here: the directory knows them all.
        return defer.succeed(None)

    def tell_joined(self, room: Room, user_id: int, user_name: str) -> None:
        pass

    def tell_left(self, room: Room, user_id: int) -> None:
        pass

    def tell_renamed(self, user_id: int, new_name: str) -> None:
        pass

    def tell_default_changed(self, user_id: int, room_id: int | None) -> None:
        pass

    def tell_password_changed(self, user_id: int) -> None:
        pass

    def tell_sessions_ended(self, user_id: int, reason: str) -> None:
        pass

    def tell_broadcast(self, text: str) -> None:
        pass

    def tell_room_state(self, room: Room) -> None:
        pass

    def tell_room_deleted(self, room: Room) -> None:
        pass

    def tell_away(self, user_id: int, text: str | None) -> None:
        pass
