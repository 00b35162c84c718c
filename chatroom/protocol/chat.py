"""
The chat's line protocol, as telnet, C{openssl s_client} and the bundled
client speak it.  It frames lines, runs commands so that replies come back
in the order of the lines, and writes what the service delivers.  The rules
live in L{chatroom.commands} and the avatar.

Ordering: each line's reply waits for the reply before it.  A command runs
alone, except that messages (which only wait on storage) may overlap with
the messages before them, up to L{MAX_PIPELINE}: a client that sends fast
is not held to one storage commit per message.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from chatroom import commands
from chatroom.errors import ChatError, RateLimited, ServerError, WrongProtocol
from chatroom.protocol import wire
from chatroom.protocol.limits import (
    FloodGate,
    OutputQueue,
    RegistrationLimit,
    looks_like_http,
    looks_like_tls,
    set_no_delay,
    set_user_timeout,
)
from chatroom.protocol.lines import ChatLineReceiver
from chatroom.service.chat import ChatService
from chatroom.service.events import PrivateMessage, RoomMessage
from chatroom.service.interfaces import IChatClient, IUser
from chatroom.service.throttle import LoginThrottle

GREETING = (
    "welcome to chatroom: /register NAME PASSWORD, /login NAME PASSWORD,"
    " or type your name; /help lists every command"
)
PING = "ping"
# Seconds a closing connection may take to send what is queued for it.
CLOSE_GRACE = 10.0
# Messages of one connection waiting on storage at once; past it, we stop
# reading from that connection.
MAX_PIPELINE = 64
# Lines in flight on all connections at once past which a connection that
# has one in flight already stops reading: a server behind on its work keeps
# the backlog in socket buffers, not in Python objects that the garbage
# collector walks again and again (which made an overloaded server collapse).
MAX_IN_FLIGHT = 1000


def address_of(addr) -> str:
    """What connections are counted by: the IP address, whatever the port."""
    return getattr(addr, "host", None) or str(addr)


@implementer(IChatClient)
class ChatProtocol(ChatLineReceiver):
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
        "_output",
        "_drain_waiters",
        "_timer",
        "_quiet",
        "watched_for_idle",
        "_sniffing",
        "_first_line",
        "_in_flight",
        "_only_messages",
        "_last_reply",
        "_held",
    )

    def __init__(self) -> None:
        self.avatar: IUser | None = None
        self._logout: Callable[[], None] | None = None
        self._expecting: Callable[[str], Awaitable[commands.Reply]] | None = None
        self.peer = "?"
        self.connected = False
        self._gate: FloodGate | None = None
        self._output: OutputQueue | None = None
        # Waiting for the output queue to drain (IChatClient.drained).
        self._drain_waiters: list[defer.Deferred[bool]] | None = None
        # The login timeout before login, the idle check after.
        self._timer: IDelayedCall | None = None
        # Nothing sent or received since the idle check last looked.
        self._quiet = True
        # Logged in, so looked at by the factory's idle check.
        self.watched_for_idle = False
        # The first bytes are checked for HTTP and TLS.
        self._sniffing = True
        self._first_line = True
        # Lines started and not yet answered, and whether all are messages.
        self._in_flight = 0
        self._only_messages = True
        # Fires once the reply of the last line started has been written.
        self._last_reply: defer.Deferred | None = None
        # A line that must wait for the ones in flight before it starts.
        self._held: str | None = None

    # The connection, as the command handlers see it

    @property
    def accounts(self) -> ChatService:
        return self.factory.service

    @property
    def throttle(self) -> LoginThrottle:
        return self.factory.throttle

    @property
    def registrations(self) -> RegistrationLimit | None:
        return self.factory.registrations

    async def login(self, credentials) -> IUser:
        _, avatar, logout = await self.factory.portal.login(credentials, self, IUser)
        if not self.connected:
            # The client left while the password was being checked.
            logout()
            raise ServerError("connection closed")
        self.avatar, self._logout = avatar, logout
        if not self.transport.disconnecting:
            self._start_idle_checks()
        return avatar

    def expect(self, handler: Callable[[str], Awaitable[commands.Reply]]) -> None:
        self._expecting = handler

    # Lines in

    def connectionMade(self) -> None:
        # Interned: thousands of connections from one address share one string.
        self.peer = sys.intern(address_of(self.transport.getPeer()))
        factory = self.factory
        factory.opened(self)
        limits, clock = factory.limits, factory.clock
        if limits.rate:
            self._gate = FloodGate(limits, clock)
        if limits.output_hard:
            self._output = OutputQueue(
                limits.output_soft, limits.output_hard, self._backed_up, self._overflow
            )
            self._output.attach(self.transport)
        if limits.login_timeout:
            self._timer = clock.callLater(limits.login_timeout, self._login_timed_out)
        if limits.ping_interval:
            set_user_timeout(self.transport, limits.ping_timeout)
        set_no_delay(self.transport)
        factory.service.record(None, self.peer, "connect")
        self._send(wire.notice(GREETING))

    def dataReceived(self, data: bytes) -> None:
        if self._sniffing:
            prefix = self._buffer + data
            if len(prefix) >= 2 or b"\n" in prefix:
                self._sniffing = False
                if looks_like_tls(prefix):
                    self._refuse_protocol("TLS")
                    return
        super().dataReceived(data)

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
        pipelined = self._pipelined(text)
        if self._may_start(pipelined):
            self._start(self._answer(text), pipelined)
        else:
            # It waits for what is in flight; so do the lines behind it, in
            # the socket, not in our memory.
            self._held = text
            self.stop_reading("command")

    def textRefused(self, error: ChatError) -> None:
        self._start(self._refusal(error), pipelined=True)

    def _pipelined(self, text: str) -> bool:
        return (
            self.avatar is not None
            and self._expecting is None
            and commands.is_pipelined(text)
        )

    def _may_start(self, pipelined: bool) -> bool:
        """Whether a line starts now: alone, or a message behind messages."""
        if not self._in_flight:
            return True
        return (
            pipelined
            and self._only_messages
            and self._in_flight < MAX_PIPELINE
            and self.factory.in_flight < self.factory.max_in_flight
        )

    def _start(self, answer, pipelined: bool) -> None:
        """Run C{answer}; its reply goes out after the reply before it."""
        before, written = self._last_reply, defer.Deferred()
        self._last_reply = written
        self._in_flight += 1
        self.factory.in_flight += 1
        self._only_messages = self._only_messages and pipelined
        defer.ensureDeferred(self._reply_in_turn(answer, before, written))

    async def _reply_in_turn(self, answer, before, written) -> None:
        try:
            reply, then = await answer
            if before is not None:
                await before
            self._send(reply)
            if then is not None:
                await then()
        except Exception:
            self.log.failure("answering {peer}", peer=self.peer)
        finally:
            self._in_flight -= 1
            self.factory.in_flight -= 1
            if not self._in_flight:
                self._last_reply, self._only_messages = None, True
            written.callback(None)
            self._start_held()

    def _start_held(self) -> None:
        held = self._held
        # Whether it is a message is decided now: the lines before it may
        # have logged in, or be waiting for a password.
        if (
            held is not None
            and self.connected
            and self._may_start(self._pipelined(held))
        ):
            self._held = None
            self.textReceived(held)
            if self._held is None:
                self.resume_reading("command")

    async def _refusal(self, error: ChatError):
        return wire.err(error.code, error.message), None

    async def _answer(self, text: str):
        """The reply to C{text} as bytes, and what to do once it is sent."""
        handler, self._expecting = self._expecting, None
        try:
            if handler is not None:
                reply = await handler(text)
            else:
                reply = await commands.dispatch(self, text)
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

    async def _hang_up_after_reply(self) -> None:
        self._hang_up()

    def connectionLost(self, reason) -> None:
        self.connected = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.watched_for_idle:
            self.watched_for_idle = False
            self.factory.unwatch_idle()
        # The transport stops its producer itself.
        self._output = None
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
        line = message.wire
        if line is None:
            line = message.wire = wire.room_message(
                message.room, message.sender, message.text
            )
        self._send(line)

    def private_message(self, message: PrivateMessage) -> None:
        line = message.wire
        if line is None:
            line = message.wire = wire.private_message(message.sender, message.text)
        self._send(line)

    def notice(self, text: str) -> None:
        self._send(wire.notice(text))

    def disconnect(self, reason: str) -> None:
        self._send(wire.notice(reason))
        self._hang_up()

    def drained(self) -> defer.Deferred[bool]:
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

    def _send(self, data: bytes) -> None:
        """Every write goes here: the hot path of fan-out, so it stays short."""
        self.transport.write(data)
        self._quiet = False
        output = self._output
        if output is not None and output.backed_up:
            output.wrote(len(data))

    def _backed_up(self, backed_up: bool) -> None:
        # Past the soft limit: read no more commands until the client catches up.
        if backed_up:
            self.stop_reading("output")
        else:
            self.resume_reading("output")
            self._drain_waiters_fire(True)

    def _overflow(self, queued: int) -> None:
        self.log.warn(
            "disconnecting {peer} ({user}): not reading, {queued} bytes queued"
            " passed the limit of {limit}",
            peer=self.peer,
            user=self.avatar.name if self.avatar is not None else "-",
            queued=queued,
            limit=self._output.hard,
        )
        output, self._output = self._output, None
        output.detach()
        self.transport.abortConnection()
        self._drain_waiters_fire(False)

    def _hang_up(self) -> None:
        """Close once what is queued is sent, or after a grace period if stuck."""
        # What is still queued may never arrive: nobody may count it delivered.
        self._drain_waiters_fire(False)
        output, self._output = self._output, None
        if output is not None:
            # A registered producer would keep the transport open.
            output.detach()
            if output.backed_up and self.connected:
                self._set_timer(CLOSE_GRACE, self.transport.abortConnection)
        self.transport.loseConnection()

    def _refuse_protocol(self, spoken: str) -> None:
        self.log.info(
            "{peer} spoke {spoken} to the line port", peer=self.peer, spoken=spoken
        )
        advice = {
            "TLS": "this port is plain text: connect without TLS, or to the TLS port",
            "HTTP": "this is a chat server, not a web server: use telnet or the"
            " chatroom client",
        }[spoken]
        error = WrongProtocol(advice)
        self._send(wire.err(error.code, error.message))
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
            self._send(wire.notice(PING))
        self._quiet = True
