"""
One node of several: the chat service with its state shared through Redis.

What each node keeps in memory (rooms, members, who is online) it keeps as
on one node, and tells the others every change on the bus after storage has
committed it; what it hears it applies without telling again.  Room sequence
numbers come from one Redis counter per room, so every node orders a room
the same way.  A user logged in on two nodes gets everything on both, as
with two sessions on one node.

A private message is stored as delivered only when its recipient has a
session on the sender's node; otherwise it is kept, published all the same,
and marked delivered by whichever node hands it to a session.  A recipient
whose node died, or who is logging in elsewhere, loses nothing: what no node
handed over waits for their next login.

A node that was cut off from the bus missed what the others announced: when
it is back it reads rooms and memberships again, and hands its users the
private messages kept for them meanwhile.
"""

from __future__ import annotations

import os
import socket

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger

from chatroom.auth import PasswordHasher
from chatroom.cluster.bus import RedisAddress, RedisBus, report
from chatroom.cluster.fanout import GAP_TIMEOUT, RedisFanout
from chatroom.cluster.presence import PRESENCE_TIMEOUT, Presence
from chatroom.errors import NameTaken
from chatroom.service.chat import ADMIN, Account, ChatService
from chatroom.service.events import PrivateMessage
from chatroom.service.rooms import Room
from chatroom.storage.store import ChatStore, UserRecord

# INCR, but never at or below what this node has seen: a Redis that lost its
# data (it keeps nothing on disk here) must not hand out a used number again.
_NEXT_SEQ = """
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], seq)
end
return seq
"""


