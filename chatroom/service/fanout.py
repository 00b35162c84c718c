"""
In-process fan-out: every session lives in this process; and publishing
what storage has committed, which tries again rather than fail.
"""

from collections.abc import Callable, Hashable, Sequence

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatroom.service.at_once import NOT_YET, result_now
from chatroom.service.events import RoomMessage
from chatroom.service.interfaces import IFanout

# Seconds before each new try to publish a message that is stored: 1.5 s in
# all, inside the cluster's gap timeout (2 s), so the other nodes still take
# it in its place when a try gets through.
PUBLISH_RETRIES = (0.1, 0.2, 0.4, 0.8)

log = Logger()


def publish_stored(
    publish: Callable[[], defer.Deferred],
    what: Callable[[], str],
    clock: IReactorTime,
    waits: Sequence[float] = PUBLISH_RETRIES,
    first: defer.Deferred | None = None,
) -> defer.Deferred[None]:
    """
    Publish what storage has committed.  The send has succeeded whatever the
    bus does (failing it would have the sender send it again, and store it
    twice): a failed C{publish()} is tried again after each of C{waits}
    seconds, then logged.  Given up, the message stays in storage.  C{what}
    names it for the log, called only then: this runs once per message, and
    makes no coroutine unless the first try fails.  C{first}: the first
    try, made already.
    """
    d = first
    if d is None:
        try:
            d = publish()
        except Exception:
            d = defer.fail()
    if result_now(d) is not NOT_YET:
        # Published at once (in process): nothing more to do or to wait for.
        return d
    return d.addCallbacks(
        _published, _publish_again, errbackArgs=(publish, what, clock, waits)
    )


def _published(_: object) -> None:
    return None


def _publish_again(
    failure: Failure,
    publish: Callable[[], defer.Deferred],
    what: Callable[[], str],
    clock: IReactorTime,
    waits: Sequence[float],
) -> defer.Deferred[None]:
    return defer.ensureDeferred(_retry(failure, publish, what, clock, waits))


async def _retry(
    failure: Failure,
    publish: Callable[[], defer.Deferred],
    what: Callable[[], str],
    clock: IReactorTime,
    waits: Sequence[float],
) -> None:
    for wait in (*waits, None):
        if wait is None:
            log.failure(
                "gave up publishing {what}: it is stored, not delivered",
                failure,
                what=what(),
            )
            return
        log.warn(
            "publishing {what} failed ({error}): trying again in {wait} s",
            what=what(),
            error=failure.getErrorMessage(),
            wait=wait,
        )
        await task.deferLater(clock, wait)
        try:
            await publish()
            return
        except Exception:
            failure = Failure()


@implementer(IFanout)
class LocalFanout:
    """L{IFanout} within one process: a subscriber set per channel."""

    log = Logger()

    def __init__(self) -> None:
        # A channel with one listener (a user's own, a room of one) holds the
        # client itself rather than a set of one: most channels are like that,
        # and an idle connection should cost little.
        self._channels: dict[Hashable, object] = {}
        # A room's members grouped by how a room message reaches them
        # (_grouped), made at its first message and kept until the room
        # changes: copying a room of 500 for every message was a twentieth
        # of the reactor's time at full load, and a group may keep state
        # from one message to the next (a turn's shared output).
        self._groups: dict[Hashable, tuple] = {}

    def subscribe(self, channel: Hashable, client) -> None:
        self._groups.pop(channel, None)
        listeners = self._channels.get(channel)
        if listeners is None:
            self._channels[channel] = client
        elif type(listeners) is set:
            listeners.add(client)
        elif listeners is not client:
            self._channels[channel] = {listeners, client}

    def unsubscribe(self, channel: Hashable, client) -> None:
        self._groups.pop(channel, None)
        listeners = self._channels.get(channel)
        if listeners is client:
            del self._channels[channel]
        elif type(listeners) is set:
            listeners.discard(client)
            if len(listeners) == 1:
                self._channels[channel] = listeners.pop()

    def publish(self, channel: Hashable, event, exclude=None) -> defer.Deferred[None]:
        self.deliver(channel, event, exclude)
        return defer.succeed(None)

    def publish_kept(self, user_id: int, message) -> defer.Deferred[None]:
        # No other node to hand it to.
        return defer.succeed(None)

    def deliver(self, channel: Hashable, event, exclude=None) -> None:
        """Hand C{event} to the subscribers of C{channel} in this process, now."""
        listeners = self._channels.get(channel)
        if listeners is None:
            return
        if type(event) is RoomMessage:
            # Nearly all of fan-out: one call per kind of client in the room,
            # which appends to each member's output itself.
            groups = self._groups.get(channel)
            if groups is None:
                members = listeners if type(listeners) is set else (listeners,)
                groups = self._groups[channel] = _grouped(members)
            for fan in groups:
                fan.deliver(event, exclude, self._failed)
            return
        # A copy: a delivery may disconnect a client, which unsubscribes it.
        clients = tuple(listeners) if type(listeners) is set else (listeners,)
        deliver = event.deliver
        for client in clients:
            if client is not exclude:
                try:
                    deliver(client)
                except Exception:
                    self._failed(client)

    def _failed(self, client) -> None:
        # One broken connection must not cost the others their copy.
        self.log.failure("delivery to {client} failed", client=client)

    def subscribers(self, channel: Hashable) -> frozenset:
        listeners = self._channels.get(channel)
        if listeners is None:
            return frozenset()
        return (
            frozenset(listeners) if type(listeners) is set else frozenset((listeners,))
        )


class OneByOne:
    """How a room message reaches clients whose class has no C{room_fan}."""

    __slots__ = ("members",)

    def __init__(self, members: tuple) -> None:
        self.members = members

    def deliver(self, message, exclude, failed) -> None:
        for client in self.members:
            if client is not exclude:
                try:
                    client.room_message(message)
                except Exception:
                    failed(client)


def _grouped(clients) -> tuple:
    """
    C{clients} grouped by their class's C{room_fan} (see L{IChatClient}),
    each group made by it, or one by one.
    """
    groups: dict = {}
    for client in clients:
        room_fan = getattr(type(client), "room_fan", None)
        groups.setdefault(room_fan or OneByOne, []).append(client)
    return tuple(make(tuple(members)) for make, members in groups.items())
