"""
The connection to Redis: one for commands, one subscribed to the bus.

txredisapi rather than redis-py or txredis: it is Twisted-native (replies are
Deferreds, no asyncio reactor, no thread per subscription), still maintained,
and has the pub/sub protocol, Lua scripts and reconnection with backoff built
in; txredis has been abandoned since 2016, and redis-py's asyncio client would
force the asyncio reactor on the whole server.

Every node subscribes to one channel, the bus, and publishes everything on
it: room and private messages, notices, membership and presence changes.
Redis hands a channel's messages to every subscriber in the order it received
them, so every node sees one history of the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import txredisapi
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorTCP
from twisted.logger import Logger

from chatroom.cluster.messages import BadMessage, BusMessage, decode, encode
from chatroom.errors import ServerError

DEFAULT_PREFIX = "chatroom"


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is, from C{redis://[:PASSWORD@]HOST[:PORT][/DB][?prefix=P]}."""

    host: str
    port: int
    db: int
    # Never in a repr, so never in a log line by accident.
    password: str | None = field(repr=False)
    prefix: str

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError("a Redis URL starts with redis://")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"the database in {url!r} must be a number")
        prefix = parse_qs(parts.query).get("prefix", [DEFAULT_PREFIX])[0]
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(path or 0),
            password=unquote(parts.password) if parts.password else None,
            prefix=prefix,
        )

    def key(self, *parts: object) -> str:
        """A key or channel name of this deployment."""
        # Channels are shared by every database of a server: name the db too.
        return ":".join((self.prefix, str(self.db), *map(str, parts)))


def report(failure, log: Logger, doing: str) -> None:
    """Log a failed Redis call: a lost connection briefly, anything else in full."""
    if failure.check(txredisapi.ConnectionError, ServerError):
        log.warn("{doing}: {error}", doing=doing, error=failure.getErrorMessage())
    else:
        log.failure(doing, failure)


class _BusProtocol(txredisapi.SubscriberProtocol):
    def connectionMade(self):
        d = super().connectionMade()
        d.addCallback(lambda _: self.subscribe(self.factory.bus.channel))
        d.addCallback(lambda _: self.factory.bus._subscribed(self))
        d.addErrback(self.factory.bus._failed, "subscribing to the bus")
        return d

    def messageReceived(self, pattern, channel, message):
        self.factory.bus._received(message)

    def connectionLost(self, why):
        super().connectionLost(why)
        self.factory.bus._lost(self)


class RedisBus:
    """
    Publishes L{BusMessage}s on the bus and hands every one received, this
    node's included, to C{on_message}.  C{on_connected} runs at every (re)subscribe.
    """

    log = Logger()

    def __init__(
        self,
        address: RedisAddress,
        reactor: IReactorTCP,
        on_message: Callable[[BusMessage], None],
        on_connected: Callable[[bool], None],
    ) -> None:
        self.address = address
        self.reactor = reactor
        self.channel = address.key("bus")
        self.on_message = on_message
        self.on_connected = on_connected
        self._commands: txredisapi.RedisFactory | None = None
        self._subscriber: txredisapi.SubscriberFactory | None = None
        self._listening: _BusProtocol | None = None
        self._was_connected = False
        self._stopping = False
        self._ready: list[defer.Deferred] = []

    # Lifetime

    def start(self) -> None:
        address = self.address
        self._commands = txredisapi.RedisFactory(
            f"{address.host}:{address.port}",
            address.db,
            1,
            isLazy=True,
            password=address.password,
        )
        self._commands.startConnecting(self._endpoint())
        self._subscriber = txredisapi.SubscriberFactory(isLazy=True)
        self._subscriber.protocol = _BusProtocol
        self._subscriber.password = address.password
        self._subscriber.bus = self
        self._subscriber.startConnecting(self._endpoint())

    def ready(self) -> defer.Deferred[None]:
        """Fires once subscribed to the bus and able to send commands."""
        if self.connected:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._ready.append(d)
        return d

    async def stop(self) -> None:
        self._stopping = True
        for factory in (self._subscriber, self._commands):
            if factory is not None:
                await factory.disconnect()

    @property
    def connected(self) -> bool:
        return (
            self._listening is not None
            and self._commands is not None
            and self._commands.size > 0
        )

    # Commands

    @property
    def redis(self) -> txredisapi.ConnectionHandler:
        """The command connection; fails at once, not later, while Redis is away."""
        if not self.connected:
            raise ServerError("the cluster's message bus is unreachable")
        return self._commands.handler

    def publish(self, message: BusMessage) -> defer.Deferred[int]:
        """Fires with the number of nodes that got C{message}."""
        try:
            return self.redis.publish(self.channel, encode(message))
        except ServerError:
            return defer.fail()

    # From the subscriber connection

    def _endpoint(self) -> HostnameEndpoint:
        return HostnameEndpoint(
            self.reactor, self.address.host, self.address.port, timeout=5
        )

    def _subscribed(self, protocol: _BusProtocol) -> None:
        self._listening = protocol
        again, self._was_connected = self._was_connected, True
        self.log.info("subscribed to {channel}", channel=self.channel)
        self._wait_for_commands()
        self.on_connected(again)

    def _wait_for_commands(self) -> None:
        if not self._ready:
            return
        if not self.connected:
            self.reactor.callLater(0.05, self._wait_for_commands)
            return
        ready, self._ready = self._ready, []
        for d in ready:
            d.callback(None)

    def _received(self, message: object) -> None:
        # Nothing may raise from here: it would drop the subscription.
        try:
            decoded = decode(message)
        except BadMessage as e:
            self.log.warn("dropped a malformed message from the bus: {why}", why=e)
            return
        try:
            self.on_message(decoded)
        except Exception:
            # The kind and node only: a message may hold private text.
            self.log.failure(
                "handling a {kind} message from node {node}",
                kind=decoded.kind,
                node=decoded.node,
            )

    def _lost(self, protocol: _BusProtocol) -> None:
        if self._listening is protocol:
            self._listening = None
            if not self._stopping:
                self.log.warn("lost the bus; reconnecting")

    def _failed(self, failure, doing: str) -> None:
        report(failure, self.log, doing)
