"""
The order of replies: each line's reply waits for the reply before it.

A line runs alone, except that messages (which only wait on storage) may
overlap with the messages before them, up to L{MAX_PIPELINE} per connection
and L{MAX_IN_FLIGHT} on the whole server: a client that sends fast is not
held to one storage commit per message, and a server behind on its work
keeps the backlog in socket buffers, not in Python objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from twisted.internet import defer
from twisted.logger import Logger

from chatroom.protocol.factory import InFlight

# Messages of one connection waiting on storage at once; past it, we stop
# reading from that connection.
MAX_PIPELINE = 64
# Once full, reading resumes when no more than this many are in flight: not
# at every answer, which paused and resumed the socket (two epoll_ctl calls)
# once per message of a client that sends flat out.
RESUME_AT = MAX_PIPELINE // 2

Item = TypeVar("Item")
# What an answered line leaves: its reply, and what to run once it is sent.
Answer = tuple[bytes, Callable[[], Awaitable[None]] | None]


class PipelineOwner(Protocol[Item]):
    """The connection a pipeline orders replies for."""

    connected: bool

    def overlaps(self, item: Item) -> bool:
        """Whether C{item} may start before earlier replies (a message)."""

    def answer(self, item: Item) -> Awaitable[Answer]:
        """Run C{item}; its reply as bytes and what to do once it is sent."""

    def answer_at_once(self, item: Item) -> defer.Deferred[bytes] | None:
        """
        Run C{item}, one that overlaps, without a coroutine if it is one
        that can be (a plain message): its reply, never failing, with
        nothing to run after it; else None, and L{answer} runs it.
        """

    def write(self, data: bytes) -> None: ...

    def stop_reading(self, reason: str) -> None: ...

    def resume_reading(self, reason: str) -> None: ...

    def rested(self, pipeline: ReplyPipeline[Item]) -> None:
        """C{pipeline} answered a command and has nothing left: it may go."""


class ReplyPipeline(Generic[Item]):
    """Runs one connection's lines so that their replies go out in order."""

    log = Logger()
    __slots__ = (
        "_owner",
        "_shared",
        "_in_flight",
        "_only_messages",
        "_last_reply",
        "_held",
        "_refilling",
    )

    def __init__(self, owner: PipelineOwner[Item], shared: InFlight) -> None:
        self._owner = owner
        self._shared = shared
        # Lines started and not yet answered, and whether all are messages.
        self._in_flight = 0
        self._only_messages = True
        # Fires once the reply of the last line started has been written.
        self._last_reply: defer.Deferred | None = None
        # A line that must wait for the ones in flight before it starts.
        self._held: Item | None = None
        # The held line has started; reading resumes at RESUME_AT.
        self._refilling = False

    def offer(self, item: Item) -> None:
        """Start C{item} now if it may; else hold it and stop reading."""
        owner = self._owner
        overlaps = owner.overlaps(item)
        if self._may_start(overlaps):
            reply = owner.answer_at_once(item) if overlaps else None
            if reply is not None:
                self.run_message(reply)
            else:
                self.run(owner.answer(item), overlaps)
        else:
            # It waits for what is in flight; so do the lines behind it, in
            # the socket, not in our memory.
            self._held = item
            self._owner.stop_reading("command")

    def run(self, answer: Awaitable[Answer], overlaps: bool) -> None:
        """Run C{answer}; its reply goes out after the reply before it."""
        before, written = self._last_reply, defer.Deferred()
        self._last_reply = written
        self._in_flight += 1
        self._shared.started()
        self._only_messages = self._only_messages and overlaps
        defer.ensureDeferred(self._reply_in_turn(answer, before, written))

    def run_message(self, reply: defer.Deferred[bytes]) -> None:
        """
        Run a message (L{PipelineOwner.answer_at_once}): C{reply} fires with
        its reply, which never fails and has nothing to run after it.  The
        line nearly every client sends, so no coroutine: a coroutine and its
        Deferred cost more than the rest of the line's path.
        """
        before, written = self._last_reply, defer.Deferred()
        self._last_reply = written
        self._in_flight += 1
        self._shared.started()
        reply.addCallback(self._write_in_turn, before, written)

    def _write_in_turn(
        self, reply: bytes, before: defer.Deferred | None, written: defer.Deferred
    ) -> None:
        if before is not None and not before.called:
            # Storage commits in order, so this is rare: a command before it.
            before.addCallback(lambda _: self._write_in_turn(reply, None, written))
            return
        try:
            self._owner.write(reply)
        except Exception:
            self.log.failure("answering a line")
        finally:
            self._answered(written)

    def _may_start(self, overlaps: bool) -> bool:
        """Whether a line starts now: alone, or a message behind messages."""
        if not self._in_flight:
            return True
        shared = self._shared
        return (
            overlaps
            and self._only_messages
            and self._in_flight < MAX_PIPELINE
            and shared.count < shared.limit
        )

    async def _reply_in_turn(self, answer, before, written) -> None:
        owner = self._owner
        try:
            reply, then = await answer
            if before is not None:
                await before
            owner.write(reply)
            if then is not None:
                await then()
        except Exception:
            self.log.failure("answering a line")
        finally:
            self._answered(written)
        # Most connections' last line before they idle is a command (a login,
        # a join), and its coroutine costs more than a new pipeline would.
        if self.at_rest():
            owner.rested(self)

    def _answered(self, written: defer.Deferred) -> None:
        self._in_flight -= 1
        self._shared.finished()
        if not self._in_flight:
            self._last_reply, self._only_messages = None, True
        written.callback(None)
        self._start_held()

    def at_rest(self) -> bool:
        """Nothing in flight or held, as in a new one: it may be dropped."""
        return not self._in_flight and self._held is None

    def _start_held(self) -> None:
        held = self._held
        # Whether it overlaps is decided now: the lines before it may have
        # logged in, or be waiting for a password.
        if (
            held is not None
            and self._owner.connected
            and self._may_start(self._owner.overlaps(held))
        ):
            self._held = None
            self.offer(held)
            if self._held is None:
                self._refilling = True
        if self._refilling and self._held is None and self._in_flight <= RESUME_AT:
            self._refilling = False
            self._owner.resume_reading("command")
