"""
What one connection may cost the server: lines per second, bytes queued for
it, time to log in.  The protocol owns one of each; the factory holds the
L{Limits} they are built from.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.interfaces import IPushProducer, IReactorTime
from zope.interface import implementer

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
    # read; at the hard limit it is disconnected.
    output_soft: int = 64 * KIB
    output_hard: int = 1 * MIB
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


class TokenBucket:
    """
    C{capacity} tokens, refilled at C{rate} a second; L{take} spends one.
    Time comes from the injected clock, so tests drive it with task.Clock.
    """

    __slots__ = ("rate", "capacity", "tokens", "stamp", "clock")

    def __init__(self, rate: float, capacity: int, clock: IReactorTime) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)
        self.clock = clock
        self.stamp = clock.seconds()

    def take(self) -> bool:
        """Spend a token if there is one; say whether there was."""
        tokens = self._refill()
        if tokens < 1:
            return False
        self.tokens = tokens - 1
        return True

    def wait_time(self) -> float:
        """Seconds until a token is there; 0 if one is now."""
        return max(0.0, (1 - self._refill()) / self.rate)

    def full(self) -> bool:
        return self._refill() >= self.capacity

    def _refill(self) -> float:
        now = self.clock.seconds()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens


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


def address_block(address: str) -> str:
    """
    What one party is counted by: the IPv4 address, or the IPv6 /64 (one
    customer's network, where every address is theirs to use).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class RegistrationLimit:
    """
    New accounts per address (L{address_block}): a token bucket each,
    C{per_minute} refilled, C{burst} deep.  Buckets that have refilled are
    forgotten, and at most C{tracked} are kept.
    """

    def __init__(
        self,
        clock: IReactorTime,
        per_minute: float,
        burst: int,
        tracked: int = 100_000,
    ) -> None:
        self.clock = clock
        self.rate = per_minute / 60
        self.burst = burst
        self.tracked = tracked
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def wait_time(self, address: str) -> float:
        """Seconds until C{address} may register; 0 if now."""
        bucket = self._buckets.get(address_block(address))
        return 0.0 if bucket is None else bucket.wait_time()

    def take(self, address: str) -> float:
        """
        Count a registration from C{address} if it may make one now (0), or
        say in how many seconds it may.
        """
        self._forget_old()
        block = address_block(address)
        bucket = self._buckets.pop(block, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.clock)
        self._buckets[block] = bucket
        return 0.0 if bucket.take() else bucket.wait_time()

    def _forget_old(self) -> None:
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if len(buckets) < self.tracked and not oldest.full():
                break
            buckets.popitem(last=False)


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


def tcp_socket(transport) -> socket.socket | None:
    """The TCP socket under C{transport}, looking through TLS; else None."""
    while transport is not None:
        handle = getattr(transport, "getHandle", lambda: None)()
        if isinstance(handle, socket.socket):
            if handle.family in (socket.AF_INET, socket.AF_INET6):
                return handle
            return None
        transport = getattr(transport, "transport", None)
    return None


def set_user_timeout(transport, seconds: float) -> bool:
    """
    Ask the kernel to drop the connection once sent data stays unacknowledged
    for C{seconds} (Linux C{TCP_USER_TIMEOUT}): how a ping finds a dead peer.
    Returns whether it could.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    handle = tcp_socket(transport)
    if option is None or handle is None:
        return False
    handle.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))
    return True


def set_no_delay(transport) -> bool:
    """
    Send small writes at once (C{TCP_NODELAY}): a chat line is one small
    write, and Nagle's algorithm with the peer's delayed ACK would hold it
    back for tens of milliseconds.  Returns whether it could.
    """
    handle = tcp_socket(transport)
    if handle is None:
        return False
    handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


# The first bytes of something that is not a telnet user.
_HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ")
_HTTP_METHODS += (b"CONNECT ", b"PATCH ", b"TRACE ", b"PRI ")


def looks_like_tls(prefix: bytes) -> bool:
    """A TLS record: handshake type 0x16, then major version 3."""
    return prefix[:2] == b"\x16\x03"


def looks_like_http(line: bytes) -> bool:
    """An HTTP request line: METHOD TARGET HTTP/x."""
    return line.startswith(_HTTP_METHODS) and b" HTTP/" in line