def default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterChatService(ChatService):
    """L{ChatService} whose rooms, members and presence span the cluster."""

    log = Logger()

    def __init__(
        self,
        node: ClusterNode,
        store: ChatStore,
        hasher: PasswordHasher,
        clock,
        **options,
    ) -> None:
        super().__init__(store, hasher, clock, fanout=node.fanout, **options)
        self.node = node
        node.chat = self
        node.fanout.on_kept_private = self.kept_private_arrived
        # While a reload reads the database: the memberships changed meanwhile
        # (room id, user id) and users renamed ("name", user id), newer than it.
        self._touched: set[tuple] | None = None
        self._reloading = defer.DeferredLock()
        self._loaded = False

    async def load(self) -> None:
        # Listen first: what happens while we read the database is not lost.
        await self.node.bus.ready()
        await super().load()
        self._loaded = True
        # Numbers handed out but never stored (a failed write, a dead node)
        # leave the counter ahead of the database: start after both.
        rooms = list(self.rooms.by_id.values())
        keys = [self.node.address.key("seq", room.id) for room in rooms]
        counters = await self.node.bus.redis.mget(keys) if keys else []
        for room, counter in zip(rooms, counters, strict=True):
            room.last_seq = max(room.last_seq, int(counter or 0))
            self.node.fanout.expect(room.id, room.last_seq)
        await self.node.presence.start()

    async def reload(self) -> None:
        """
        Read rooms and memberships again, after a time off the bus, and hand
        local users the private messages kept for them meanwhile.  Changes
        heard or made while it reads are newer than what it read, and stay.
        """
        if not self._loaded:
            # Still starting: the first load reads after subscribing anyway.
            return
        async with self._reloading:
            self._touched = touched = set()
            try:
                rooms = await self.store.load_rooms()
                memberships = await self.store.load_memberships()
            finally:
                self._touched = None
            self._reconcile(rooms, memberships, touched)
        for account in list(self.online.values()):
            for session in list(account.sessions):
                if not session.ended:
                    await session.deliver_kept_private()

    def _reconcile(self, rooms, memberships, touched: set[tuple]) -> None:
        for record in rooms:
            room = self.rooms.by_id.get(record.id)
            if room is None:
                self.rooms.add_room(Room(record.id, record.name, record.last_seq))
            else:
                room.last_seq = max(room.last_seq, record.last_seq)
        stored = {
            (room_id, user_id): name
            for room_id, user_id, name in memberships
            # A room newer than the rooms read was announced since: skip it.
            if room_id in self.rooms.by_id
        }
        held = {
            (room.id, user_id): name
            for room in self.rooms.by_id.values()
            for user_id, name in room.members.items()
        }
        for room_id, user_id in stored.keys() - held.keys() - touched:
            self._join_here(
                self.rooms.by_id[room_id], user_id, stored[room_id, user_id]
            )
        for room_id, user_id in held.keys() - stored.keys() - touched:
            self._leave_here(self.rooms.by_id[room_id], user_id)
        renamed = {
            user_id: name
            for (room_id, user_id), name in stored.items()
            if held.get((room_id, user_id), name) != name
            and ("name", user_id) not in touched
        }
        for user_id, name in renamed.items():
            self._rename_here(user_id, name)
        self.log.info(
            "reloaded rooms and memberships: {rooms} rooms, {changes} changes",
            rooms=len(self.rooms.by_id),
            changes=len(stored.keys() ^ held.keys()) + len(renamed),
        )

    async def register(self, name: str, password: str) -> UserRecord:
        record = await super().register(name, password)
        self._touch((self.rooms.lobby.id, record.id))
        self._tell_joined(self.rooms.lobby, record.id, record.name)
        return record

    async def ensure_admin(self, password: str | None) -> None:
        try:
            await super().ensure_admin(password)
        except NameTaken:
            # Another node, starting with us, created it first.
            await super().ensure_admin(password)
        admin = await self.store.find_user(ADMIN)
        self._touch((self.rooms.lobby.id, admin.id))
        if admin.id not in self.rooms.lobby.members:
            self.rooms.add_member(self.rooms.lobby, admin.id, admin.name)
        self._tell_joined(self.rooms.lobby, admin.id, admin.name)

    # Presence

    async def connect(self, user_id: int, session) -> Account:
        account = await super().connect(user_id, session)
        if len(account.sessions) == 1:
            self.node.presence.came_online(user_id)
        return account

    def disconnect(self, session) -> None:
        super().disconnect(session)
        if session.account.id not in self.online:
            self.node.presence.went_offline(session.account.id)

    def is_online(self, user_id: int) -> bool:
        return user_id in self.online or self.node.presence.is_online_elsewhere(user_id)

    # Room order

    def next_seq(self, room: Room) -> defer.Deferred[int]:
        floor = max(room.last_seq, self.node.fanout.last_delivered(room.id))
        d = self.node.bus.redis.eval(
            _NEXT_SEQ, [self.node.address.key("seq", room.id)], [str(floor)]
        )

        def assigned(seq) -> int:
            room.last_seq = max(room.last_seq, int(seq))
            return int(seq)

        return d.addCallback(assigned)

    def seq_unused(self, room: Room, seq: int) -> None:
        # Without this, every node would hold the room's next messages for
        # the gap timeout, waiting for a number that will never come.
        d = self.node.fanout.skip(room.id, seq)
        d.addErrback(report, self.log, f"telling the cluster #{room.name} skips {seq}")

    # Private messages

    async def hand_private(
        self, recipient_id: int, message: PrivateMessage, exclude=None
    ) -> None:
        # To every node, even when presence says the recipient is offline: a
        # node where they are logging in may not have told us yet.
        await self.fanout.publish(("user", recipient_id), message, exclude)

    def kept_private_arrived(
        self, recipient_id: int, message: PrivateMessage, exclude
    ) -> None:
        """Show a kept private message to local sessions, and mark it delivered."""
        account = self.online.get(recipient_id)
        if account is None:
            return
        sessions = [s for s in account.sessions if s.mind is not exclude]
        for session in sessions:
            session.hand_private(message)
        if sessions:
            d = self.store.mark_delivered([message.kept_id], self.now())
            d.addErrback(
                lambda f: self.log.failure(
                    "marking private message {id} delivered", f, id=message.kept_id
                )
            )

    # Membership: apply here, then tell the other nodes

    def joined(self, account: Account, room: Room) -> None:
        super().joined(account, room)
        self._touch((room.id, account.id))
        self._tell_joined(room, account.id, account.name)

    def left(self, account: Account, room: Room) -> None:
        super().left(account, room)
        self._touch((room.id, account.id))
        self._tell({"t": "leave", "r": room.id, "u": account.id})

    def renamed(self, account: Account, new_name: str) -> str:
        old_name = super().renamed(account, new_name)
        self._touch(("name", account.id))
        self._tell({"t": "rename", "u": account.id, "un": new_name})
        return old_name

    def default_changed(self, account: Account, room_id: int | None) -> None:
        super().default_changed(account, room_id)
        self._tell({"t": "default", "u": account.id, "r": room_id})

    def _touch(self, key: tuple) -> None:
        if self._touched is not None:
            self._touched.add(key)

    def _tell_joined(self, room: Room, user_id: int, user_name: str) -> None:
        self._tell(
            {"t": "join", "r": room.id, "rn": room.name, "u": user_id, "un": user_name}
        )

    def _tell(self, message: dict) -> None:
        message["n"] = self.node.name
        d = self.node.bus.publish(message)
        d.addErrback(report, self.log, f"telling the cluster {message['t']}")

    # What the other nodes tell

    def apply(self, message: dict) -> None:
        """Apply a membership change another node has stored."""
        kind, user_id = message["t"], message["u"]
        if kind == "join":
            room = self.rooms.by_id.get(message["r"])
            if room is None:
                room = self.rooms.add_room(Room(message["r"], message["rn"]))
            self._touch((room.id, user_id))
            self._join_here(room, user_id, message["un"])
        elif kind == "leave":
            room = self.rooms.by_id.get(message["r"])
            if room is None:
                return
            self._touch((room.id, user_id))
            self._leave_here(room, user_id)
        elif kind == "rename":
            self._touch(("name", user_id))
            self._rename_here(user_id, message["un"])
        elif kind == "default":
            account = self.online.get(user_id)
            if account is not None:
                ChatService.default_changed(self, account, message["r"])
        else:
            self.log.warn("unknown message on the bus: {message}", message=message)

    # Changes made elsewhere, applied here without telling anyone

    def _join_here(self, room: Room, user_id: int, user_name: str) -> None:
        account = self.online.get(user_id)
        if account is None:
            self.rooms.add_member(room, user_id, user_name)
        elif user_id not in room.members:
            ChatService.joined(self, account, room)

    def _leave_here(self, room: Room, user_id: int) -> None:
        account = self.online.get(user_id)
        if account is None:
            self.rooms.remove_member(room, user_id)
        else:
            ChatService.left(self, account, room)

    def _rename_here(self, user_id: int, new_name: str) -> None:
        account = self.online.get(user_id)
        if account is None:
            self.rooms.rename_member(user_id, new_name)
        else:
            ChatService.renamed(self, account, new_name)


