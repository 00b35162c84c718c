"""
What one connection may cost the server: lines and bytes per second, bytes
queued for it, time to log in.  The factory holds the L{Limits}; each
protocol builds its own L{FloodGate}, L{ByteRate} and output queue from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chatroom.service.throttle import RegistrationLimit, TokenBucket

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    """
    Per-connection and per-server limits; these defaults are the ones
    C{twistd chatroom --help} shows.

    A zero turns off C{rate} (and with it C{burst} and C{flood_strikes}),
    C{byte_rate} (and C{byte_burst}), C{output_stall}, C{login_timeout},
    C{ping_interval}, C{max_connections}, C{max_per_address} and
    C{register_rate} (and C{register_burst}); a zero C{ping_timeout} leaves
    the kernel's own.  A zero C{output_hard} turns off all output
    accounting: C{output_soft} and C{output_stall} too.  The depths
    C{burst}, C{flood_strikes}, C{byte_burst}, C{output_soft} and
    C{register_burst} are never off: zero would refuse every line, cut at
    the first refused one, pause every read, or refuse every account, so
    the options refuse it.
    """

    # Lines a client may send per second, and how many it may send at once.
    rate: float = 20.0
    burst: int = 200
    # Refused lines (this many, recovering one a second) before a flooder is
    # disconnected.
    flood_strikes: int = 100
    # Bytes a client may send per second, and at once: a paste of a few KB
    # is read at once, a paste of hundreds of KB at this pace.
    byte_rate: int = 64 * KIB
    byte_burst: int = 32 * KIB
    # Bytes queued for a client: above the soft limit its commands are not
    # read; over the hard limit it is disconnected, and so it is when it has
    # taken nothing of what is queued for output_stall seconds.
    output_soft: int = 64 * KIB
    output_hard: int = 1 * MIB
    output_stall: float = 30.0
    # Seconds a connection may stay without logging in.
    login_timeout: float = 60.0
    # Seconds of silence both ways before a logged-in client gets "* ping";
    # the kernel drops it when that stays unacknowledged for ping_timeout.
    ping_interval: float = 120.0
    ping_timeout: float = 120.0
    # Connections open at once: in all, and from one address.
    max_connections: int = 1000
    max_per_address: int = 100
    # New accounts one address may create per minute, and at once: each
    # costs a bcrypt hash.
    register_rate: float = 3.0
    register_burst: int = 10


class FloodGate:
    """
    The line-rate limit: a bucket of lines, and a bucket of patience spent by
    each refused line.  L{admit} answers C{"ok"}, C{"refuse"} (answer
    rate-limited and drop the line) or C{"drop"} (disconnect: sustained abuse).
    """

    __slots__ = ("lines", "patience", "limits")

    def __init__(self, limits: Limits, clock: IReactorTime) -> None:
        self.lines = TokenBucket(limits.rate, limits.burst, clock)
        # Made at the first refused line: most connections never see one.
        self.patience: TokenBucket | None = None
        self.limits = limits

    def admit(self) -> str:
        if self.lines.take():
            return "ok"
        if self.patience is None:
            self.patience = TokenBucket(
                1.0, self.limits.flood_strikes, self.lines.clock
            )
        return "refuse" if self.patience.take() else "drop"

    def at_rest(self) -> bool:
        """Full again, as a new gate is: it may be dropped and made anew."""
        patience = self.patience
        return self.lines.full() and (patience is None or patience.full())


class Reader(Protocol):
    """The connection a L{ByteRate} paces (L{LineFraming} is one)."""

    def stop_reading(self, reason: str) -> None: ...

    def resume_reading(self, reason: str) -> None: ...


class ByteRate(TokenBucket):
    """
    The byte-rate limit: a bucket of bytes that what is read is spent from,
    even into debt.  A reader in debt is refused nothing: it stops reading
    (reason C{"input"}) until the bucket has refilled, so what it sends
    waits in the socket.
    """

    __slots__ = ("reader", "_paused")
    # The reason the reader is stopped for, while in debt.
    reason = "input"

    def __init__(
        self, rate: float, burst: int, clock: IReactorTime, reader: Reader
    ) -> None:
        super().__init__(rate, burst, clock)
        self.reader = reader
        # While in debt: the call that reads again.
        self._paused: IDelayedCall | None = None

    def received(self, size: int) -> None:
        """C{size} bytes were read: stop reading if that put us in debt."""
        wait = self.spend(size)
        if not wait:
            return
        if self._paused is not None:
            self._paused.reset(wait)
        else:
            self.reader.stop_reading(self.reason)
            self._paused = self.clock.callLater(wait, self._read_again)

    def at_rest(self) -> bool:
        """Full again and reading, as a new one is: it may be dropped."""
        return self._paused is None and self.full()

    def stop(self) -> None:
        """The connection is gone: no call left behind."""
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None

    def _read_again(self) -> None:
        self._paused = None
        self.reader.resume_reading(self.reason)


class FakeLag(ByteRate):
    """
    IRC's line rate, as IRC servers apply it: a line over the rate is not
    refused; the lines after it wait in the socket until the bucket has
    refilled (C{received(1)} per line).  A flooder only slows itself.
    """

    __slots__ = ()
    reason = "fakelag"


def registration_limit(limits: Limits, clock: IReactorTime) -> RegistrationLimit | None:
    """The admission gate's new-accounts-per-address limit, if L{limits} set one."""
    if not limits.register_rate:
        return None
    return RegistrationLimit(clock, limits.register_rate, limits.register_burst)
