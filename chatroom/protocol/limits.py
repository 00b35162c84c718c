"""
What one connection may cost the server: lines per second, bytes queued for
it, time to log in.  The factory holds the L{Limits}; each protocol builds
its own L{FloodGate} and output queue from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime

from chatroom.service.throttle import TokenBucket

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    """
    Per-connection and per-server limits.  A zero turns a limit off.  These
    defaults are the ones C{twistd chatroom --help} shows.
    """

    # Lines a client may send per second, and how many it may send at once.
    rate: float = 20.0
    burst: int = 200
    # Refused lines (this many, recovering one a second) before a flooder is
    # disconnected.
    flood_strikes: int = 100
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
