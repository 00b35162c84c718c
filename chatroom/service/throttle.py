"""
What the admission gate counts: failed logins, which slow down per account
name and per address, and new accounts per address.  An address is counted
by its L{address_block}: an IPv6 client owns a whole /64, so it is one party.

Each failure past the first few doubles the delay of that name and that
address (up to a cap).  The failure's reply waits out the delay, and any
attempt on the same name or from the same address before it ends is refused
without checking the password, so parallel connections gain nothing.  The
name is counted whether or not an account has it, so unknown and known names
(the admin included) fail the same way.  The address counts only guesses at
existing accounts: a script that tries /login before /register must not lock
out its own address, and which names exist is public anyway (the bare-name
prompt says so).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.names import name_key

# Failures remembered at most; the oldest are forgotten first.
MAX_TRACKED = 100_000


@dataclass
class _Failures:
    count: int
    last: float
    not_before: float


class LoginThrottle:
    """
    @param free: failures that cost no delay (typos).
    @param base: the delay after the first costly failure; it doubles after each.
    @param cap: the longest delay.
    @param forget: seconds without failures after which they are forgotten.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        free: int = 3,
        base: float = 1.0,
        cap: float = 60.0,
        forget: float = 900.0,
    ) -> None:
        self.clock = clock
        self.free = free
        self.base = base
        self.cap = cap
        self.forget = forget
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def wait_time(self, name: str, address: str) -> float:
        """Seconds until C{name} may be tried from C{address}; 0 if now."""
        now = self.clock.seconds()
        waits = [
            entry.not_before - now
            for entry in map(self._failures.get, self._keys(name, address))
            if entry is not None
        ]
        return max([0.0, *waits])

    def failed(self, name: str, address: str, known: bool = True) -> float:
        """
        Count a failed login; return how long its reply should wait.

        @param known: an account has this name; only then does the address count.
        """
        now = self.clock.seconds()
        self._forget_old(now)
        delay = 0.0
        counts = [0, 0]
        keys = self._keys(name, address)
        for index, key in enumerate(keys if known else keys[:1]):
            entry = self._failures.pop(key, None)
            if entry is None:
                entry = _Failures(0, now, now)
            entry.count += 1
            entry.last = now
            entry_delay = self._delay(entry.count)
            entry.not_before = now + entry_delay
            self._failures[key] = entry
            delay = max(delay, entry_delay)
            counts[index] = entry.count
        self.log.warn(
            "failed login for {name} from {address} (failures: {name_count} for"
            " the name, {address_count} from the address); next try in {delay}s",
            name=name_key(name),
            address=address,
            name_count=counts[0],
            address_count=counts[1],
            delay=delay,
        )
        return delay

    def succeeded(self, name: str) -> None:
        """A good password clears the name's failures, not the address's."""
        self._failures.pop(("name", name_key(name)), None)

    def _delay(self, count: int) -> float:
        if count <= self.free:
            return 0.0
        return min(self.cap, self.base * 2 ** (count - self.free - 1))

    def _keys(self, name: str, address: str) -> tuple[tuple[str, str], ...]:
        return (("name", name_key(name)), ("address", address_block(address)))

    def _forget_old(self, now: float) -> None:
        failures = self._failures
        while failures:
            key, oldest = next(iter(failures.items()))
            if len(failures) < MAX_TRACKED and now - oldest.last < self.forget:
                break
            del failures[key]


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
