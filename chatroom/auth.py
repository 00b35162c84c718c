"""
Passwords and the twisted.cred pieces: hashing, the checkers, the credentials.

bcrypt runs in a small thread pool of its own so it never blocks the reactor
and never starves the reactor's shared pool (which also resolves names).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import TypeVar

import bcrypt
from twisted.cred import credentials, error
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.threadpool import ThreadPool
from zope.interface import Attribute, Interface, implementer

from chatroom.names import name_key

T = TypeVar("T")

PRODUCTION_ROUNDS = 12
# How much lower than the reactor thread bcrypt's threads run (nice units).
BCRYPT_NICENESS = 10

# Stored hashes carry their scheme, so a later scheme can sit beside this one.
# bcrypt reads at most 72 bytes (bcrypt 5 raises past that), so the password
# is first reduced to a fixed 44-byte SHA-256 digest in base64 (no NUL bytes):
# every password of any length counts in full.
SCHEME = "bcrypt-sha256$"


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int = PRODUCTION_ROUNDS) -> str:
    """Hash a password for storage.  Slow on purpose: call it in a thread."""
    hashed = bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds))
    return SCHEME + hashed.decode("ascii")


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a stored hash.  Slow: call it in a thread."""
    if not stored.startswith(SCHEME):
        return False
    return bcrypt.checkpw(_prehash(password), stored[len(SCHEME) :].encode("ascii"))


def usable_cores() -> int:
    """The cores this process may run on: its affinity, not the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


class FairQueue:
    """
    Runs jobs at most C{size} at a time, taking the next from the waiting
    party that has been served least while it kept the queue busy, in turn
    among equals: an address flooding the queue with logins delays a
    newcomer's by the jobs already running, not by its backlog.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.running = 0
        # Parties with jobs waiting, in turn order.
        self._waiting: OrderedDict[Hashable, deque] = OrderedDict()
        # Jobs started per party with any waiting or running: forgotten once
        # it has none, so what counts is the present flood, not old history.
        self._served: dict[Hashable, int] = {}
        self._running_of: dict[Hashable, int] = {}

    def submit(
        self, party: Hashable, start: Callable[[], defer.Deferred[T]]
    ) -> defer.Deferred[T]:
        """Run C{start()} in C{party}'s turn; fire with what it fires with."""
        done: defer.Deferred[T] = defer.Deferred()
        self._waiting.setdefault(party, deque()).append((start, done))
        self._run_next()
        return done

    def _run_next(self) -> None:
        served = self._served
        while self.running < self.size and self._waiting:
            party = min(self._waiting, key=lambda p: served.get(p, 0))
            jobs = self._waiting.pop(party)
            start, done = jobs.popleft()
            if jobs:
                # Served: to the back of the line with what it has left.
                self._waiting[party] = jobs
            served[party] = served.get(party, 0) + 1
            self._running_of[party] = self._running_of.get(party, 0) + 1
            self.running += 1
            start().addBoth(self._finished, party, done)

    def _finished(self, result, party: Hashable, done: defer.Deferred) -> None:
        self.running -= 1
        self._running_of[party] -= 1
        if not self._running_of[party]:
            del self._running_of[party]
            if party not in self._waiting:
                del self._served[party]
        done.callback(result)
        self._run_next()


