"""
The line protocol's connection, as telnet, C{openssl s_client} and the
bundled client speak it: it frames lines, hands each to the reply pipeline,
writes replies and what the service delivers.  The commands are in
L{chatroom.protocol.line.commands}; the rules in the service layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatroom.errors import ChatError, RateLimited, ServerError, WrongProtocol
from chatroom.protocol.address import looks_like_http, looks_like_tls
from chatroom.protocol.connection import Connection
from chatroom.protocol.limits import ByteRate
from chatroom.protocol.line import commands, wire
from chatroom.protocol.line.commands import CommandLine
from chatroom.protocol.line.pipeline import Answer, ReplyPipeline
from chatroom.protocol.output import OutputQueue, RoomFan
from chatroom.service.admission import Admission, Admitted
from chatroom.service.events import (
    ACTION,
    AwayChanged,
    E2EMessage,
    Membership,
    PrivateMessage,
    RoomMessage,
)
from chatroom.service.interfaces import IChatClient, IUser

GREETING = (
    "welcome to chatroom: /register NAME PASSWORD, /login NAME PASSWORD,"
    " or type your name; /help lists every command"
)
PING = "ping"

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
class LineProtocol(Connection):
    log = Logger()
    # One per connection, most of them idle (see Connection's).
    __slots__ = (
        "_expecting",
        "_bytes",
        "_sniffing",
        "_first_line",
        "_pipeline",
        "timestamps",
    )

    def __init__(self) -> None:
        super().__init__()
        self._expecting: Callable[[str], Awaitable[commands.Reply]] | None = None
        self._bytes: ByteRate | None = None
        # The first bytes are checked for HTTP and TLS.
        self._sniffing = True
        self._first_line = True
        self._pipeline: ReplyPipeline[CommandLine | str] | None = None
        # /set timestamps on: live messages start with their time.
        self.timestamps = False

    # The connection, as the command handlers see it

    @property
    def admission(self) -> Admission:
        return self.factory.admission

    def admitted(self, admitted: Admitted) -> IUser:
        if not self.connected:
            # The client left while the password was being checked.
            admitted.logout()
            raise ServerError("connection closed")
        self._become(admitted)
        if not self.transport.disconnecting:
            self._start_idle_checks()
        return self.avatar

    def expect(self, handler: Callable[[str], Awaitable[commands.Reply]]) -> None:
        self._expecting = handler

    # Lines in

    def connectionMade(self) -> None:
        super().connectionMade()
        factory = self.factory
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
        if data and self.connected:
            rate = self._bytes or self._byte_rate()
            if rate is not None:
                rate.received(len(data))

    def _byte_rate(self) -> ByteRate | None:
        """The byte-rate limit, made at the first bytes; None if there is none."""
        limits = self.factory.limits
        if not limits.byte_rate:
            return None
        self._bytes = ByteRate(
            limits.byte_rate, limits.byte_burst, self.factory.clock, self
        )
        return self._bytes

    def lineReceived(self, line: bytes) -> None:
        self._quiet = False
        if self._first_line:
            self._first_line = False
            if looks_like_http(line):
                self._refuse_protocol("HTTP")
                return
        if self._through_gate():
            super().lineReceived(line)

    def lineRefused(self, error: ChatError) -> None:
        """
        A line its transport refused before framing (a WebSocket binary
        frame): counted by the line rate as any line is, then answered in
        the order of the lines.
        """
        self._quiet = False
        self._first_line = False
        if self._through_gate():
            self.textRefused(error)

    def _through_gate(self) -> bool:
        """Whether the line rate lets this line in; if not, it is answered."""
        gate = self._gate or self._flood_gate()
        if gate is not None:
            verdict = gate.admit()
            if verdict != "ok":
                if verdict == "refuse":
                    self.textRefused(RateLimited())
                else:
                    self._flooded()
                return False
        return True

    def textReceived(self, text: str) -> None:
        # A line that answers a prompt (a password) is not a command.
        pipeline = self._pipeline or self._reply_pipeline()
        pipeline.offer(text if self._expecting else commands.parse(text))

    def textRefused(self, error: ChatError) -> None:
        pipeline = self._pipeline or self._reply_pipeline()
        pipeline.run(self._refusal(error), overlaps=True)

    def _reply_pipeline(self) -> ReplyPipeline[CommandLine | str]:
        # Made at the first line: a connection that sends none needs none.
        self._pipeline = ReplyPipeline(self, self.factory.in_flight)
        return self._pipeline

    # The pipeline's owner

    def rested(self, pipeline: ReplyPipeline[CommandLine | str]) -> None:
        if self._pipeline is pipeline:
            self._pipeline = None

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
        if self._bytes is not None:
            self._bytes.stop()
        super().connectionLost(reason)

    # What the service delivers (IChatClient)

    room_fan = RoomFan

    def room_fan_key(self) -> bool | None:
        return self.timestamps if self._may_share() else None

    def room_encoding(self, message: RoomMessage, timestamps: bool) -> bytes:
        # Encoded once for every recipient.
        line = message.wire
        if line is None:
            encode = wire.room_action if message.kind == ACTION else wire.room_message
            line = message.wire = encode(message.room, message.sender, message.text)
        if timestamps:
            line = wire.timestamped(message.at, line)
        return line

    def room_message(self, message: RoomMessage) -> None:
        self.write(self.room_encoding(message, self.timestamps))

    def private_message(self, message: PrivateMessage) -> None:
        line = message.wire
        if line is None:
            encode = (
                wire.private_action if message.kind == ACTION else wire.private_message
            )
            line = message.wire = encode(message.sender, message.text)
        if self.timestamps:
            line = wire.timestamped(message.at, line)
        self.write(line)

    def e2e_message(self, message: E2EMessage) -> None:
        # Its own time is in the line: never a timestamp in front of "~".
        line = message.wire
        if line is None:
            line = message.wire = wire.e2e_message(
                message.sender,
                message.sender_device,
                message.recipient,
                message.device,
                message.msgid,
                message.at,
                message.ciphertext,
            )
        self.write(line)

    def notice(self, text: str) -> None:
        self.write(wire.notice(text))

    def membership(self, event: Membership) -> None:
        # The line protocol shows membership changes as the notices it always has.
        self.write(wire.notice(event.text))

    def away_changed(self, event: AwayChanged) -> None:
        # Not pushed: a notice per change would disturb a telnet user more
        # than it helps; /who and /whois show who is away.
        return None

    def disconnect(self, reason: str) -> None:
        self.write(wire.notice(reason))
        self._hang_up()

    # Lines out, and what they cost

    def _log_cut(self, why: str, output: OutputQueue) -> None:
        self.log.warn(
            _CUT[why],
            peer=self.peer,
            user=self.avatar.name if self.avatar is not None else "-",
            queued=output.queued,
            limit=output.hard,
            stall=output.stall,
        )

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

    def _close_for_login_timeout(self) -> None:
        if self.avatar is None and self.connected:
            self.log.info("{peer} did not log in in time", peer=self.peer)
            self.disconnect(
                f"login timed out after {self.factory.limits.login_timeout:g} s"
            )

    def idle_check(self) -> None:
        super().idle_check()
        if self._bytes is not None and self._bytes.at_rest():
            self._bytes = None
        if self._pipeline is not None and self._pipeline.at_rest():
            self._pipeline = None

    def _ping(self) -> None:
        # Sent now, so that the ping is not traffic at the next look.
        self.write(wire.notice(PING))
        self.flush()
