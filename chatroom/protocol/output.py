"""
What is queued for one client, counted with the transport's own producer
signals: past a soft limit the client's commands are not read, at a hard
limit it is cut.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


@implementer(IPushProducer)
class OutputQueue:
    """
    Counts what is queued for one client, using the transport's own producer
    signals: it pauses us when its buffer passes its C{bufferSize} (the soft
    limit) and resumes us once the buffer is empty.  While paused, everything
    written is added to an estimate that starts at the soft limit; that is an
    upper bound on what is queued, checked against the hard limit.

    @ivar backed_up: the transport's buffer is past the soft limit.
    """

    __slots__ = (
        "soft",
        "hard",
        "queued",
        "backed_up",
        "transport",
        "_on_full",
        "_on_change",
    )

    def __init__(
        self,
        soft: int,
        hard: int,
        on_change: Callable[[bool], None],
        on_full: Callable[[int], None],
    ) -> None:
        self.soft = soft
        self.hard = hard
        self.queued = 0
        self.backed_up = False
        self.transport = None
        self._on_change = on_change
        self._on_full = on_full

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

    def detach(self) -> None:
        """Unregister: a transport with a producer does not close."""
        self.transport.unregisterProducer()

    def wrote(self, size: int) -> None:
        """Called for each write while L{backed_up}: the hot path stays cheap."""
        self.queued += size
        if self.queued > self.hard:
            self._on_full(self.queued)

    # IPushProducer, called by the transport (pause may repeat on every write)

    def pauseProducing(self) -> None:
        if not self.backed_up:
            self.backed_up = True
            self.queued = self.soft
            self._on_change(True)

    def resumeProducing(self) -> None:
        if self.backed_up:
            self.backed_up = False
            self.queued = 0
            self._on_change(False)

    def stopProducing(self) -> None:
        self.backed_up = False
