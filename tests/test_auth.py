"""
Passwords and the cred checkers: bcrypt with a SHA-256 pre-hash, off the
reactor thread, and the same work for unknown names as for known ones.
"""

import os
import threading

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, reactor
from twisted.trial import unittest

from chatroom import auth
from chatroom.auth import (
    SCHEME,
    BcryptChecker,
    NewAccount,
    PasswordHasher,
    RegistrationChecker,
    hash_password,
    verify_password,
)
from chatroom.errors import NameTaken
from chatroom.storage.store import UserRecord
from tests.asynctest import async_test
from tests.helpers import BCRYPT_ROUNDS


class PasswordHashTests(unittest.TestCase):
    def test_passwords_past_bcrypts_72_bytes_hash_and_verify(self):
        for size in (72, 73, 1000):
            password = "p" * size
            stored = hash_password(password, BCRYPT_ROUNDS)
            self.assertTrue(verify_password(password, stored), size)
            self.assertFalse(verify_password("p" * (size - 1), stored), size)

    def test_every_byte_of_a_long_password_counts(self):
        # Plain bcrypt would see these as the same password (or refuse both).
        stored = hash_password("p" * 72 + "a", BCRYPT_ROUNDS)
        self.assertFalse(verify_password("p" * 72 + "b", stored))

    def test_non_ascii_passwords_verify(self):
        stored = hash_password("mot de passe é€😀", BCRYPT_ROUNDS)
        self.assertTrue(verify_password("mot de passe é€😀", stored))
        self.assertFalse(verify_password("mot de passe e€😀", stored))

    def test_stored_hash_names_its_scheme_and_cost(self):
        stored = hash_password("secret", BCRYPT_ROUNDS)
        self.assertTrue(stored.startswith(SCHEME + "$2b$04$"), stored)

    def test_hash_of_another_scheme_never_verifies(self):
        bare = hash_password("secret", BCRYPT_ROUNDS)[len(SCHEME) :]
        self.assertFalse(verify_password("secret", bare))


class PasswordHasherTests(unittest.TestCase):
    timeout = 10

    def setUp(self):
        self.hasher = PasswordHasher(reactor, rounds=BCRYPT_ROUNDS, threads=1)
        self.hasher.start()
        self.addCleanup(self.hasher.stop)

    def _spy(self, name: str) -> list[tuple[threading.Thread, tuple]]:
        """Record the thread and arguments of each call of C{auth.name}."""
        calls = []
        original = getattr(auth, name)

        def spy(*args):
            calls.append((threading.current_thread(), args))
            return original(*args)

        self.patch(auth, name, spy)
        return calls

    @async_test
    async def test_hashing_and_checking_run_in_the_bcrypt_pool(self):
        hashed = self._spy("hash_password")
        verified = self._spy("verify_password")
        stored = await self.hasher.hash("secret")
        self.assertTrue(await self.hasher.verify("secret", stored))
        for thread, _ in hashed + verified:
            self.assertIsNot(thread, threading.main_thread())
            self.assertIn("bcrypt", thread.name)
        self.assertEqual((len(hashed), len(verified)), (1, 1))

    @async_test
    async def test_bcrypt_threads_run_below_the_reactor_threads_priority(self):
        # PRIO_PROCESS with 0 reads the calling thread's nice value on Linux.
        reactor_nice = os.getpriority(os.PRIO_PROCESS, 0)
        worker_nice = await self.hasher.run(os.getpriority, os.PRIO_PROCESS, 0)
        self.assertEqual(worker_nice, min(19, reactor_nice + auth.BCRYPT_NICENESS))
        self.assertEqual(os.getpriority(os.PRIO_PROCESS, 0), reactor_nice)

    def test_one_thread_per_core_the_process_may_use(self):
        # Pinned to fewer cores than the machine has (taskset, a container's
        # cpuset), more threads would only queue in the kernel.
        self.patch(os, "sched_getaffinity", lambda pid: {2, 5, 7})
        self.patch(os, "cpu_count", lambda: 64)
        hasher = PasswordHasher(reactor, rounds=BCRYPT_ROUNDS)
        self.assertEqual((hasher.pool.max, hasher.queue.size), (3, 3))

    @async_test
    async def test_hashes_use_the_configured_cost(self):
        stored = await self.hasher.hash("secret")
        self.assertTrue(stored.startswith(SCHEME + "$2b$04$"), stored)

    @async_test
    async def test_checking_without_a_stored_hash_does_the_work_and_fails(self):
        verified = self._spy("verify_password")
        self.assertFalse(await self.hasher.verify("secret", None))
        [(thread, (password, decoy))] = verified
        self.assertIn("bcrypt", thread.name)
        # A real bcrypt hash of the same cost, so the check takes as long.
        self.assertTrue(decoy.startswith(SCHEME + "$2b$04$"), decoy)

    @async_test
    async def test_the_decoy_hash_matches_no_password(self):
        for password in ("", "secret", "." * 31):
            self.assertFalse(await self.hasher.verify(password, None))