class PasswordHasher:
    """
    Hashes and verifies passwords in a bounded pool of worker threads,
    shared fairly between the parties (addresses) that ask.
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        rounds: int = PRODUCTION_ROUNDS,
        threads: int | None = None,
    ) -> None:
        self.reactor = reactor
        self.rounds = rounds
        # One thread per core: bcrypt releases the GIL, so that is all the
        # parallelism there is; more threads only queue in the kernel.
        size = threads or usable_cores()
        self.pool = ThreadPool(minthreads=0, maxthreads=size, name="bcrypt")
        self.queue = FairQueue(size)
        # A hash of the same cost to check unknown names against, so they fail
        # as slowly as known ones and timing does not tell which names exist.
        # A fresh salt and a digest no password produces: nothing to compute.
        self._decoy = SCHEME + (bcrypt.gensalt(rounds) + b"." * 31).decode("ascii")

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def hash(self, password: str, party: Hashable = None) -> defer.Deferred[str]:
        return self.run(hash_password, password, self.rounds, party=party)

    def verify(
        self, password: str, stored: str | None, party: Hashable = None
    ) -> defer.Deferred[bool]:
        """Check C{password}; with no stored hash, spend the same time and fail."""
        if stored is None:
            d = self.run(verify_password, password, self._decoy, party=party)
            return d.addCallback(lambda _: False)
        return self.run(verify_password, password, stored, party=party)

    def run(
        self, work: Callable[..., T], *args: object, party: Hashable = None
    ) -> defer.Deferred[T]:
        """Run C{work} in the pool in C{party}'s turn, below the reactor's priority."""
        return self.queue.submit(
            party,
            lambda: threads.deferToThreadPool(
                self.reactor, self.pool, _yielding_to_the_reactor, work, *args
            ),
        )


_lowered = threading.local()


def _yielding_to_the_reactor(work: Callable[..., T], *args: object) -> T:
    # bcrypt may use every core, but when the reactor thread wants its core
    # back the kernel should give it: a login storm must not slow the chat.
    # On Linux a thread is a task with a nice value of its own, and
    # PRIO_PROCESS with 0 names the calling thread; it starts from the nice
    # value of the thread that made it.
    if not getattr(_lowered, "done", False):
        _lowered.done = True
        try:
            nice = os.getpriority(os.PRIO_PROCESS, 0)
            os.setpriority(os.PRIO_PROCESS, 0, min(19, nice + BCRYPT_NICENESS))
        except (AttributeError, OSError):
            pass
    return work(*args)


class INewAccount(credentials.ICredentials):
    """A request to create an account, and to log in to it."""

    username = Attribute("The name asked for.")
    password = Attribute("The first password.")
    password_hash = Attribute("Its hash, if made already; None: the checker makes it.")


@implementer(INewAccount)
class NewAccount:
    def __init__(
        self,
        username: str,
        password: str,
        party: Hashable = None,
        password_hash: str | None = None,
    ) -> None:
        self.username = username
        self.password = password
        # Who asks: their turn in the bcrypt queue.
        self.party = party
        # Hashed already, by a caller that must hash before it changes anything.
        self.password_hash = password_hash


class PasswordLogin(credentials.UsernamePassword):
    """A name and password, and who is asking (their turn in the bcrypt queue)."""

    def __init__(self, username: str, password: str, party: Hashable = None) -> None:
        super().__init__(username, password)
        self.party = party


class LoginFailed(error.UnauthorizedLogin):
    """
    A wrong name or password.  It says which account was tried, if any, so
    whoever counts failures need not look the name up again.
    """

    def __init__(self, user_id: int | None) -> None:
        super().__init__("wrong name or password")
        self.user_id = user_id


class AccountSuspendedLogin(error.UnauthorizedLogin):
    """The right password, for an account an admin has suspended."""

    def __init__(self, user_id: int) -> None:
        super().__init__("this account is suspended")
        self.user_id = user_id


class IAccounts(Interface):
    """What the checkers need from the chat service."""

    def find_user(key):
        """Fire with the UserRecord named by C{key}, or None."""

    def register(name, password_hash):
        """Create an account; fire with its UserRecord, or fail with NameTaken."""


@implementer(ICredentialsChecker)
class BcryptChecker:
    """Checks a name and password against the stored bcrypt hash."""

    credentialInterfaces = (credentials.IUsernamePassword,)

    def __init__(self, chat: IAccounts, hasher: PasswordHasher) -> None:
        self.chat = chat
        self.hasher = hasher

    def requestAvatarId(self, creds) -> defer.Deferred[int]:
        party = getattr(creds, "party", None)
        return defer.ensureDeferred(self._check(creds.username, creds.password, party))

    async def _check(self, username: str, password: str, party: Hashable) -> int:
        user = await self.chat.find_user(name_key(username))
        matched = await self.hasher.verify(
            password, user.password_hash if user else None, party
        )
        if not matched:
            raise LoginFailed(user.id if user else None)
        # Said only to whoever knows the password: it tells them nothing new.
        if user.suspended:
            raise AccountSuspendedLogin(user.id)
        return user.id


@implementer(ICredentialsChecker)
class RegistrationChecker:
    """Creates the account it is asked for, and names it as the avatar."""

    credentialInterfaces = (INewAccount,)

    def __init__(self, chat: IAccounts, hasher: PasswordHasher) -> None:
        self.chat = chat
        self.hasher = hasher

    def requestAvatarId(self, creds: NewAccount) -> defer.Deferred[int]:
        return defer.ensureDeferred(self._create(creds))

    async def _create(self, creds: NewAccount) -> int:
        password_hash = creds.password_hash
        if password_hash is None:
            password_hash = await self.hasher.hash(creds.password, creds.party)
        user = await self.chat.register(creds.username, password_hash)
        return user.id
