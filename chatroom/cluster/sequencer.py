"""
Room sequence numbers for the whole cluster: one Redis counter per room, so
every node numbers a room's messages from the same count.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.cluster.bus import RedisBus, report
from chatroom.cluster.fanout import RedisFanout
from chatroom.service.interfaces import ISequencer
from chatroom.service.rooms import Room

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


@implementer(ISequencer)
class RedisSequencer:
    """L{ISequencer} over a Redis counter per room."""

    log = Logger()

    def __init__(self, bus: RedisBus, fanout: RedisFanout) -> None:
        self.bus = bus
        self.fanout = fanout
        # Whether the rooms were read at start-up and numbering resumed.
        self.resumed = False

    def _key(self, room: Room) -> str:
        return self.bus.address.key("seq", room.id)

    def resume(self, rooms: Iterable[Room]) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._resume(list(rooms)))

    async def _resume(self, rooms: list[Room]) -> None:
        # Numbers handed out but never stored (a failed write, a dead node)
        # leave the counter ahead of the database: start after both.
        keys = [self._key(room) for room in rooms]
        counters = await self.bus.redis.mget(keys) if keys else []
        for room, counter in zip(rooms, counters, strict=True):
            room.last_seq = max(room.last_seq, int(counter or 0))
            self.fanout.expect(room.id, room.last_seq)
        self.resumed = True

    def next_seq(self, room: Room) -> defer.Deferred[int]:
        floor = max(room.last_seq, self.fanout.last_delivered(room.id))
        d = self.bus.redis.eval(_NEXT_SEQ, [self._key(room)], [str(floor)])

        def assigned(seq) -> int:
            room.last_seq = max(room.last_seq, int(seq))
            return int(seq)

        return d.addCallback(assigned)

    def seq_unused(self, room: Room, seq: int) -> None:
        # Without this, every node would hold the room's next messages for
        # the gap timeout, waiting for a number that will never come.
        d = self.fanout.skip(room.id, seq)
        d.addErrback(report, self.log, f"telling the cluster #{room.name} skips {seq}")
