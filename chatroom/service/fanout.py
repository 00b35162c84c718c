"""In-process fan-out: every session lives in this process."""

from collections import defaultdict
from collections.abc import Hashable

from twisted.logger import Logger
from zope.interface import implementer

from chatroom.service.interfaces import IFanout


@implementer(IFanout)
class LocalFanout:
    log = Logger()

    def __init__(self) -> None:
        self._channels: defaultdict[Hashable, set] = defaultdict(set)

    def subscribe(self, channel: Hashable, client) -> None:
        self._channels[channel].add(client)

    def unsubscribe(self, channel: Hashable, client) -> None:
        clients = self._channels.get(channel)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._channels[channel]

    def publish(self, channel: Hashable, event, exclude=None) -> None:
        # A copy: a delivery may disconnect a client, which unsubscribes it.
        for client in tuple(self._channels.get(channel, ())):
            if client is not exclude:
                try:
                    event.deliver(client)
                except Exception:
                    # One broken connection must not cost the others their copy.
                    self.log.failure("delivery to {client} failed", client=client)

    def subscribers(self, channel: Hashable) -> frozenset:
        return frozenset(self._channels.get(channel, ()))
