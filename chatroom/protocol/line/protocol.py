"""
The line protocol's connection, as telnet, C{openssl s_client} and the
bundled client speak it: it frames lines, hands each to the reply pipeline,
writes replies and what the service delivers.  The commands are in
L{chatroom.protocol.line.commands}; the rules in the service layer.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatroom.errors import ChatError, RateLimited, ServerError, WrongProtocol
from chatroom.protocol.address import (
    address_of,
    looks_like_http,
    looks_like_tls,
    set_no_delay,
    set_user_timeout,
)
from chatroom.protocol.framing import LineFraming
from chatroom.protocol.limits import ByteRate, FloodGate
from chatroom.protocol.line import commands, wire
from chatroom.protocol.line.commands import CommandLine
from chatroom.protocol.line.pipeline import Answer, ReplyPipeline
from chatroom.protocol.output import CoalescedWrites, OutputQueue
from chatroom.service.admission import Admission, Admitted
from chatroom.service.events import Membership, PrivateMessage, RoomMessage
from chatroom.service.interfaces import IChatClient, IUser

GREETING = (
    "welcome to chatroom: /register NAME PASSWORD, /login NAME PASSWORD,"
    " or type your name; /help lists every command"
)
PING = "ping"
# Seconds a closing connection may take to send what is queued for it.
CLOSE_GRACE = 10.0
# Seconds a timed-out connection gets to take its notice before it is cut:
# a TLS handshake that never finishes would hold a clean close forever.
TIMEOUT_GRACE = 1.0

# Why a client that does not read is cut, as the log says it.
_CUT = {
    "hard": "disconnecting {peer} ({user}): not reading, {queued} bytes queued"
    " passed the limit of {limit}",
    "stall": "disconnecting {peer} ({user}): not reading, took nothing of"
    " {queued} bytes queued for {stall:g} s",
}
_ADVICE = {
    "TLS": "this port is plain text: connect without TLS, or to the TLS port",
    "HTTP": "this is a chat server, not a web server: use telnet or the"
    " chatroom client",
}


_OK = wire.ok()


def _ok_reply(_: object) -> bytes:
    return _OK


@implementer(IChatClient)
class LineProtocol(CoalescedWrites, LineFraming):
    log = Logger()
    # One per connection, most of them idle: slots keep each small (Twisted's
    # own attributes still live in the instance dict).
    __slots__ = (
        "avatar",
        "_logout",
        "_expecting",
        "peer",
        "connected",
        "_gate",
        "_bytes",
        "_drain_waiters",
        "_timer",
        "_quiet",
        "watched_for_idle",
        "_sniffing",
        "_first_line",
        "_pipeline",
    )

    def __init__(self) -> None:
        self.avatar: IUser | None = None
        self._logout: Callable[[], None] | None = None
        self._expecting: Callable[[str], Awaitable[commands.Reply]] | None = None
        self.peer = "?"
        self.connected = False
        self._gate: FloodGate | None = None
        self._bytes: ByteRate | None = None
        self._output: OutputQueue | None = None
        # What was written this reactor turn, not flushed yet (CoalescedWrites).
        self._pending: list[bytes] | None = None
        # Waiting for the output queue to drain (IChatClient.drained).
        self._drain_waiters: list[defer.Deferred[bool]] | None = None
        # The login timeout before login.
        self._timer: IDelayedCall | None = None
        # Nothing sent or received since the idle check last looked.
        self._quiet = True
        # Logged in, so looked at by the factory's idle check.
        self.watched_for_idle = False
        # The first bytes are checked for HTTP and TLS.
        self._sniffing = True
        self._first_line = True
        self._pipeline: ReplyPipeline[CommandLine | str] | None = None

    # The connection, as the command handlers see it

    @property
    def admission(self) -> Admission:
        return self.factory.admission

    def admitted(self, admitted: Admitted) -> IUser:
        if not self.connected:
            # The client left while the password was being checked.
            admitted.logout()
            raise ServerError("connection closed")
        self.avatar, self._logout = admitted.avatar, admitted.logout
        if not self.transport.disconnecting:
            self._start_idle_checks()
        return self.avatar

    def expect(self, handler: Callable[[str], Awaitable[commands.Reply]]) -> None:
        self._expecting = handler

    # Lines in

    def connectionMade(self) -> None:
        # Interned: thousands of connections from one address share one string.
        self.peer = sys.intern(address_of(self.transport.getPeer()))
        factory = self.factory
        factory.opened(self)
        limits, clock = factory.limits, factory.clock
        self._pipeline = ReplyPipeline(self, factory.in_flight)
        if limits.rate:
            self._gate = FloodGate(limits, clock)
        if limits.byte_rate:
            self._bytes = ByteRate(limits.byte_rate, limits.byte_burst, clock, self)
        if limits.output_hard:
            self._output = OutputQueue(
                limits.output_soft,
                limits.output_hard,
                limits.output_stall,
                clock,
                self._backed_up,
                self._cut,
            )
            self._output.attach(self.transport)
        if limits.login_timeout:
            self._timer = clock.callLater(limits.login_timeout, self._login_timed_out)
        if limits.ping_interval:
            set_user_timeout(self.transport, limits.ping_timeout)
        set_no_delay(self.transport)
        factory.chat.record(None, self.peer, "connect")
        self.write(wire.notice(GREETING))

    def dataReceived(self, data: bytes) -> None:
        if self._sniffing:
            prefix = self._buffer + data
            if len(prefix) >= 2 or b"\n" in prefix:
                self._sniffing = False
                if looks_like_tls(prefix):
                    self._refuse_protocol("TLS")
                    return
        # What came is read; more is read once the byte rate allows it.
        super().dataReceived(data)
        if self._bytes is not None and data and self.connected:
            self._bytes.received(len(data))

    def lineReceived(self, line: bytes) -> None:
        self._quiet = False
        if self._first_line:
            self._first_line = False
            if looks_like_http(line):
                self._refuse_protocol("HTTP")
                return
        gate = self._gate
        if gate is not None:
            verdict = gate.admit()
            if verdict != "ok":
                if verdict == "refuse":
                    self.textRefused(RateLimited())
                else:
                    self._flooded()
                return
        super().lineReceived(line)

    def textReceived(self, text: str) -> None:
        # A line that answers a prompt (a password) is not a command.
        self._pipeline.offer(text if self._expecting else commands.parse(text))

    def textRefused(self, error: ChatError) -> None:
        self._pipeline.run(self._refusal(error), overlaps=True)

    # The pipeline's owner

    def overlaps(self, line: CommandLine | str) -> bool:
        return (
            self.avatar is not None
            and self._expecting is None
            and type(line) is CommandLine
            and line.pipelined
        )

    def answer_at_once(self, line: CommandLine) -> defer.Deferred[bytes] | None:
        # A plain message, the line nearly every client sends: answered as
        # commands.dispatch would, without a coroutine.
        if line.word is not None:
            return None
        try:
            stored = self.avatar.say(None, line.args)
        except Exception:
            return defer.succeed(self._error_reply(Failure()))
        return stored.addCallbacks(_ok_reply, self._error_reply)

    def _error_reply(self, failure: Failure) -> bytes:
        if failure.check(ChatError):
            error = failure.value
        else:
            self.log.failure("command from {peer} failed", failure, peer=self.peer)
            error = ServerError()
        return wire.err(error.code, error.message)

    async def answer(self, line: CommandLine | str) -> Answer:
        """The reply to C{line} as bytes, and what to do once it is sent."""
        handler, self._expecting = self._expecting, None
        try:
            if handler is not None:
                # Held while a prompt was pending, it was parsed: take it whole.
                text = line.text if type(line) is CommandLine else line
                reply = await handler(text)
            else:
                if type(line) is not CommandLine:
                    line = commands.parse(line)
                reply = await commands.dispatch(self, line)
        except ChatError as e:
            return wire.err(e.code, e.message), None
        except Exception:
            self.log.failure("command from {peer} failed", peer=self.peer)
            error = ServerError()
            return wire.err(error.code, error.message), None
        out = [wire.data(line) for line in reply.data]
        out.append(wire.ok(reply.text))
        if reply.close:
            return b"".join(out), self._hang_up_after_reply
        return b"".join(out), reply.then

    async def _refusal(self, error: ChatError) -> Answer:
        return wire.err(error.code, error.message), None

    async def _hang_up_after_reply(self) -> None:
        self._hang_up()

    def connectionLost(self, reason) -> None:
        self.connected = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._bytes is not None:
            self._bytes.stop()
        if self.watched_for_idle:
            self.watched_for_idle = False
            self.factory.unwatch_idle()
        # The transport stops its producer itself.
        self._output = None
        self.drop_output()
        self.factory.unwatch_output(self)
        if self._logout is not None:
            logout, self._logout = self._logout, None
            logout()
        self.avatar = None
        self._drain_waiters_fire(False)
        # Last: at shutdown this may let storage close, so the logout's
        # record must already be queued.
        self.factory.closed(self)

    # What the service delivers (IChatClient)

    def room_message(self, message: RoomMessage) -> None:
        # The hot path of fan-out: encoded once for every recipient, and
        # appended to this turn's output without a call (CoalescedWrites.write).
        line = message.wire
        if line is None:
            line = message.wire = wire.room_message(
                message.room, message.sender, message.text
            )
        pending, output = self._pending, self._output
        if pending is None or (output is not None and output.backed_up):
            self.write(line)
        else:
            pending.append(line)

    def private_message(self, message: PrivateMessage) -> None:
        line = message.wire
        if line is None:
            line = message.wire = wire.private_message(message.sender, message.text)
        self.write(line)

    def notice(self, text: str) -> None:
        self.write(wire.notice(text))

    def membership(self, event: Membership) -> None:
        # The line protocol shows membership changes as the notices it always has.
        self.write(wire.notice(event.text))

    def disconnect(self, reason: str) -> None:
        self.write(wire.notice(reason))
        self._hang_up()

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

    # Lines out, and what they cost

    def sent(self) -> None:
        self._quiet = False

    def _backed_up(self, backed_up: bool) -> None:
        # Past the soft limit: read no more commands until the client catches
        # up, and watch that it takes something meanwhile.
        if backed_up:
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
        self.log.warn(
            _CUT[why],
            peer=self.peer,
            user=self.avatar.name if self.avatar is not None else "-",
            queued=output.queued,
            limit=output.hard,
            stall=output.stall,
        )
        self.factory.unwatch_output(self)
        output.detach()
        self.drop_output()
        self.transport.abortConnection()
        self._drain_waiters_fire(False)

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

    def _refuse_protocol(self, spoken: str) -> None:
        self.log.info(
            "{peer} spoke {spoken} to the line port", peer=self.peer, spoken=spoken
        )
        error = WrongProtocol(_ADVICE[spoken])
        self.write(wire.err(error.code, error.message))
        self._hang_up()

    def _flooded(self) -> None:
        self.log.warn(
            "disconnecting {peer} ({user}): kept sending faster than the rate limit",
            peer=self.peer,
            user=self.avatar.name if self.avatar is not None else "-",
        )
        self.disconnect("disconnected: too many lines too fast")

    # Timers: the login timeout, then the idle ping

    def _set_timer(self, delay: float, call: Callable[[], object]) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self.factory.clock.callLater(delay, call)

    def _login_timed_out(self) -> None:
        self._timer = None
        if self.avatar is None and self.connected:
            self.log.info("{peer} did not log in in time", peer=self.peer)
            self.disconnect(
                f"login timed out after {self.factory.limits.login_timeout:g} s"
            )
            self._set_timer(TIMEOUT_GRACE, self.transport.abortConnection)

    def _start_idle_checks(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.factory.limits.ping_interval and not self.watched_for_idle:
            self._quiet = True
            self.watched_for_idle = True
            self.factory.watch_idle()

    def idle_check(self) -> None:
        """
        Called once per ping interval: after a whole interval of silence both
        ways, send something, so a dead peer shows (the kernel's user
        timeout) and NAT keeps the mapping.
        """
        if self._quiet:
            # Sent now, so that the ping is not traffic at the next look.
            self.write(wire.notice(PING))
            self.flush()
        self._quiet = True
