"""
Fan-out across nodes: publish on the Redis bus, deliver from it.

Every event goes out through Redis, the publishing node's own sessions
included, so all nodes deliver from the same stream.  Room messages carry a
sequence number assigned in one place (L{chatroom.cluster.sequencer}); a node
holds a message that arrives ahead of its predecessor (its sender's node was
had not published the earlier one yet) and delivers in sequence order.  A message
is published as soon as its write is queued; a number whose write failed is
then announced as skipped by its node, after the message if it went out, and
released at once (a node that has the message delivers it); one
that never arrives (its node died between numbering and publishing) is skipped
after C{gap_timeout} seconds.

A private message kept for its recipient (stored as not delivered, since no
session of theirs was on the sender's node) goes, on every other node, to
L{on_kept_private}, which marks it delivered once a session there has it;
an end-to-end ciphertext, stored as waiting for its device, to L{on_e2e}.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from itertools import count

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.cluster.bus import RedisBus
from chatroom.cluster.messages import Event, Skipped
from chatroom.service.events import (
    E2EMessage,
    PrivateMessage,
    RoomMessage,
    event_from_dict,
)
from chatroom.service.fanout import LocalFanout
from chatroom.service.interfaces import IFanout

GAP_TIMEOUT = 2.0

# Held in place of a message whose number its node gave up (its write failed).
_SKIPPED = None


class _RoomOrder:
    """The next sequence number to deliver in one room, and what waits for it."""

    __slots__ = ("next", "held", "timer")

    def __init__(self, next_seq: int | None) -> None:
        self.next = next_seq
        self.held: dict[int, tuple] = {}
        self.timer: IDelayedCall | None = None


@implementer(IFanout)
class RedisFanout:
    """L{IFanout} over the bus; local subscribers are kept by a L{LocalFanout}."""

    log = Logger()

    def __init__(
        self, node: str, clock: IReactorTime, gap_timeout: float = GAP_TIMEOUT
    ) -> None:
        self.node = node
        self.clock = clock
        self.gap_timeout = gap_timeout
        self.bus: RedisBus | None = None
        self.local = LocalFanout()
        self._rooms: dict[int, _RoomOrder] = {}
        # Our own publications come back from Redis: who to leave out then.
        self._excluded: dict[int, object] = {}
        self._tokens = count(1)
        # (user id, kept message): set by the cluster node.
        self.on_kept_private: Callable[[int, PrivateMessage], None] | None = None
        # (user id, ciphertext for one of their devices): set by the node.
        self.on_e2e: Callable[[int, E2EMessage], None] | None = None

    # IFanout

    def subscribe(self, channel: Hashable, client) -> None:
        self.local.subscribe(channel, client)

    def unsubscribe(self, channel: Hashable, client) -> None:
        self.local.unsubscribe(channel, client)

    def subscribers(self, channel: Hashable) -> frozenset:
        return self.local.subscribers(channel)

    def publish(self, channel: Hashable, event, exclude=None) -> defer.Deferred:
        token = None
        if exclude is not None:
            token = next(self._tokens)
            self._excluded[token] = exclude
        d = self.bus.publish(Event(self.node, channel, event.to_dict(), token))
        if token is not None:
            d.addErrback(self._unpublished, token)
        return d

    def publish_kept(
        self, user_id: int, message: PrivateMessage | E2EMessage
    ) -> defer.Deferred:
        # To every node, even when presence says the recipient is offline: a
        # node where they are logging in may not have told us yet.
        return self.bus.publish(Event(self.node, ("user", user_id), message.to_dict()))

    # Sequence numbers

    def expect(self, room_id: int, last_seq: int) -> None:
        """Room C{room_id} has delivered up to C{last_seq} (read at start-up)."""
        order = self._rooms.setdefault(room_id, _RoomOrder(None))
        if order.next is None or order.next <= last_seq:
            order.next = last_seq + 1

    def last_delivered(self, room_id: int) -> int:
        order = self._rooms.get(room_id)
        return 0 if order is None or order.next is None else order.next - 1

    def skip(self, room_id: int, seq: int) -> defer.Deferred[int]:
        """Tell every node that number C{seq} of room C{room_id} carries nothing."""
        return self.bus.publish(Skipped(self.node, room_id, seq))

    def restart_order(self) -> None:
        """After a gap in the bus: deliver what is held, take the next as it comes."""
        for room_id, order in list(self._rooms.items()):
            self._release(room_id, order, everything=True)
            order.next = None

    # From the bus

    def received(self, message: Event) -> None:
        channel = message.channel
        event = event_from_dict(message.event)
        exclude = None
        ours = message.node == self.node
        if ours and message.token is not None:
            exclude = self._excluded.pop(message.token, None)
        if isinstance(event, RoomMessage):
            self._in_order(channel, event, exclude)
        elif isinstance(event, PrivateMessage) and event.kept_id is not None:
            # The sender's node handed it to its own sessions already.
            if not ours and self.on_kept_private is not None:
                self.on_kept_private(channel[1], event)
        elif isinstance(event, E2EMessage):
            # Likewise: the sender's node handed it to its own sessions.
            if not ours and self.on_e2e is not None:
                self.on_e2e(channel[1], event)
        else:
            self.local.deliver(channel, event, exclude)

    def skipped(self, room_id: int, seq: int) -> None:
        """Number C{seq} of room C{room_id} will never arrive: stop waiting for it."""
        order = self._rooms.get(room_id)
        if order is None or order.next is None or seq < order.next:
            # Not waited for: the room's next message sets where it starts.
            return
        # A message is published before its write: one whose write then
        # failed may be here already, waiting for its turn; it stays.
        order.held.setdefault(seq, _SKIPPED)
        self._release(room_id, order)

    def _in_order(self, channel: tuple, event: RoomMessage, exclude) -> None:
        room_id = channel[1]
        order = self._rooms.get(room_id)
        if order is None:
            order = self._rooms[room_id] = _RoomOrder(None)
        if order.next is None:
            order.next = event.seq
        if event.seq < order.next:
            self.log.warn(
                "dropped #{room} {seq}: it came after its gap was skipped",
                room=event.room,
                seq=event.seq,
            )
            return
        order.held[event.seq] = (channel, event, exclude)
        self._release(room_id, order)

    def _release(self, room_id: int, order: _RoomOrder, everything=False) -> None:
        while order.held:
            if order.next not in order.held:
                if not everything:
                    break
                order.next = min(order.held)
                continue
            item = order.held.pop(order.next)
            order.next += 1
            if item is not _SKIPPED:
                channel, event, exclude = item
                self.local.deliver(channel, event, exclude)
        if order.held and order.timer is None:
            order.timer = self.clock.callLater(
                self.gap_timeout, self._gap_expired, room_id, order
            )
        elif not order.held and order.timer is not None:
            if order.timer.active():
                order.timer.cancel()
            order.timer = None

    def _gap_expired(self, room_id: int, order: _RoomOrder) -> None:
        order.timer = None
        missing = order.next
        order.next = min(order.held)
        self.log.warn(
            "skipped messages {first}-{last} of room {room}: never published",
            first=missing,
            last=order.next - 1,
            room=room_id,
        )
        self._release(room_id, order)

    def _unpublished(self, failure, token: int):
        self._excluded.pop(token, None)
        return failure

    def stop(self) -> None:
        for order in self._rooms.values():
            if order.timer is not None and order.timer.active():
                order.timer.cancel()
            order.timer = None
