"""
What is queued for one client, and whether it still reads: past a soft limit
its commands are not read; over the hard limit, or when it has taken nothing
of what is queued for the stall time, it is cut.  And how it is written: what
a connection writes in one reactor turn goes out in one transport write.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IPushProducer, IReactorTime
from zope.interface import implementer


def transport_buffered(transport) -> int | None:
    """
    Bytes C{transport} holds that the kernel has not taken yet, or None if it
    does not say (not a L{FileDescriptor}: a test's StringTransport, IOCP).
    """
    if isinstance(transport, FileDescriptor):
        # FileDescriptor.doWrite sends dataBuffer from offset on, and moves
        # what write() appended to _tempDataBuffer into it.
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    return None


def write_now(transport, data: bytes) -> None:
    """
    C{transport.write(data)}, sent at once if the transport buffers nothing.
    A write to an idle L{FileDescriptor} is sent by the reactor's next pass,
    with an C{epoll_ctl} to start watching for writability and one to stop:
    two system calls per connection per turn that a C{send()} now spares.
    What the kernel does not take is written as usual, in order after it.
    """
    rest = send_at_once(transport, data)
    if rest:
        transport.write(rest)


def send_at_once(transport, data: bytes) -> bytes:
    """
    Send what the kernel takes of C{data} now, if C{transport} is an idle
    L{FileDescriptor} (see L{write_now}); what is left, for C{transport.write}.
    """
    if (
        isinstance(transport, FileDescriptor)
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport_buffered(transport)
    ):
        sent = transport.writeSomeData(data)
        if type(sent) is int and sent > 0:
            if sent == len(data):
                return b""
            data = data[sent:]
        # Nothing taken, or the connection is lost: the transport finds out
        # again when it writes, and handles it as it always does.
    return data


class _Dropped:
    """The output of a connection cut or lost: what it is written vanishes."""

    __slots__ = ()

    def append(self, data: bytes) -> None:
        pass

    def __len__(self) -> int:
        return 0


_DROPPED = _Dropped()


class CoalescedWrites:
    """
    A connection's writes of one reactor turn, joined into one transport
    write at the end of the turn by its factory's flush
    (L{chatroom.protocol.factory.ChatFactory.flush_soon}).  A transport write
    each costs a C{send()} and the two C{epoll_ctl} calls that start and stop
    writing; a room message is a write to every member.

    A room's messages of one turn may be shared by its members' outputs
    (L{RoomFan}): the connection then holds a L{SharedRun} as the last
    piece of its output, and leaves it (keeping what it held so far) as
    soon as anything else is written to it, or it is flushed.

    The front end's protocol sets C{_output} (an L{OutputQueue} or None),
    or makes it in L{_queue_for_backlog}; calls L{flush} before it closes
    the connection, L{drop_output} before it aborts it or once it is lost,
    and may override L{sent}.  For L{RoomFan} it implements
    L{room_fan_key} and L{room_encoding}.
    """

    # Most connections are idle: nothing is kept between turns.
    __slots__ = ("_pending", "_output", "_run")

    def write(self, data: bytes | SharedRun) -> None:
        """One append per delivery (or a run to share, L{join_run})."""
        if self._run is not None:
            self._leave_run()
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self.factory.flush_soon(self)
        else:
            pending.append(data)
        output = self._output
        if output is not None and output.backed_up:
            output.buffered(len(data))

    def flush(self) -> None:
        """Hand what was written this turn to the transport, in one write."""
        if self._run is not None:
            self._leave_run()
        pending = self._pending
        if not pending:
            return
        self._pending = None
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        rest = send_at_once(self.transport, data)
        output = self._output
        if rest:
            if output is None:
                # Made before the write: the transport may pause it at once.
                output = self._queue_for_backlog()
            self.transport.write(rest)
        if output is not None and output.backed_up:
            output.flushed(len(data))
        self.sent()

    def drop_output(self) -> None:
        """Forget what was written and not flushed, and all later writes."""
        self._pending = _DROPPED

    def join_run(self, run: SharedRun) -> None:
        """
        Take C{run}'s messages, those of this turn so far and those appended
        until this connection leaves it, as the next piece of output.  Only
        for a connection whose L{room_fan_key} is not None.
        """
        # Never counted: a connection whose output is backed up joins none.
        self.write(run)
        self._run = run

    def _leave_run(self) -> None:
        # What the run holds now is ours; what it gets later, the room's
        # fan-out hands us one by one.
        run, self._run = self._run, None
        pending = self._pending
        if pending and pending[-1] is run:  # not so once dropped
            pending[-1] = run.data()
        run.fan.left(self)

    def room_fan_key(self):
        """
        Which encoding of a room message this connection takes, shared with
        every member of the same key; None while it must take each message
        by itself (L{IChatClient.room_message}): not yet welcomed, output
        backed up (counted write by write), cut.
        """
        return None

    def room_encoding(self, message, key) -> bytes:
        """
        The bytes of C{message} for members of C{key} (a L{room_fan_key} of
        this class, not necessarily this connection's any more).
        """
        raise NotImplementedError

    def _may_share(self) -> bool:
        """Whether a room's shared run may be part of this output now."""
        output = self._output
        return (
            self.connected
            and self._pending is not _DROPPED
            and not (output is not None and output.backed_up)
        )

    def _queue_for_backlog(self) -> OutputQueue | None:
        """
        The kernel left bytes of a flush in the transport's buffer and no
        L{OutputQueue} watches it: the one to watch it from now on, or None.
        """
        return None

    def sent(self) -> None:
        """Called after each flush: the connection said something."""


class SharedRun:
    """
    Consecutive messages of one room in one reactor turn, in one encoding,
    that the outputs of many members hold at once: a message is one append
    here, not one per member.  Joined once, whoever flushes first.
    """

    __slots__ = ("fan", "parts", "_joined", "_joined_count")

    def __init__(self, fan: RoomFan) -> None:
        self.fan = fan
        self.parts: list[bytes] = []
        self._joined = b""
        self._joined_count = 0

    def data(self) -> bytes:
        parts = self.parts
        if len(parts) != self._joined_count:
            self._joined = b"".join(parts)
            self._joined_count = len(parts)
        return self._joined


class RoomFan:
    """
    A room's members of one front end, and how a room message reaches them
    (LocalFanout keeps one until the room's members change).  In a turn the
    room's first message starts a L{SharedRun} per encoding, which each
    member that can share joins; while any member is still in a run, the
    turn's next messages are one append per run, plus one delivery for
    each member apart (the sender, one that left its run, one that cannot
    share).  Without it, a message to 500 members was 500 appends, and
    each member's output 500 separate joins at the flush.
    """

    __slots__ = ("members", "_runs", "_attached", "_apart")

    def __init__(self, members: tuple) -> None:
        self.members = members
        # (class, key) -> (run, key, a member of that class, which encodes)
        self._runs: dict = {}
        self._attached = 0
        self._apart: list = []

    def deliver(self, message, exclude, failed: Callable) -> None:
        if not self._attached:
            self._start(message, exclude, failed)
            return
        run = getattr(exclude, "_run", None)
        if run is not None and run.fan is self:
            # The sender sees none of its own messages from here on.
            exclude._leave_run()
        for run, key, encoder in self._runs.values():
            try:
                run.parts.append(encoder.room_encoding(message, key))
            except Exception:
                failed(encoder)
        # A copy: one pushed out of its run meanwhile has this message there.
        for client in tuple(self._apart):
            if client is not exclude:
                try:
                    client.room_message(message)
                except Exception:
                    failed(client)

    def left(self, client) -> None:
        """C{client} left its run: it takes the turn's next messages itself."""
        self._attached -= 1
        self._apart.append(client)

    def _start(self, message, exclude, failed: Callable) -> None:
        runs: dict = {}
        self._runs = runs
        self._apart = apart = []
        # Counted as they join: a delivery below may make one leave again.
        self._attached = 0
        for client in self.members:
            if client is exclude:
                apart.append(client)
                continue
            try:
                key = client.room_fan_key()
                if key is None:
                    apart.append(client)
                    client.room_message(message)
                    continue
                # Front ends whose keys look alike share a fan, never a run.
                entry = runs.get((type(client), key))
                if entry is None:
                    run = SharedRun(self)
                    run.parts.append(client.room_encoding(message, key))
                    entry = runs[type(client), key] = (run, key, client)
                client.join_run(entry[0])
                self._attached += 1
            except Exception:
                failed(client)


@implementer(IPushProducer)
class OutputQueue:
    """
    Judges one client by what is really queued for it and by its progress.

    The transport's own producer signals mark the soft limit: it pauses us
    when its buffer passes its C{bufferSize} (the soft limit) and resumes us
    once the buffer is empty.  While paused, what is queued is what the
    transport buffers (L{transport_buffered}) plus what the connection wrote
    this turn and has not flushed (L{CoalescedWrites}); every flush and every
    L{check} looks at it, and if less is queued than at the last look plus
    what was written since, the client took something, which is progress.
    Under TLS the bytes reach TCP a turn after they are flushed, so there
    a flush credits only the flush before it.  Over the
    hard limit it is cut at once; with no progress for C{stall} seconds it
    is cut too.  A transport that does not say what it buffers is estimated
    from the soft limit plus what was written since the pause, and
    progresses only when it empties.

    @ivar backed_up: the transport's buffer passed the soft limit and has not
        emptied since.
    @ivar queued: bytes queued at the last look, or since counted by
        L{buffered} (0 while the client keeps up).
    @ivar unflushed: bytes the connection wrote while backed up and has not
        flushed to the transport yet.
    @ivar progressed_at: when the client last took something, or backed up.
    """

    __slots__ = (
        "soft",
        "hard",
        "stall",
        "clock",
        "queued",
        "unflushed",
        "backed_up",
        "progressed_at",
        "transport",
        "_measured",
        "_wrapped",
        "_below",
        "_handed",
        "_on_change",
        "_on_cut",
    )

    def __init__(
        self,
        soft: int,
        hard: int,
        stall: float,
        clock: IReactorTime,
        on_change: Callable[[bool], None],
        on_cut: Callable[[str], None],
    ) -> None:
        self.soft = soft
        self.hard = hard
        self.stall = stall
        self.clock = clock
        self.queued = 0
        self.unflushed = 0
        self.backed_up = False
        self.progressed_at = 0.0
        self.transport = None
        self._measured = False
        # Attached below a wrapping transport (TLS); what the transport
        # itself buffered at the last look; under TLS, what was flushed to
        # it at the last flush, which has reached TCP by the next turn.
        self._wrapped = False
        self._below = 0
        self._handed = 0
        self._on_change = on_change
        self._on_cut = on_cut

    def attach(self, transport) -> None:
        """Register with the transport; the soft limit becomes its buffer size."""
        # Under TLS, count what TCP queues: the TLS layer pauses its producer
        # while the handshake is pending, which would stop us reading the
        # handshake itself.  Under the WebSocket bridge, what the socket
        # under autobahn queues: the frames, really unsent.
        while hasattr(transport, "wrappedProtocol") and transport.transport:
            # TLS hands bytes on a turn later; a layer that writes through
            # at once (the WebSocket bridge's frames) does not.
            if not getattr(transport, "writes_at_once", False):
                self._wrapped = True
            transport = transport.transport
        if hasattr(transport, "bufferSize"):
            transport.bufferSize = self.soft
        transport.registerProducer(self, True)
        self.transport = transport
        self._measured = transport_buffered(transport) is not None

    def detach(self) -> None:
        """Unregister: a transport with a producer does not close."""
        self.transport.unregisterProducer()

    def buffered(self, size: int) -> None:
        """Called for each write while L{backed_up}: the hot path stays cheap."""
        self.unflushed += size
        self.queued += size
        if self.queued > self.hard:
            self._on_cut("hard")

    def flushed(self, size: int) -> None:
        """The connection handed C{size} bytes, all it had, to the transport."""
        self.unflushed = 0
        if self._wrapped:
            self._look_through(size)
        else:
            self._look()
        if self.queued > self.hard:
            self._on_cut("hard")

    def check(self) -> None:
        """The stall sweep's look: cut the client if it took nothing for too long."""
        if self._wrapped:
            self._look_through(None)
        else:
            self._look()
        if self.stall and self.clock.seconds() - self.progressed_at >= self.stall:
            self._on_cut("stall")

    def _look(self) -> None:
        if not self._measured:
            return
        below = transport_buffered(self.transport)
        # Less queued than at the last look plus what was written since: the
        # client took some.  Our own pending bytes are queued too.
        if below + self.unflushed < self.queued:
            self.progressed_at = self.clock.seconds()
        self._below = below
        self.queued = below + self.unflushed

    def _look_through(self, flushed: int | None) -> None:
        # TLS hands what we flush to TCP on its next turn, a little larger:
        # at a flush, the bytes of the flush before are in TCP's buffer, and
        # less there than at the last flush plus those means the client took
        # some; the stall sweep, between flushes, sees only a smaller buffer.
        if not self._measured:
            return
        below = transport_buffered(self.transport)
        if flushed is None:
            if below < self._below:
                self.progressed_at = self.clock.seconds()
        else:
            if below < self._below + self._handed:
                self.progressed_at = self.clock.seconds()
            self._below, self._handed = below, flushed
        self.queued = below + self.unflushed

    # IPushProducer, called by the transport (pause may repeat on every write)

    def pauseProducing(self) -> None:
        if not self.backed_up:
            self.backed_up = True
            self.progressed_at = self.clock.seconds()
            if self._measured:
                self._below = transport_buffered(self.transport)
                self._handed = 0
                self.queued = self._below + self.unflushed
            else:
                self.queued = self.soft
            self._on_change(True)

    def resumeProducing(self) -> None:
        if self.backed_up:
            self.backed_up = False
            self.queued = self.unflushed = 0
            self._on_change(False)

    def stopProducing(self) -> None:
        self.backed_up = False
