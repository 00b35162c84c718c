"""
One node of several: the chat service with its state shared through Redis.

What each node keeps in memory (rooms, members, who is online) it keeps as
on one node, and tells the others every change on the bus after storage has
committed it; what it hears it applies without telling again.  Room sequence
numbers come from one Redis counter per room, so every node orders a room
the same way.  A user logged in on two nodes gets everything on both, as
with two sessions on one node.
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

    async def load(self) -> None:
        # Listen first: what happens while we read the database is not lost.
        await self.node.bus.ready()
        await super().load()
        # Numbers handed out but never stored (a failed write, a dead node)
        # leave the counter ahead of the database: start after both.
        rooms = list(self.rooms.by_id.values())
        keys = [self.node.address.key("seq", room.id) for room in rooms]
        counters = await self.node.bus.redis.mget(keys) if keys else []
        for room, counter in zip(rooms, counters, strict=True):
            room.last_seq = max(room.last_seq, int(counter or 0))
            self.node.fanout.expect(room.id, room.last_seq)
        await self.node.presence.start()

    async def register(self, name: str, password: str) -> UserRecord:
        record = await super().register(name, password)
        self._tell_joined(self.rooms.lobby, record.id, record.name)
        return record

    async def ensure_admin(self, password: str | None) -> None:
        try:
            await super().ensure_admin(password)
        except NameTaken:
            # Another node, starting with us, created it first.
            await super().ensure_admin(password)
        admin = await self.store.find_user(ADMIN)
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

    # Membership: apply here, then tell the other nodes

    def joined(self, account: Account, room: Room) -> None:
        super().joined(account, room)
        self._tell_joined(room, account.id, account.name)

    def left(self, account: Account, room: Room) -> None:
        super().left(account, room)
        self._tell({"t": "leave", "r": room.id, "u": account.id})

    def renamed(self, account: Account, new_name: str) -> str:
        old_name = super().renamed(account, new_name)
        self._tell({"t": "rename", "u": account.id, "un": new_name})
        return old_name

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
        account = self.online.get(user_id)
        if kind == "join":
            room = self.rooms.by_id.get(message["r"])
            if room is None:
                room = self.rooms.add_room(Room(message["r"], message["rn"]))
            if account is not None:
                if user_id not in room.members:
                    ChatService.joined(self, account, room)
            else:
                self.rooms.add_member(room, user_id, message["un"])
        elif kind == "leave":
            room = self.rooms.by_id.get(message["r"])
            if room is None:
                return
            if account is not None:
                ChatService.left(self, account, room)
            else:
                self.rooms.remove_member(room, user_id)
        elif kind == "rename":
            if account is not None:
                ChatService.renamed(self, account, message["un"])
            else:
                self.rooms.rename_member(user_id, message["un"])
        else:
            self.log.warn("unknown message on the bus: {message}", message=message)


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
        elif kind in ("online", "offline", "hello", "bye"):
            self.presence.received(message)
        elif self.chat is not None and message["n"] != self.name:
            self.chat.apply(message)

    def _connected(self, again: bool) -> None:
        if again:
            # Whatever was published while we were away is lost to us.
            self.log.warn("back on the bus: room order restarts, presence resyncs")
            self.fanout.restart_order()
            self.presence.beat()
