"""
What the admission gate counts: failed logins, per address and per account
name, and new accounts per address.  An address is counted by its
L{address_block}: an IPv6 client owns a whole /64, so it is one party.

Failed logins from an address, to any name (known or not: an unknown one
costs a bcrypt check too), earn that address a growing delay; its tries
before the delay ends are refused unchecked, so parallel connections gain
nothing.  Failures on a name, from every address, only slow that name's
next checks (at most L{NAME_SLOWDOWN_MAX}): what others do may delay a
user's login, never refuse it.  A script that tries /login and then
/register the same new name is forgiven that failure.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatroom.names import name_key

# Failures remembered at most; the oldest are forgotten first.
MAX_TRACKED = 100_000
# The longest a name under attack holds its next check.
NAME_SLOWDOWN_MAX = 5.0
# Unknown names remembered per address, for forgiving a /register after them.
_UNKNOWN_REMEMBERED = 16


@dataclass
class _Failures:
    count: int
    last: float
    not_before: float
    # Failures on names no account had, by name: a registration forgives them.
    unknown: dict[str, int] = field(default_factory=dict)


class LoginThrottle:
    """
    @param free: failures that cost no delay (typos).
    @param base: the delay after the first costly failure; it doubles after each.
    @param cap: the longest delay of an address.
    @param name_cap: the longest a name's failures slow its next check.
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
        name_cap: float = NAME_SLOWDOWN_MAX,
    ) -> None:
        self.clock = clock
        self.free = free
        self.base = base
        self.cap = cap
        self.name_cap = name_cap
        self.forget = forget
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def wait_time(self, address: str) -> float:
        """Seconds until anything may be tried from C{address}; 0 if now."""
        entry = self._failures.get(_address_key(address))
        return (
            0.0 if entry is None else max(0.0, entry.not_before - self.clock.seconds())
        )

    def slowdown(self, name: str) -> float:
        """Seconds a check of C{name}'s password should wait first; 0 for none."""
        entry = self._failures.get(_name_key(name))
        if entry is None:
            return 0.0
        return min(self.name_cap, max(0.0, entry.not_before - self.clock.seconds()))

    def failed(self, name: str, address: str, known: bool = True) -> float:
        """
        Count a failed login; return how long its reply should wait (the
        address's delay).

        @param known: an account has this name.
        """
        now = self.clock.seconds()
        self._forget_old(now)
        name_entry = self._count(_name_key(name), now)
        address_entry = self._count(_address_key(address), now)
        if not known:
            unknown = address_entry.unknown
            key = name_key(name)
            unknown[key] = unknown.pop(key, 0) + 1
            if len(unknown) > _UNKNOWN_REMEMBERED:
                del unknown[next(iter(unknown))]
        delay = address_entry.not_before - now
        self.log.warn(
            "failed login for {name} from {address} (failures: {name_count} for"
            " the name, {address_count} from the address); next try in {delay}s",
            name=name_key(name),
            address=address,
            name_count=name_entry.count,
            address_count=address_entry.count,
            delay=delay,
        )
        return delay

    def succeeded(self, name: str) -> None:
        """A good password clears the name's failures, not the address's."""
        self._failures.pop(_name_key(name), None)

    def registered(self, name: str, address: str) -> None:
        """C{address} created C{name}: its failed logins to it were no guesses."""
        entry = self._failures.get(_address_key(address))
        if entry is None:
            return
        forgiven = entry.unknown.pop(name_key(name), 0)
        if forgiven:
            entry.count -= forgiven
            entry.not_before = entry.last + self._delay(entry.count)

    def _count(self, key: tuple[str, str], now: float) -> _Failures:
        entry = self._failures.pop(key, None)
        if entry is None:
            entry = _Failures(0, now, now)
        entry.count += 1
        entry.last = now
        entry.not_before = now + self._delay(entry.count)
        self._failures[key] = entry
        return entry

    def _delay(self, count: int) -> float:
        if count <= self.free:
            return 0.0
        return min(self.cap, self.base * 2 ** (count - self.free - 1))

    def _forget_old(self, now: float) -> None:
        failures = self._failures
        while failures:
            key, oldest = next(iter(failures.items()))
            if len(failures) < MAX_TRACKED and now - oldest.last < self.forget:
                break
            del failures[key]


def _name_key(name: str) -> tuple[str, str]:
    return ("name", name_key(name))


def _address_key(address: str) -> tuple[str, str]:
    return ("address", address_block(address))


class TokenBucket:
    """
    C{capacity} tokens, refilled at C{rate} a second; L{take} spends one,
    L{spend} any number, even into debt.  Time comes from the injected
    clock, so tests drive it with task.Clock.
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

    def spend(self, count: float) -> float:
        """
        Spend C{count} tokens, into debt if there are fewer; the seconds
        until the debt is paid back (0 if there is none).
        """
        tokens = self.tokens = self._refill() - count
        return -tokens / self.rate if tokens < 0 else 0.0

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