class _Accounts:
    """Stands in for the chat service: one account, alice, and registration."""

    def __init__(self, password_hash: str) -> None:
        self.alice = UserRecord(7, "alice", password_hash, False, None)
        self.registered: list[tuple[str, str]] = []

    def find_user(self, key: str) -> defer.Deferred:
        return defer.succeed(self.alice if key == "alice" else None)

    async def register(self, name: str, password_hash: str) -> UserRecord:
        if name.lower() == "alice":
            raise NameTaken()
        self.registered.append((name, verify_password("pw", password_hash)))
        return UserRecord(8, name, "hash", False, None)


class CheckerTests(unittest.TestCase):
    timeout = 10

    def setUp(self):
        self.hasher = PasswordHasher(reactor, rounds=BCRYPT_ROUNDS, threads=1)
        self.hasher.start()
        self.addCleanup(self.hasher.stop)
        self.accounts = _Accounts(hash_password("pw-alice", BCRYPT_ROUNDS))
        self.checker = BcryptChecker(self.accounts, self.hasher)

    @async_test
    async def test_right_password_names_the_account(self):
        avatar_id = await self.checker.requestAvatarId(
            UsernamePassword("ALICE", "pw-alice")
        )
        self.assertEqual(avatar_id, 7)

    @async_test
    async def test_wrong_password_is_unauthorized(self):
        await self.assertFailure(
            self.checker.requestAvatarId(UsernamePassword("alice", "wrong")),
            UnauthorizedLogin,
        )

    @async_test
    async def test_unknown_name_is_checked_against_the_decoy(self):
        checked = []
        self.patch(
            self.hasher,
            "verify",
            lambda password, stored, party=None: (
                checked.append(stored) or defer.succeed(False)
            ),
        )
        await self.assertFailure(
            self.checker.requestAvatarId(UsernamePassword("nobody", "pw")),
            UnauthorizedLogin,
        )
        self.assertEqual(checked, [None])

    @async_test
    async def test_registration_creates_the_account_it_names(self):
        checker = RegistrationChecker(self.accounts, self.hasher)
        self.assertEqual(await checker.requestAvatarId(NewAccount("bob", "pw")), 8)
        self.assertEqual(self.accounts.registered, [("bob", True)])

    @async_test
    async def test_registration_of_a_taken_name_fails_with_name_taken(self):
        checker = RegistrationChecker(self.accounts, self.hasher)
        await self.assertFailure(
            checker.requestAvatarId(NewAccount("alice", "pw")), NameTaken
        )


class FairQueueTests(unittest.TestCase):
    """bcrypt's queue is shared in turns between the parties that ask."""

    def setUp(self):
        self.queue = auth.FairQueue(size=2)
        self.started: list[tuple[str, int]] = []
        self.pending: list[defer.Deferred] = []

    def submit(self, party: str, job: int) -> defer.Deferred:
        def start():
            self.started.append((party, job))
            d = defer.Deferred()
            self.pending.append(d)
            return d

        return self.queue.submit(party, start)

    def finish_one(self) -> None:
        self.pending.pop(0).callback(None)

    def test_no_more_than_size_run_at_once(self):
        for job in range(5):
            self.submit("flood", job)
        self.assertEqual(len(self.started), 2)
        self.finish_one()
        self.assertEqual(len(self.started), 3)

    def test_a_newcomer_goes_before_the_backlogs_of_a_flood(self):
        for job in range(100):
            for party in range(10):
                self.submit(f"flood{party}", job)
        # The flood has been served a while...
        for _ in range(30):
            self.finish_one()
        done = self.submit("alice", 0)
        results = []
        done.addCallback(results.append)
        # ...so alice's is next once one of the two running jobs ends.
        started = len(self.started)
        self.finish_one()
        self.assertEqual(self.started[started], ("alice", 0))
        self.finish_one()
        self.finish_one()
        self.assertEqual(results, [None])

    def test_parties_with_backlogs_take_turns(self):
        for party in ("a", "b"):
            for job in range(3):
                self.submit(party, job)
        for _ in range(4):
            self.finish_one()
        # a's first two start at once (the pool is idle), then b catches up.
        self.assertEqual(
            self.started, [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("a", 2), ("b", 2)]
        )

    def test_results_and_failures_reach_their_caller(self):
        ok = self.queue.submit("a", lambda: defer.succeed(7))
        bad = self.queue.submit("a", lambda: defer.fail(ValueError("boom")))
        self.assertEqual(self.successResultOf(ok), 7)
        self.failureResultOf(bad, ValueError)
        self.assertEqual(self.queue.running, 0)
