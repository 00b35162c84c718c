"""Rooms and who is in them: the in-memory directory the service keeps."""

from __future__ import annotations

import sys

from chatroom.errors import NoSuchRoom
from chatroom.names import check_room_name, name_key
from chatroom.storage.store import LOBBY


class Room:
    """
    A room: its members by user id, the last sequence number it used, when
    it was made (ms; 0 if unknown) and its moderation state (L{RoomModes},
    None while it has none: the defaults).
    """

    __slots__ = ("id", "name", "key", "members", "last_seq", "created_at", "mod")

    def __init__(
        self, room_id: int, name: str, last_seq: int = 0, created_at: int = 0
    ) -> None:
        self.id = room_id
        self.name = name
        self.key = name_key(name)
        self.members: dict[int, str] = {}
        self.last_seq = last_seq
        self.created_at = created_at
        self.mod = None

    @property
    def channel(self) -> tuple[str, int]:
        return ("room", self.id)

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq


class RoomDirectory:
    """Every room by id and by name, and every user's rooms."""

    def __init__(self) -> None:
        self.by_id: dict[int, Room] = {}
        self.by_key: dict[str, Room] = {}
        # Room ids by user: a tuple, rebuilt on the rare join or leave, costs
        # a fraction of a set for the two or three rooms most users are in.
        self.of_user: dict[int, tuple[int, ...]] = {}

    def add_room(self, room: Room) -> Room:
        self.by_id[room.id] = room
        self.by_key[room.key] = room
        return room

    def remove_room(self, room: Room) -> None:
        """A deleted room, its members already removed."""
        self.by_id.pop(room.id, None)
        self.by_key.pop(room.key, None)

    @property
    def lobby(self) -> Room:
        return self.by_key[LOBBY]

    def find(self, name: str) -> Room:
        """The room called C{name} (a leading C{#} allowed), or L{NoSuchRoom}."""
        room = self.by_key.get(name_key(check_room_name(name)))
        if room is None:
            raise NoSuchRoom(f"there is no room called {name}")
        return room

    def add_member(self, room: Room, user_id: int, user_name: str) -> None:
        # Interned: the account online and every room share one name string.
        room.members[user_id] = sys.intern(user_name)
        rooms = self.of_user.get(user_id, ())
        if room.id not in rooms:
            self.of_user[user_id] = (*rooms, room.id)

    def remove_member(self, room: Room, user_id: int) -> None:
        room.members.pop(user_id, None)
        if room.mod is not None:
            # Roles go with the membership, as the stored row does.
            room.mod.roles.pop(user_id, None)
        rooms = tuple(r for r in self.of_user.get(user_id, ()) if r != room.id)
        if rooms:
            self.of_user[user_id] = rooms
        else:
            self.of_user.pop(user_id, None)

    def rooms_of(self, user_id: int) -> list[Room]:
        return [self.by_id[room_id] for room_id in self.of_user.get(user_id, ())]

    def rename_member(self, user_id: int, new_name: str) -> None:
        new_name = sys.intern(new_name)
        for room in self.rooms_of(user_id):
            room.members[user_id] = new_name
