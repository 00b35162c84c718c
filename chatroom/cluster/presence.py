"""
Who is online on the other nodes.

Each node keeps its online users in a Redis set of its own and beats every
C{interval} seconds: one Lua script renews its entry in the sorted set of live
nodes (scored by expiry, on Redis's clock so nodes' clocks may differ),
drops the nodes whose entry expired, rewrites its own set, and returns every
other live node's set.  Between beats, logins and logouts travel on the bus.
A node that dies stops beating: the others forget its users within
C{timeout} + C{interval} seconds.  A node that restarts says hello, and the
others forget what they knew of its previous life at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.cluster.bus import RedisBus, report
from chatroom.cluster.messages import Bye, Hello, Offline, Online
from chatroom.service.interfaces import IPresence

PRESENCE_TIMEOUT = 15.0

_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('DEL', KEYS[2])
for i = 4, #ARGV, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local out = {}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if node ~= ARGV[1] then
    out[#out + 1] = node
    out[#out + 1] = redis.call('SMEMBERS', ARGV[3] .. node)
  end
end
return out
"""


@implementer(IPresence)
class RedisPresence:
    """This node's view of who is online elsewhere, and its share of it."""

    log = Logger()

    def __init__(
        self,
        node: str,
        bus: RedisBus,
        clock: IReactorTime,
        local_users: Callable[[], Iterable[int]],
        timeout: float = PRESENCE_TIMEOUT,
    ) -> None:
        self.node = node
        self.bus = bus
        self.clock = clock
        self.local_users = local_users
        self.timeout = timeout
        self.interval = timeout / 3
        self.nodes_key = bus.address.key("nodes")
        self.set_prefix = bus.address.key("presence") + ":"
        self.remote: dict[str, set[int]] = {}
        # Bus events seen per node: a beat's snapshot older than one is stale.
        self._changes: dict[str, int] = {}
        self._beat = task.LoopingCall(self.beat)
        self._beat.clock = clock

    def is_online_elsewhere(self, user_id: int) -> bool:
        return any(user_id in users for users in self.remote.values())

    # Lifetime

    async def start(self) -> None:
        await self.beat()
        await self.bus.publish(Hello(self.node))
        self._beat.start(self.interval, now=False).addErrback(
            lambda f: self.log.failure("presence heartbeat stopped", f)
        )

    async def stop(self) -> None:
        if self._beat.running:
            self._beat.stop()
        if not self.bus.connected:
            return
        redis = self.bus.redis
        await redis.zrem(self.nodes_key, self.node)
        await redis.delete(self.set_prefix + self.node)
        await self.bus.publish(Bye(self.node))

    # This node's users

    def came_online(self, user_id: int) -> None:
        self._tell("sadd", Online(self.node, user_id))

    def went_offline(self, user_id: int) -> None:
        self._tell("srem", Offline(self.node, user_id))

    def _tell(self, command: str, message: Online | Offline) -> None:
        if not self.bus.connected:
            return  # the next beat after reconnecting writes the whole set
        redis = self.bus.redis
        d = getattr(redis, command)(self.set_prefix + self.node, message.user_id)
        d.addCallback(lambda _: self.bus.publish(message))
        d.addErrback(report, self.log, f"telling the cluster {message.kind}")

    # The heartbeat

    def beat(self) -> defer.Deferred:
        if not self.bus.connected:
            return defer.succeed(None)
        users = [str(user_id) for user_id in self.local_users()]
        seen = dict(self._changes)
        d = self.bus.redis.eval(
            _HEARTBEAT,
            [self.nodes_key, self.set_prefix + self.node],
            [self.node, str(int(self.timeout * 1000)), self.set_prefix, *users],
        )
        d.addCallback(self._refreshed, seen)
        d.addErrback(report, self.log, "presence heartbeat")
        return d

    def _refreshed(self, reply: list, seen: dict[str, int]) -> None:
        live = {}
        for i in range(0, len(reply or ()), 2):
            node = str(reply[i])
            live[node] = self._user_ids(node, reply[i + 1])
        for node in set(self.remote) - set(live):
            self.log.info("node {node} left the cluster", node=node)
            self.remote.pop(node)
        for node, users in live.items():
            if node not in self.remote:
                self.log.info("node {node} is in the cluster", node=node)
            if self._changes.get(node) == seen.get(node):
                self.remote[node] = users
            else:
                self.remote.setdefault(node, set())

    def _user_ids(self, node: str, members: list) -> set[int]:
        """A node's presence set; one bad entry must not stop the refresh."""
        users = set()
        for member in members:
            try:
                users.add(int(member))
            except (TypeError, ValueError):
                self.log.warn(
                    "ignored {member!r} in the presence set of node {node}",
                    member=str(member)[:40],
                    node=node,
                )
        return users

    # From the bus

    def received(self, message: Online | Offline | Hello | Bye) -> None:
        node = message.node
        if node == self.node:
            return
        self._changes[node] = self._changes.get(node, 0) + 1
        if isinstance(message, Online):
            self.remote.setdefault(node, set()).add(message.user_id)
        elif isinstance(message, Offline):
            self.remote.get(node, set()).discard(message.user_id)
        else:
            self.log.info("node {node} says {kind}", node=node, kind=message.kind)
            if isinstance(message, Hello):
                self.remote[node] = set()
            else:
                self.remote.pop(node, None)
