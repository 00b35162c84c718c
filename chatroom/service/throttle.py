"""
Brute-force protection: failed logins slow down, per account name and per
address.

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
        return (("name", name_key(name)), ("address", address))

    def _forget_old(self, now: float) -> None:
        failures = self._failures
        while failures:
            key, oldest = next(iter(failures.items()))
            if len(failures) < MAX_TRACKED and now - oldest.last < self.forget:
                break
            del failures[key]
