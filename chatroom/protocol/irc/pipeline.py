"""
Which of a connection's IRC commands run at once, and the order of their
replies.

A command runs alone, except that messages (PRIVMSG and NOTICE, which
wait only on storage) overlap with the messages before them, up to
L{MAX_PIPELINE} per connection and the server's in-flight limit: a client
that sends fast is not held to one storage commit per line, and a reactor
turn that reads several messages fans them out together, one write per
member.  A reply (an error numeric, an echo) that a command writes while
an earlier one still runs is held, and written once those are done.

Each command's coroutine runs in a context of its own (Twisted copies it
when the coroutine starts), so L{current} tells, at any await, which
command a write belongs to.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable
from typing import Protocol

from twisted.internet import defer

from chatroom.protocol.factory import InFlight
from chatroom.protocol.irc.message import Message

# Messages of one connection running at once; past it, we stop reading.
MAX_PIPELINE = 64
# Once full, reading resumes when no more than this many run: not at every
# finished message, which paused and resumed the socket (two epoll_ctl
# calls) once per message of a client that sends flat out.
RESUME_AT = MAX_PIPELINE // 2
OVERLAPPING = frozenset({"PRIVMSG", "NOTICE"})


class Running:
    """A command that has not finished; C{held} its replies while it is
    behind another (None once nothing runs before it)."""

    __slots__ = ("conn", "held", "done")

    def __init__(self, conn: object, behind: bool) -> None:
        self.conn = conn
        self.held: list[bytes] | None = [] if behind else None
        self.done = False


# The command running in this context, if it was started behind another.
current: contextvars.ContextVar[Running | None] = contextvars.ContextVar(
    "irc_command", default=None
)


class PipelineOwner(Protocol):
    def takes_commands(self) -> bool:
        """Connected and not closing: a command may still run."""

    def overlaps(self, msg: Message) -> bool:
        """Whether C{msg} may run while messages before it do."""

    def run_command(self, msg: Message) -> defer.Deferred[None]:
        """Run C{msg} now; fires once it is done (never fails)."""

    def write_now(self, data: bytes) -> None:
        """Write, whatever command is running."""

    def stop_reading(self, reason: str) -> None: ...

    def resume_reading(self, reason: str) -> None: ...

    def rested(self) -> None:
        """Nothing runs or waits: the pipeline may go."""


class CommandPipeline:
    """One connection's running commands, oldest first."""

    __slots__ = (
        "_owner",
        "_shared",
        "_running",
        "_only_messages",
        "_waiting",
        "_refilling",
    )

    def __init__(self, owner: PipelineOwner, shared: InFlight) -> None:
        self._owner = owner
        self._shared = shared
        self._running: deque[Running] = deque()
        self._only_messages = True
        # A command read while others run and that may not start yet: the
        # lines behind it wait in the socket, not here.
        self._waiting: Message | None = None
        # The waiting command has started; reading resumes at RESUME_AT.
        self._refilling = False

    def busy(self) -> bool:
        return bool(self._running)

    def track(self, done: defer.Deferred[None], overlaps: bool) -> None:
        """Follow a command started with nothing before it, until C{done}."""
        self._add(Running(self._owner, behind=False), done, overlaps)

    def offer(self, msg: Message) -> None:
        """A command read while others ran: start it if it may, else hold it."""
        overlaps = self._owner.overlaps(msg)
        if not self._running:
            self._start_first(msg, overlaps)
        elif self._may_start(overlaps):
            self._start_behind(msg, overlaps)
        else:
            self._waiting = msg
            self._owner.stop_reading("command")

    def answer_in_turn(self, answer: Callable[..., None], *args) -> None:
        """
        A line answered at once, unrun (refused): what C{answer(*args)}
        writes goes out after the replies of the commands before it.
        """
        entry = Running(self._owner, behind=True)
        contextvars.copy_context().run(self._answer_as, entry, answer, args)
        entry.done = True
        self._running.append(entry)

    @staticmethod
    def _answer_as(entry: Running, answer: Callable[..., None], args: tuple) -> None:
        current.set(entry)
        answer(*args)

    def _may_start(self, overlaps: bool) -> bool:
        shared = self._shared
        return (
            overlaps
            and self._only_messages
            and len(self._running) < MAX_PIPELINE
            and shared.count < shared.limit
        )

    def _start_first(self, msg: Message, overlaps: bool) -> None:
        # Its replies go straight out, whichever command's callback this is.
        done = contextvars.copy_context().run(self._run_as, None, msg)
        if not done.called:
            self.track(done, overlaps)

    def _start_behind(self, msg: Message, overlaps: bool) -> None:
        entry = Running(self._owner, behind=True)
        done = contextvars.copy_context().run(self._run_as, entry, msg)
        self._add(entry, done, overlaps)

    def _run_as(self, entry: Running | None, msg: Message) -> defer.Deferred[None]:
        current.set(entry)
        return self._owner.run_command(msg)

    def _add(self, entry: Running, done: defer.Deferred[None], overlaps: bool) -> None:
        self._running.append(entry)
        self._shared.started()
        self._only_messages = self._only_messages and overlaps
        done.addBoth(self._finished, entry)

    def _finished(self, result: object, entry: Running) -> None:
        entry.done = True
        self._shared.finished()
        self._write_in_turn()
        if not self._running:
            self._only_messages = True
        self._start_waiting()

    def _write_in_turn(self) -> None:
        running, write = self._running, self._owner.write_now
        while running:
            first = running[0]
            held, first.held = first.held, None
            for data in held or ():
                write(data)
            if not first.done:
                return
            running.popleft()

    def _start_waiting(self) -> None:
        owner, waiting = self._owner, self._waiting
        if waiting is not None:
            self._waiting = None
            # Read before a close, it must not run after it (a JOIN would
            # leave a member nobody can reach).
            if owner.takes_commands():
                # Offered again: a command before it may have changed the answer.
                self.offer(waiting)
                if self._waiting is None:
                    self._refilling = True
        if (
            self._refilling
            and self._waiting is None
            and len(self._running) <= RESUME_AT
        ):
            self._refilling = False
            owner.resume_reading("command")
        if not self._running and self._waiting is None:
            owner.rested()
