"""
Membership across nodes: what this node stores is told on the bus, what the
others tell is applied here (through the chat service's C{apply_*} methods,
which change state without telling anyone), after a time off the bus
the rooms and memberships are read again from the database, and a room
asked for before its announcement arrived is read from there too.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.cluster.bus import RedisBus, report
from chatroom.cluster.messages import (
    AwaySet,
    Broadcast,
    BusMessage,
    DefaultChanged,
    Joined,
    Left,
    PasswordChanged,
    Renamed,
    RoomDeleted,
    RoomStateChanged,
    SessionsEnded,
)
from chatroom.service import moderation
from chatroom.service.chat import ChatService
from chatroom.service.interfaces import IMembershipBus
from chatroom.service.rooms import Room

MembershipMessage = (
    Joined
    | Left
    | Renamed
    | DefaultChanged
    | PasswordChanged
    | SessionsEnded
    | Broadcast
    | RoomStateChanged
    | RoomDeleted
    | AwaySet
)


@implementer(IMembershipBus)
class RedisMembershipBus:
    """L{IMembershipBus} over the Redis bus, and its receiving end."""

    log = Logger()

    def __init__(self, node: str, bus: RedisBus) -> None:
        self.node = node
        self.bus = bus
        # Set by the cluster node once the chat service is made.
        self.chat: ChatService | None = None
        # While a reload reads the database: the memberships changed meanwhile
        # (room id, user id) and users renamed ("name", user id), newer than it.
        self._touched: set[tuple] | None = None
        self._reloading = defer.DeferredLock()
        # The (version, node) of each room's moderation state held here.
        self._versions: dict[int, tuple[int, str]] = {}

    # Telling (IMembershipBus)

    def tell_joined(self, room: Room, user_id: int, user_name: str) -> None:
        self._touch((room.id, user_id))
        self._tell(Joined(self.node, room.id, room.name, user_id, user_name))

    def tell_left(self, room: Room, user_id: int) -> None:
        self._touch((room.id, user_id))
        self._tell(Left(self.node, room.id, user_id))

    def tell_renamed(self, user_id: int, new_name: str) -> None:
        self._touch(("name", user_id))
        self._tell(Renamed(self.node, user_id, new_name))

    def tell_default_changed(self, user_id: int, room_id: int | None) -> None:
        self._tell(DefaultChanged(self.node, user_id, room_id))

    def tell_password_changed(self, user_id: int) -> None:
        self._tell(PasswordChanged(self.node, user_id))

    def tell_sessions_ended(self, user_id: int, reason: str) -> None:
        self._tell(SessionsEnded(self.node, user_id, reason))

    def tell_broadcast(self, text: str) -> None:
        self._tell(Broadcast(self.node, text))

    def tell_room_state(self, room: Room) -> None:
        # One past the highest heard: a later change outranks every earlier one.
        version = self._versions.get(room.id, (0, ""))[0] + 1
        self._versions[room.id] = (version, self.node)
        self._tell(
            RoomStateChanged(self.node, room.id, version, moderation.snapshot(room))
        )

    def tell_room_deleted(self, room: Room) -> None:
        self._tell(RoomDeleted(self.node, room.id))

    def tell_away(self, user_id: int, text: str | None) -> None:
        self._tell(AwaySet(self.node, user_id, text))

    def _tell(self, message: BusMessage) -> None:
        d = self.bus.publish(message)
        d.addErrback(report, self.log, f"telling the cluster {message.kind}")

    def _touch(self, key: tuple) -> None:
        if self._touched is not None:
            self._touched.add(key)

    # What the other nodes tell

    def received(self, message: MembershipMessage) -> None:
        """Apply a membership change another node has stored."""
        chat = self.chat
        if isinstance(message, DefaultChanged):
            chat.apply_default_changed(message.user_id, message.room_id)
            return
        if isinstance(message, PasswordChanged):
            chat.apply_password_changed(message.user_id)
            return
        if isinstance(message, SessionsEnded):
            chat.apply_sessions_ended(message.user_id, message.reason)
            return
        if isinstance(message, Broadcast):
            chat.apply_broadcast(message.text)
            return
        if isinstance(message, AwaySet):
            chat.apply_away(message.user_id, message.text)
            return
        if isinstance(message, RoomStateChanged):
            self._room_state(message)
            return
        if isinstance(message, RoomDeleted):
            room = chat.rooms.by_id.get(message.room_id)
            if room is not None:
                chat.apply_room_deleted(room)
            return
        if isinstance(message, Renamed):
            self._touch(("name", message.user_id))
            chat.apply_renamed(message.user_id, message.user_name)
            return
        # Touched even for a room not known here: a look-up may be reading it.
        self._touch((message.room_id, message.user_id))
        room = chat.rooms.by_id.get(message.room_id)
        if isinstance(message, Joined):
            if room is None:
                room = chat.rooms.add_room(Room(message.room_id, message.room_name))
            chat.apply_joined(room, message.user_id, message.user_name)
        elif room is not None:
            chat.apply_left(room, message.user_id)

    def _room_state(self, message: RoomStateChanged) -> None:
        heard = (message.version, message.node)
        if heard <= self._versions.get(message.room_id, (0, "")):
            return  # older than what is held: it came late
        room = self.chat.rooms.by_id.get(message.room_id)
        if room is None:
            return  # a look-up of it reads the stored state, the newest
        self._versions[message.room_id] = heard
        self.chat.apply_room_state(room, message.state)

    # A room not heard of yet

    async def look_up_room(self, key: str) -> Room | None:
        """
        Read a room this node has not heard of from the database, with its
        members, and add it to the directory: its creator's node answered
        C{+OK} once it was stored, and its announcement may still be on its
        way here (or lost, with the bus).  Changes heard meanwhile are newer
        than what was read, and stay.
        """
        async with self._reloading:
            self._touched = touched = set()
            try:
                found = await self.chat.store.find_room(key)
            finally:
                self._touched = None
        if found is None:
            return None
        record, members = found
        chat = self.chat
        room = chat.rooms.by_id.get(record.id)
        if room is None:
            room = chat.rooms.add_room(Room(record.id, record.name, record.last_seq))
            self.log.info("read #{room} from the database", room=room.name)
        else:
            # Added by a join heard meanwhile, at sequence 0: the stored one counts.
            room.last_seq = max(room.last_seq, record.last_seq)
        for user_id, user_name in members:
            if (room.id, user_id) not in touched and user_id not in room.members:
                chat.apply_joined(room, user_id, user_name)
        if room.id not in self._versions:
            # No change heard of yet: what is stored is the newest.
            records = await chat.store.load_moderation()
            if room.id not in self._versions:
                moderation.load(_Only(room), records)
        return room

    # After a time off the bus

    async def reload(self) -> None:
        """
        Read rooms and memberships again, after a time off the bus.  Changes
        heard or made while it reads are newer than what it read, and stay.
        """
        store = self.chat.store
        async with self._reloading:
            self._touched = touched = set()
            versions = dict(self._versions)
            try:
                rooms = await store.load_rooms()
                memberships = await store.load_memberships()
                records = await store.load_moderation()
            finally:
                self._touched = None
            self._reconcile(rooms, memberships, touched)
            # A snapshot heard while reading is newer than what was read.
            self._reload_moderation(
                [
                    room
                    for room in self.chat.rooms.by_id.values()
                    if self._versions.get(room.id) == versions.get(room.id)
                ],
                records,
            )

    def _reload_moderation(self, rooms: list[Room], records) -> None:
        """Put the stored state in place of the rooms'; a guest's keeps."""
        held = {room.id: room.mod for room in rooms}
        for room in rooms:
            room.mod = None
        only = _Only(*rooms)
        moderation.load(only, records)
        for room in rooms:
            old = held[room.id]
            if old is None:
                continue
            guests = {uid: role for uid, role in old.roles.items() if uid < 0}
            if guests or old.invited:
                modes = moderation.state_of(room)
                modes.roles.update(guests)
                modes.invited = old.invited
            if (old.owner_id or 0) < 0:
                moderation.state_of(room).owner_id = old.owner_id

    def _reconcile(self, rooms, memberships, touched: set[tuple]) -> None:
        chat = self.chat
        directory = chat.rooms
        for record in rooms:
            room = directory.by_id.get(record.id)
            if room is None:
                directory.add_room(Room(record.id, record.name, record.last_seq))
            else:
                room.last_seq = max(room.last_seq, record.last_seq)
        stored = {
            (room_id, user_id): name
            for room_id, user_id, name in memberships
            # A room newer than the rooms read was announced since: skip it.
            if room_id in directory.by_id
        }
        held = {
            (room.id, user_id): name
            for room in directory.by_id.values()
            for user_id, name in room.members.items()
        }
        for room_id, user_id in stored.keys() - held.keys() - touched:
            chat.apply_joined(
                directory.by_id[room_id], user_id, stored[room_id, user_id]
            )
        for room_id, user_id in held.keys() - stored.keys() - touched:
            chat.apply_left(directory.by_id[room_id], user_id)
        renamed = {
            user_id: name
            for (room_id, user_id), name in stored.items()
            if held.get((room_id, user_id), name) != name
            and ("name", user_id) not in touched
        }
        for user_id, name in renamed.items():
            chat.apply_renamed(user_id, name)
        self.log.info(
            "reloaded rooms and memberships: {rooms} rooms, {changes} changes",
            rooms=len(directory.by_id),
            changes=len(stored.keys() ^ held.keys()) + len(renamed),
        )


class _Only:
    """A directory of these rooms only, for L{moderation.load}."""

    def __init__(self, *rooms: Room) -> None:
        self.by_id = {room.id: room for room in rooms}
