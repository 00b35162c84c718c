"""
What is queued for one client, and whether it still reads: past a soft limit
its commands are not read; over the hard limit, or when it has taken nothing
of what is queued for the stall time, it is cut.
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


@implementer(IPushProducer)
class OutputQueue:
    """
    Judges one client by what is really queued for it and by its progress.

    The transport's own producer signals mark the soft limit: it pauses us
    when its buffer passes its C{bufferSize} (the soft limit) and resumes us
    once the buffer is empty.  While paused, every write and every L{check}
    looks at what is queued (L{transport_buffered}); if less is queued than
    at the last look plus what was written since, the client took something,
    which is progress.  Over the hard limit it is cut at once; with no
    progress for C{stall} seconds it is cut too.  A transport that does not
    say what it buffers is estimated from the soft limit plus what was
    written since the pause, and progresses only when it empties.

    @ivar backed_up: the transport's buffer passed the soft limit and has not
        emptied since.
    @ivar queued: bytes queued at the last look (0 while the client keeps up).
    @ivar progressed_at: when the client last took something, or backed up.
    """

    __slots__ = (
        "soft",
        "hard",
        "stall",
        "clock",
        "queued",
        "backed_up",
        "progressed_at",
        "transport",
        "_measured",
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
        self.backed_up = False
        self.progressed_at = 0.0
        self.transport = None
        self._measured = False
        self._on_change = on_change
        self._on_cut = on_cut

    def attach(self, transport) -> None:
        """Register with the transport; the soft limit becomes its buffer size."""
        # Under TLS, count what TCP queues: the TLS layer pauses its producer
        # while the handshake is pending, which would stop us reading the
        # handshake itself.
        while hasattr(transport, "wrappedProtocol") and transport.transport:
            transport = transport.transport
        if hasattr(transport, "bufferSize"):
            transport.bufferSize = self.soft
        transport.registerProducer(self, True)
        self.transport = transport
        self._measured = transport_buffered(transport) is not None

    def detach(self) -> None:
        """Unregister: a transport with a producer does not close."""
        self.transport.unregisterProducer()

    def wrote(self, size: int) -> None:
        """Called for each write while L{backed_up}: the hot path stays cheap."""
        self._look(size)
        if self.queued > self.hard:
            self._on_cut("hard")

    def check(self) -> None:
        """The stall sweep's look: cut the client if it took nothing for too long."""
        self._look(0)
        if self.stall and self.clock.seconds() - self.progressed_at >= self.stall:
            self._on_cut("stall")

    def _look(self, written: int) -> None:
        # A write-coalescing buffer of ours would add its bytes here.
        if not self._measured:
            self.queued += written
            return
        queued = transport_buffered(self.transport)
        if queued < self.queued + written:
            self.progressed_at = self.clock.seconds()
        self.queued = queued

    # IPushProducer, called by the transport (pause may repeat on every write)

    def pauseProducing(self) -> None:
        if not self.backed_up:
            self.backed_up = True
            self.progressed_at = self.clock.seconds()
            if self._measured:
                self.queued = transport_buffered(self.transport)
            else:
                self.queued = self.soft
            self._on_change(True)

    def resumeProducing(self) -> None:
        if self.backed_up:
            self.backed_up = False
            self.queued = 0
            self._on_change(False)

    def stopProducing(self) -> None:
        self.backed_up = False