class ClusterNode(service.Service):
    """
    This process's membership of the cluster: the bus, the fan-out over it and
    presence.  A child of the server, so it starts before the chat loads and
    stops after the listeners.
    """

    log = Logger()

    def __init__(
        self,
        redis_url: str,
        reactor: IReactorCore,
        name: str | None = None,
        presence_timeout: float = PRESENCE_TIMEOUT,
        gap_timeout: float = GAP_TIMEOUT,
    ) -> None:
        self.address = RedisAddress.parse(redis_url)
        self.name = name or default_node_name()
        self.reactor = reactor
        self.chat: ClusterChatService | None = None
        self.bus = RedisBus(self.address, reactor, self._received, self._connected)
        self.fanout = RedisFanout(self.name, reactor, gap_timeout)
        self.fanout.bus = self.bus
        self.presence = Presence(
            self.name, self.bus, reactor, self._local_users, presence_timeout
        )

    def chat_service(
        self, store: ChatStore, hasher: PasswordHasher, **options
    ) -> ClusterChatService:
        return ClusterChatService(self, store, hasher, self.reactor, **options)

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "node {node} joining the cluster on redis://{host}:{port}/{db}",
            node=self.name,
            host=self.address.host,
            port=self.address.port,
            db=self.address.db,
        )
        self.bus.start()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        try:
            await self.presence.stop()
        except Exception:
            self.log.failure("leaving the cluster")
        self.fanout.stop()
        await self.bus.stop()

    def _local_users(self):
        return self.chat.online.keys() if self.chat is not None else ()

    def _received(self, message: dict) -> None:
        kind = message["t"]
        if kind == "event":
            self.fanout.received(message)
        elif kind == "skip":
            self.fanout.skipped(message["r"], message["s"])
        elif kind in ("online", "offline", "hello", "bye"):
            self.presence.received(message)
        elif self.chat is not None and message["n"] != self.name:
            self.chat.apply(message)

    def _connected(self, again: bool) -> None:
        if again:
            # Whatever was published while we were away is lost to us.
            self.log.warn(
                "back on the bus: room order restarts, presence resyncs,"
                " rooms and memberships reload"
            )
            self.fanout.restart_order()
            self.presence.beat()
            if self.chat is not None:
                defer.ensureDeferred(self.chat.reload()).addErrback(
                    lambda f: self.log.failure("reloading after the bus came back", f)
                )
