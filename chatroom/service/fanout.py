"""In-process fan-out: every session lives in this process."""

from collections.abc import Hashable

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.service.interfaces import IFanout


@implementer(IFanout)
class LocalFanout:
    """L{IFanout} within one process: a subscriber set per channel."""

    log = Logger()

    def __init__(self) -> None:
        # A channel with one listener (a user's own, a room of one) holds the
        # client itself rather than a set of one: most channels are like that,
        # and an idle connection should cost little.
        self._channels: dict[Hashable, object] = {}

    def subscribe(self, channel: Hashable, client) -> None:
        listeners = self._channels.get(channel)
        if listeners is None:
            self._channels[channel] = client
        elif type(listeners) is set:
            listeners.add(client)
        elif listeners is not client:
            self._channels[channel] = {listeners, client}

    def unsubscribe(self, channel: Hashable, client) -> None:
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
        # A copy: a delivery may disconnect a client, which unsubscribes it.
        clients = tuple(listeners) if type(listeners) is set else (listeners,)
        for client in clients:
            if client is not exclude:
                try:
                    event.deliver(client)
                except Exception:
                    # One broken connection must not cost the others their copy.
                    self.log.failure("delivery to {client} failed", client=client)

    def subscribers(self, channel: Hashable) -> frozenset:
        listeners = self._channels.get(channel)
        if listeners is None:
            return frozenset()
        return (
            frozenset(listeners) if type(listeners) is set else frozenset((listeners,))
        )
