"""
The listening side every front end shares: builds its protocol per
connection within the limits, counts connections (in all and per address),
runs the one login sweep for every connection not logged in yet, the one
idle check for every logged-in connection, the one stall check for every
backed-up one and the one output flush of each reactor turn, and says
goodbye to all of them at shutdown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from chatroom.protocol.address import address_of
from chatroom.protocol.connection import TIMEOUT_GRACE
from chatroom.protocol.limits import Limits
from chatroom.service.admission import Admission

# Stall checks per --output-stall.
STALL_CHECKS = 4
# Login sweeps per --login-timeout: a connection that does not log in is
# closed between one and 1.25 timeouts after it opened.
LOGIN_CHECKS = 4
# Lines in flight on all connections at once past which a connection that
# has one in flight already stops reading: a server behind on its work keeps
# the backlog in socket buffers, not in Python objects that the garbage
# collector walks again and again (which made an overloaded server collapse).
# Two per connection at 2000 connections: below one, every connection that
# sends again before its +OK stops and restarts reading (two epoll_ctl calls,
# a tenth of an overloaded S2 server's time); a message in flight without a
# coroutine is a few small Deferreds.
MAX_IN_FLIGHT = 4000


def wait_at_most(
    waiters: list[defer.Deferred], clock, grace: float, give_up: Callable[[], None]
) -> defer.Deferred:
    """
    A Deferred, added to C{waiters} (whoever fires those fires it), that
    fires anyway after C{grace} seconds, once C{give_up()} has run.
    """
    d: defer.Deferred = defer.Deferred()
    waiters.append(d)

    def timed_out(failure):
        failure.trap(defer.TimeoutError)
        give_up()

    return d.addTimeout(grace, clock).addErrback(timed_out)


class InFlight:
    """Lines started on every connection of a server and not yet answered."""

    log = Logger()
    __slots__ = ("count", "limit", "_waiting")

    def __init__(self, limit: int = MAX_IN_FLIGHT) -> None:
        self.count = 0
        self.limit = limit
        self._waiting: list[defer.Deferred] = []

    def started(self) -> None:
        self.count += 1

    def finished(self) -> None:
        self.count -= 1
        if not self.count and self._waiting:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def all_answered(self, clock, grace: float) -> defer.Deferred:
        """Fires once no line is in flight, or after C{grace} seconds."""
        if not self.count:
            return defer.succeed(None)

        def give_up() -> None:
            self.log.warn("stopping with {count} lines unanswered", count=self.count)

        return wait_at_most(self._waiting, clock, grace, give_up)


class Refusal(Protocol):
    """
    A connection over a limit: one line saying why, then the close, cut
    after L{TIMEOUT_GRACE} if it is not done by then.
    """

    def __init__(self, line: bytes, clock: IReactorTime) -> None:
        self.line = line
        self.clock = clock
        self._abort: IDelayedCall | None = None

    def connectionMade(self) -> None:
        # Under TLS the close waits for a handshake that a peer may never
        # finish, and a refusal is not counted: it would hold its socket.
        # Armed first, so a close done at once still cancels it.
        self._abort = self.clock.callLater(
            TIMEOUT_GRACE, self.transport.abortConnection
        )
        self.transport.write(self.line)
        self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        abort, self._abort = self._abort, None
        if abort is not None and abort.active():
            abort.cancel()


class ChatFactory(Factory):
    """
    Builds a front end's protocol (the subclass's C{protocol}) per connection
    within the L{Limits}, and knows every connection open (to count them per
    address and to say goodbye).  The protocol reads C{admission}, C{chat},
    C{limits} and C{clock} from here, and counts the lines it is still
    answering in C{in_flight} (an L{InFlight}).  A protocol it
    L{watch_login}s has a C{login_timed_out()}; one it L{watch_idle}s has an
    C{idle_check()}; one it L{watch_output}s has a C{check_output()}; one it
    L{flush_soon}s has a C{flush()}.
    """

    log = Logger()

    def __init__(
        self, admission: Admission, limits: Limits | None = None, no_delay: bool = True
    ) -> None:
        """
        @param no_delay: set C{TCP_NODELAY} on each connection (see
            L{chatroom.protocol.address.set_no_delay}).
        """
        self.admission = admission
        self.no_delay = no_delay
        self.chat = admission.chat
        self.clock = self.chat.clock
        self.limits = limits if limits is not None else Limits()
        self.clients: set[Protocol] = set()
        self.per_address: Counter[str] = Counter()
        self._all_closed: list[defer.Deferred] = []
        # Lines read and not yet answered, on every connection.
        self.in_flight = InFlight()
        # The connections not logged in yet, in the order they opened, each
        # with its deadline; one sweep for all, not a timer each.
        self._awaiting_login: dict[Protocol, float] = {}
        self._login_check = task.LoopingCall(self._check_logins)
        # One idle check for every logged-in connection, not a timer each:
        # an idle connection should cost as little memory as it can.
        self._idle_check = task.LoopingCall(self._check_idle)
        self._idle_check.clock = self.clock
        self._idle_count = 0
        # Likewise one stall check for the connections whose output backed up.
        self.backed_up: set[Protocol] = set()
        self._stall_check = task.LoopingCall(self._check_stalled)
        # The connections with output written this turn, and the one call
        # that hands each its output in one write (see CoalescedWrites).
        self._to_flush: list[Protocol] = []
        self._flush_call = None

    def refusal(self, reason: str) -> bytes:
        """The line that tells a refused connection C{reason}, in our syntax."""
        raise NotImplementedError

    def buildProtocol(self, addr) -> Protocol:
        limits, address = self.limits, address_of(addr)
        if limits.max_connections and len(self.clients) >= limits.max_connections:
            self.log.warn(
                "refused {address}: {count} connections open",
                address=address,
                count=len(self.clients),
            )
            return Refusal(
                self.refusal("the server is full: try again later"), self.clock
            )
        if (
            limits.max_per_address
            and self.per_address[address] >= limits.max_per_address
        ):
            self.log.warn(
                "refused {address}: {count} connections from it already",
                address=address,
                count=self.per_address[address],
            )
            return Refusal(
                self.refusal("too many connections from your address"), self.clock
            )
        return super().buildProtocol(addr)

    def watch_login(self, client: Protocol) -> None:
        """Time C{client} out if it has not logged in (L{unwatch_login}) in time."""
        timeout = self.limits.login_timeout
        self._awaiting_login[client] = self.clock.seconds() + timeout
        if not self._login_check.running:
            self._login_check.clock = self.clock
            self._login_check.start(timeout / LOGIN_CHECKS, now=False)

    def unwatch_login(self, client: Protocol) -> None:
        """C{client} logged in or is gone: it is not timed out."""
        if self._awaiting_login.pop(client, None) is None:
            return
        if not self._awaiting_login:
            # A dict keeps its size when emptied: after a burst of
            # connections, give the table back.
            self._awaiting_login = {}
            if self._login_check.running:
                self._login_check.stop()

    def _check_logins(self) -> None:
        now, due = self.clock.seconds(), []
        # In the order they opened, so in the order of their deadlines.
        for client, deadline in self._awaiting_login.items():
            if deadline > now:
                break
            due.append(client)
        for client in due:
            self.unwatch_login(client)
            try:
                client.login_timed_out()
            except Exception:
                # One broken connection must not stop the sweep for the others.
                self.log.failure("timing out {client}'s login failed", client=client)

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

    def watch_output(self, client: Protocol) -> None:
        """Check C{client}'s output for progress until L{unwatch_output}."""
        self.backed_up.add(client)
        stall = self.limits.output_stall
        if stall and not self._stall_check.running:
            self._stall_check.clock = self.clock
            # A stalled client goes between one and 1.25 stall times.
            self._stall_check.start(stall / STALL_CHECKS, now=False)

    def unwatch_output(self, client: Protocol) -> None:
        self.backed_up.discard(client)
        if not self.backed_up and self._stall_check.running:
            self._stall_check.stop()

    def _check_stalled(self) -> None:
        for client in list(self.backed_up):
            client.check_output()

    def flush_soon(self, client: Protocol) -> None:
        """Call C{client.flush()} at the end of this reactor turn."""
        self._to_flush.append(client)
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self._flush)

    def flush_output(self) -> None:
        """Flush every connection's output now rather than at the turn's end."""
        if self._flush_call is not None:
            self._flush_call.cancel()
            self._flush()

    def _flush(self) -> None:
        self._flush_call = None
        clients, self._to_flush = self._to_flush, []
        for client in clients:
            try:
                client.flush()
            except Exception:
                # One broken connection must not cost the others their output.
                self.log.failure("flushing output to {client} failed", client=client)

    def opened(self, client: Protocol) -> None:
        self.clients.add(client)
        self.per_address[client.peer] += 1

    def closed(self, client: Protocol) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.per_address[client.peer] -= 1
            if not self.per_address[client.peer]:
                del self.per_address[client.peer]
        if not self.clients:
            waiting, self._all_closed = self._all_closed, []
            for d in waiting:
                d.callback(None)

    def all_answered(self, grace: float = 5.0) -> defer.Deferred:
        """
        Fires once no line read is still being answered, even on a connection
        closed since: at shutdown, what they store and publish must find the
        database and the bus still there.  Gives up after C{grace} seconds.
        """
        return self.in_flight.all_answered(self.clock, grace)

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

        def abort_stragglers() -> None:
            self.log.warn(
                "aborting {count} connections at shutdown", count=len(self.clients)
            )
            for client in list(self.clients):
                client.transport.abortConnection()

        return wait_at_most(self._all_closed, self.clock, grace, abort_stragglers)
