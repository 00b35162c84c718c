"""
The listening side: builds a L{ChatProtocol} per connection within the
limits, counts connections (in all and per address), runs the one idle check
for every logged-in connection, and says goodbye to all of them at shutdown.
"""

from __future__ import annotations

from collections import Counter

from twisted.cred.portal import Portal
from twisted.internet import defer, task
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from chatroom.protocol import wire
from chatroom.protocol.chat import MAX_IN_FLIGHT, ChatProtocol, address_of
from chatroom.protocol.limits import Limits, RegistrationLimit
from chatroom.service.chat import ChatService
from chatroom.service.throttle import LoginThrottle


class Refusal(Protocol):
    """A connection over a limit: one notice saying why, then the close."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def connectionMade(self) -> None:
        self.transport.write(wire.notice(self.reason))
        self.transport.loseConnection()


class ChatFactory(Factory):
    """
    Builds a L{ChatProtocol} per connection within the L{Limits}, and knows
    every connection open (to count them per address and to say goodbye).
    """

    protocol = ChatProtocol
    log = Logger()
    # Lines in flight on every connection may be at most this many before
    # pipelining stops (see MAX_IN_FLIGHT).
    max_in_flight = MAX_IN_FLIGHT

    def __init__(
        self,
        service: ChatService,
        portal: Portal,
        limits: Limits | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.service = service
        self.portal = portal
        self.clock = service.clock
        self.limits = limits if limits is not None else Limits()
        self.throttle = throttle if throttle is not None else LoginThrottle(self.clock)
        self.registrations = None
        if self.limits.register_rate:
            self.registrations = RegistrationLimit(
                self.clock, self.limits.register_rate, self.limits.register_burst
            )
        self.clients: set[ChatProtocol] = set()
        self.per_address: Counter[str] = Counter()
        self._all_closed: list[defer.Deferred] = []
        self._in_flight = 0
        self._all_answered: list[defer.Deferred] = []
        # One idle check for every logged-in connection, not a timer each:
        # an idle connection should cost as little memory as it can.
        self._idle_check = task.LoopingCall(self._check_idle)
        self._idle_check.clock = self.clock
        self._idle_count = 0

    def buildProtocol(self, addr) -> Protocol:
        limits, address = self.limits, address_of(addr)
        if limits.max_connections and len(self.clients) >= limits.max_connections:
            self.log.warn(
                "refused {address}: {count} connections open",
                address=address,
                count=len(self.clients),
            )
            return Refusal("the server is full: try again later")
        if (
            limits.max_per_address
            and self.per_address[address] >= limits.max_per_address
        ):
            self.log.warn(
                "refused {address}: {count} connections from it already",
                address=address,
                count=self.per_address[address],
            )
            return Refusal("too many connections from your address")
        return super().buildProtocol(addr)

    def watch_idle(self) -> None:
        self._idle_count += 1
        if not self._idle_check.running:
            self._idle_check.start(self.limits.ping_interval, now=False)

    def unwatch_idle(self) -> None:
        self._idle_count -= 1
        if not self._idle_count and self._idle_check.running:
            self._idle_check.stop()

    def _check_idle(self) -> None:
        for client in list(self.clients):
            if client.watched_for_idle:
                client.idle_check()

    def opened(self, client: ChatProtocol) -> None:
        self.clients.add(client)
        self.per_address[client.peer] += 1

    def closed(self, client: ChatProtocol) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.per_address[client.peer] -= 1
            if not self.per_address[client.peer]:
                del self.per_address[client.peer]
        if not self.clients:
            waiting, self._all_closed = self._all_closed, []
            for d in waiting:
                d.callback(None)

    @property
    def in_flight(self) -> int:
        """Lines started on every connection and not yet answered."""
        return self._in_flight

    @in_flight.setter
    def in_flight(self, count: int) -> None:
        self._in_flight = count
        if not count and self._all_answered:
            waiting, self._all_answered = self._all_answered, []
            for d in waiting:
                d.callback(None)

    def all_answered(self, grace: float = 5.0) -> defer.Deferred:
        """
        Fires once no line read is still being answered, even on a connection
        closed since: at shutdown, what they store and publish must find the
        database and the bus still there.  Gives up after C{grace} seconds.
        """
        if not self._in_flight:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._all_answered.append(d)

        def give_up(failure):
            failure.trap(defer.TimeoutError)
            self.log.warn(
                "stopping with {count} lines unanswered", count=self._in_flight
            )

        return d.addTimeout(grace, self.clock).addErrback(give_up)

    def disconnect_all(self, reason: str, grace: float = 5.0) -> defer.Deferred:
        """
        Tell every connection C{reason} and close it; fires once all are
        closed, so their logouts are recorded before storage shuts.  After
        C{grace} seconds, connections still flushing to a peer that does not
        read are aborted.
        """
        for client in list(self.clients):
            client.disconnect(reason)
        if not self.clients:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._all_closed.append(d)

        def abort_stragglers(failure):
            failure.trap(defer.TimeoutError)
            self.log.warn(
                "aborting {count} connections at shutdown", count=len(self.clients)
            )
            for client in list(self.clients):
                client.transport.abortConnection()

        return d.addTimeout(grace, self.clock).addErrback(abort_stragglers)
