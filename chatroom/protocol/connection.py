"""
One client connection, whatever its front end speaks: its output (queued,
backed up, cut), its close, its timers and its cleanup.  The line protocol
and IRC differ only in what they say; that is in their subclasses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from chatroom.protocol.address import address_of, set_no_delay, set_user_timeout
from chatroom.protocol.framing import LineFraming
from chatroom.protocol.limits import FloodGate
from chatroom.protocol.output import CoalescedWrites, OutputQueue, transport_buffered
from chatroom.service.admission import Admitted
from chatroom.service.interfaces import IUser

# Seconds a closing connection may take to send what is queued for it.
CLOSE_GRACE = 10.0
# Seconds a timed-out connection gets to take its notice before it is cut:
# a TLS handshake that never finishes would hold a clean close forever.
TIMEOUT_GRACE = 1.0


class Connection(CoalescedWrites, LineFraming):
    """
    What every front end's connection shares.  Its factory is a
    L{chatroom.protocol.factory.ChatFactory}: it runs the one login sweep,
    idle check and stall check for all of them.

    Most connections are idle, so what only some need is built on first
    use: the flood gate at the first line, the output queue once the kernel
    leaves bytes in the transport's buffer; and no connection has a timer of
    its own but while it closes.  A subclass says its own words in
    L{_close_for_login_timeout}, L{idle_check}'s L{_ping} and L{_log_cut}.
    """

    log = Logger()
    # One per connection: slots keep each small.  Twisted's own per-connection
    # attributes too (Protocol's, LineReceiver's, LineFraming's), or they
    # would fill an instance dict, which costs a table of its own per
    # connection once connections set them in different orders (IRC's do).
    __slots__ = (
        "factory",
        "transport",
        "_buffer",
        "_busyReceiving",
        "paused",
        "_discarding",
        "_carry_on",
        "_stopped_for",
        "peer",
        "connected",
        "avatar",
        "_logout",
        "_gate",
        "_drain_waiters",
        "_timer",
        "_quiet",
        "watched_for_idle",
    )

    def __init__(self) -> None:
        # What the classes' defaults were, for the slots to start from.
        self.factory = None
        self.transport = None
        self._buffer = b""
        self._busyReceiving = False
        self.paused = False
        self._discarding = False
        self._carry_on = False
        self._stopped_for: tuple[str, ...] = ()
        self.peer = "?"
        self.connected = False
        self.avatar: IUser | None = None
        # The logout to call at the close, if not the avatar's own.
        self._logout: Callable[[str | None], None] | None = None
        # Made at the first line (L{_flood_gate}).
        self._gate: FloodGate | None = None
        # Made once the kernel leaves bytes unsent (L{_queue_for_backlog}).
        self._output: OutputQueue | None = None
        # What was written this reactor turn, not flushed yet (CoalescedWrites).
        self._pending: list[bytes] | None = None
        # The room's shared output of this turn we hold (CoalescedWrites).
        self._run = None
        # Waiting for the output queue to drain (IChatClient.drained).
        self._drain_waiters: list[defer.Deferred[bool]] | None = None
        # Only while closing: the abort if the close takes too long.
        self._timer: IDelayedCall | None = None
        # Nothing sent or received since the idle check last looked.
        self._quiet = True
        # Logged in, so looked at by the factory's idle check.
        self.watched_for_idle = False

    def connectionMade(self) -> None:
        # Interned: thousands of connections from one address share one string.
        self.peer = sys.intern(address_of(self.transport.getPeer()))
        factory = self.factory
        factory.opened(self)
        limits = factory.limits
        if limits.output_hard and transport_buffered(self.transport) is None:
            # A transport that does not say what it buffers tells us only by
            # its producer signals: we listen from the start.
            self._attach_output()
        if limits.login_timeout:
            factory.watch_login(self)
        if limits.ping_interval:
            set_user_timeout(self.transport, limits.ping_timeout)
        if factory.no_delay:
            set_no_delay(self.transport)

    def _flood_gate(self) -> FloodGate | None:
        """The line-rate limit, made at the first line; None if there is none."""
        limits = self.factory.limits
        if not limits.rate:
            return None
        self._gate = FloodGate(limits, self.factory.clock)
        return self._gate

    def connectionLost(self, reason) -> None:
        self.connected = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        factory = self.factory
        factory.unwatch_login(self)
        if self.watched_for_idle:
            self.watched_for_idle = False
            factory.unwatch_idle()
        # The transport stops its producer itself.
        self._output = None
        self.drop_output()
        factory.unwatch_output(self)
        if self.avatar is not None:
            logout, self._logout = self._logout or self.avatar.logout, None
            logout(self.quit_reason())
        self.avatar = None
        self._drain_waiters_fire(False)
        # Last: at shutdown this may let storage close, so the logout's
        # record must already be queued.
        factory.closed(self)

    def _become(self, admitted: Admitted) -> None:
        """Be the session C{admitted}: its avatar called, its logout at the close."""
        self.avatar = admitted.avatar
        # Cred's logout is the session's own here: called through the avatar
        # rather than kept, it costs no bound method per connection.
        logout = admitted.logout
        self._logout = None if logout == admitted.avatar.logout else logout

    def quit_reason(self) -> str | None:
        """Why the session ends, as the others are told (None: the default)."""
        return None

    # Output, and what it costs

    def _attach_output(self) -> OutputQueue:
        limits = self.factory.limits
        output = self._output = OutputQueue(
            limits.output_soft,
            limits.output_hard,
            limits.output_stall,
            self.factory.clock,
            self._backed_up,
            self._cut,
        )
        output.attach(self.transport)
        return output

    def _queue_for_backlog(self) -> OutputQueue | None:
        # Bytes left in the buffer: from now on the output is judged.  Not
        # once closing: a registered producer would keep the transport open.
        if (
            self.factory.limits.output_hard
            and self.connected
            and not self.transport.disconnecting
        ):
            return self._attach_output()
        return None

    def sent(self) -> None:
        self._quiet = False

    def drained(self) -> defer.Deferred[bool]:
        # What this turn wrote counts as queued: the transport judges it.
        self.flush()
        if not self.connected or self.transport.disconnecting:
            return defer.succeed(False)
        output = self._output
        if output is None or not output.backed_up:
            return defer.succeed(True)
        d: defer.Deferred[bool] = defer.Deferred()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(d)
        return d

    def _drain_waiters_fire(self, drained: bool) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for d in waiters or ():
            d.callback(drained)

    def _backed_up(self, backed_up: bool) -> None:
        # Past the soft limit: read no more commands until the client catches
        # up, and watch that it takes something meanwhile.
        if backed_up:
            if self._run is not None:
                # From now on each message is counted as it is written.
                self._leave_run()
            self.stop_reading("output")
            self.factory.watch_output(self)
        else:
            self.factory.unwatch_output(self)
            self.resume_reading("output")
            self._drain_waiters_fire(True)

    def check_output(self) -> None:
        """Called by the factory's stall check while the output is backed up."""
        if self._output is not None:
            self._output.check()

    def _cut(self, why: str) -> None:
        output, self._output = self._output, None
        self._log_cut(why, output)
        self.factory.unwatch_output(self)
        output.detach()
        self.drop_output()
        self.transport.abortConnection()
        self._drain_waiters_fire(False)

    def _log_cut(self, why: str, output: OutputQueue) -> None:
        """Log that a client that does not read is cut (C{why}: hard or stall)."""
        raise NotImplementedError

    def _hang_up(self) -> None:
        """Close once what is queued is sent, or after a grace period if stuck."""
        self.flush()
        # What is still queued may never arrive: nobody may count it delivered.
        self._drain_waiters_fire(False)
        output, self._output = self._output, None
        if output is not None:
            self.factory.unwatch_output(self)
            # A registered producer would keep the transport open.
            output.detach()
            if output.backed_up and self.connected:
                self._set_timer(CLOSE_GRACE, self.transport.abortConnection)
        self.transport.loseConnection()

    # Timers: the login timeout (the factory's sweep), then the idle ping

    def _set_timer(self, delay: float, call: Callable[[], object]) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self.factory.clock.callLater(delay, call)

    def login_timed_out(self) -> None:
        """Called by the factory's login sweep: not logged in in time."""
        self._close_for_login_timeout()
        # Before its handshake, TLS closes only once the handshake is done
        # (or aborts if nothing is buffered, and our notice is): a peer that
        # never finishes it would keep its socket.
        if self.connected and self.transport.disconnecting:
            self._set_timer(TIMEOUT_GRACE, self.transport.abortConnection)

    def _close_for_login_timeout(self) -> None:
        """Unless logged in meanwhile, say why in this front end's words, and close."""
        raise NotImplementedError

    def _start_idle_checks(self) -> None:
        factory = self.factory
        factory.unwatch_login(self)
        if factory.limits.ping_interval and not self.watched_for_idle:
            self._quiet = True
            self.watched_for_idle = True
            factory.watch_idle()

    def idle_check(self) -> None:
        """
        Called once per ping interval: after a whole interval of silence both
        ways, send something, so a dead peer shows (the kernel's user
        timeout) and NAT keeps the mapping.
        """
        if self._quiet:
            self._ping()
        self._quiet = True
        # Between bursts the buckets fill up again, and a full one is what a
        # new one is: an idle connection keeps none.
        gate = self._gate
        if gate is not None and gate.at_rest():
            self._gate = None

    def _ping(self) -> None:
        raise NotImplementedError
