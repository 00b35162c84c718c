"""
Brute force and passwords: failed logins slow down per name and per address,
unknown and known names fail alike, the admin is no exception, and passwords
of any length up to the limit count in full.
"""

from twisted.internet import task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from chatroom.auth import PasswordHasher, hash_password, verify_password
from chatroom.service.admission import REFUSAL_HOLD
from chatroom.service.throttle import LoginThrottle
from tests.clients import final_replies
from tests.helpers import ADMIN_PASSWORD, RELAXED, ChatWorld


def capture_log(test):
    events = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class ThrottleTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.throttle = LoginThrottle(self.clock, free=2, base=1, cap=8)

    def test_delay_grows_after_the_free_failures_and_is_capped(self):
        delays = [self.throttle.failed("bob", "10.0.0.1") for _ in range(8)]
        self.assertEqual(delays, [0, 0, 1, 2, 4, 8, 8, 8])

    def test_a_names_failures_slow_it_and_refuse_no_other_address(self):
        for i in range(4):
            self.throttle.failed("bob", f"10.0.0.{i}")
        self.assertEqual(self.throttle.slowdown("BOB"), 2)
        self.assertEqual(self.throttle.wait_time("10.9.9.9"), 0)
        self.assertEqual(self.throttle.slowdown("carol"), 0)

    def test_a_names_slowdown_is_capped_low(self):
        throttle = LoginThrottle(self.clock, free=0, base=1, cap=60, name_cap=5)
        for i in range(20):
            throttle.failed("bob", f"10.0.{i}.1")
        self.assertEqual(throttle.slowdown("bob"), 5)

    def test_per_address_whatever_the_name(self):
        for i in range(4):
            self.throttle.failed(f"user{i}", "10.0.0.1")
        self.assertEqual(self.throttle.wait_time("10.0.0.1"), 2)
        self.assertEqual(self.throttle.wait_time("10.0.0.2"), 0)

    def test_unknown_names_count_for_the_address_too(self):
        for i in range(4):
            self.throttle.failed(f"ghost{i}", "10.0.0.1", known=False)
        self.assertEqual(self.throttle.wait_time("10.0.0.1"), 2)

    def test_registering_a_name_forgives_the_failed_logins_to_it(self):
        for _ in range(3):
            self.throttle.failed("newbie", "10.0.0.1", known=False)
        self.assertEqual(self.throttle.wait_time("10.0.0.1"), 1)
        self.throttle.registered("NewBie", "10.0.0.1")
        self.assertEqual(self.throttle.wait_time("10.0.0.1"), 0)
        # Guesses at names it did not register stay counted.
        for i in range(3):
            self.throttle.failed(f"other{i}", "10.0.0.1", known=False)
        self.throttle.registered("newbie", "10.0.0.1")
        self.assertEqual(self.throttle.wait_time("10.0.0.1"), 1)

    def test_success_clears_the_name_not_the_address(self):
        for _ in range(4):
            self.throttle.failed("bob", "10.0.0.1")
        self.clock.advance(2)
        self.throttle.succeeded("bob")
        self.throttle.failed("bob", "10.0.0.2")
        self.assertEqual(self.throttle.slowdown("bob"), 0)
        self.assertEqual(self.throttle.wait_time("10.0.0.2"), 0)
        self.throttle.failed("carol", "10.0.0.1")
        self.assertEqual(self.throttle.wait_time("10.0.0.3"), 0)
        self.assertEqual(self.throttle.wait_time("10.0.0.1"), 4)

    def test_failures_are_forgotten_after_a_while(self):
        for _ in range(5):
            self.throttle.failed("bob", "10.0.0.1")
        self.clock.advance(901)
        self.throttle.failed("carol", "10.0.0.2")
        self.assertEqual(self.throttle.failed("bob", "10.0.0.1"), 0)

    def test_failures_are_logged_without_the_password(self):
        events = capture_log(self)
        self.throttle.failed("Bob", "10.0.0.1")
        (event,) = [e for e in events if "failed login" in e.get("log_format", "")]
        self.assertEqual((event["name"], event["address"]), ("bob", "10.0.0.1"))


class LoginSlowdownTests(unittest.TestCase):
    """Through the front door: /login, the bare-name prompt, /p."""

    def setUp(self):
        self.world = ChatWorld(RELAXED)
        self.world.factory.admission.throttle = LoginThrottle(
            self.world.clock, free=1, base=2, cap=16
        )
        self.world.user("bob", "right")

    def refused(self, client, line: str) -> str:
        """Send C{line}, refused unchecked: its reply is held for a second."""
        client.take()
        client.write(line)
        self.assertEqual(client.take(), [], "a refusal is held, not sent at once")
        self.world.clock.advance(REFUSAL_HOLD)
        return final_replies(client.take())[-1]

    def fail(self, name: str, host: str = "10.0.0.5", password: str = "wrong"):
        client = self.world.connect(host)
        client.take()
        client.write(f"/login {name} {password}")
        return client

    def test_failed_logins_answer_after_a_growing_delay(self):
        client = self.fail("bob")
        self.assertEqual(
            final_replies(client.take()), ["-ERR auth-failed wrong name or password"]
        )
        waits = []
        for _ in range(3):
            client.write("/login bob wrong")
            self.assertEqual(client.take(), [])
            waited = 0
            while not client.take():
                self.world.clock.advance(1)
                waited += 1
            waits.append(waited)
        self.assertEqual(waits, [2, 4, 8])

    def test_tries_during_the_delay_are_refused_unchecked(self):
        self.fail("bob")
        self.fail("bob")  # now delayed: 2 s
        checks = len(self.world.hasher.verified)
        other = self.world.connect("10.0.0.5")
        # Even the right password is not checked until the delay is over.
        reply = self.refused(other, "/login bob right")
        self.assertTrue(
            reply.startswith("-ERR rate-limited too many failed logins"), reply
        )
        self.assertEqual(len(self.world.hasher.verified), checks)
        self.world.clock.advance(2)
        self.assertTrue(other.command("/login bob right").startswith("+OK welcome"))

    def test_one_address_guessing_many_accounts_slows_down(self):
        for name in ("carol", "dave", "erin"):
            self.world.user(name, "right")
        self.fail("carol")
        self.fail("dave")
        client = self.world.connect("10.0.0.5")
        reply = self.refused(client, "/login erin whatever")
        self.assertTrue(reply.startswith("-ERR rate-limited"), reply)
        # Another address is not affected.
        reply = self.world.connect("10.0.0.99").command("/login erin whatever")
        self.assertTrue(reply.startswith("-ERR auth-failed"), reply)

    def test_login_before_register_does_not_lock_out_the_address(self):
        # A script's habit: try /login, /register when that fails.
        for i in range(10):
            client = self.world.connect("10.0.0.5")
            self.assertTrue(client.command(f"/login new{i} pw").startswith("-ERR auth"))
            self.assertTrue(client.command(f"/register new{i} pw").startswith("+OK"))

    def test_unknown_and_known_names_fail_the_same_way(self):
        def attempt(name, host):
            client = self.world.connect(host)
            client.take()
            client.write(f"/login {name} wrong")
            replies = []
            for _ in range(20):
                replies.extend(final_replies(client.take()))
                if replies:
                    break
                self.world.clock.advance(1)
            return replies

        known = [attempt("bob", "10.1.0.1") for _ in range(4)]
        self.world.clock.advance(60)
        unknown = [attempt("nobody", "10.2.0.1") for _ in range(4)]
        self.assertEqual(known, unknown)
        # Both ran bcrypt: the unknown one against a decoy hash.
        self.assertIn(None, self.world.hasher.verified)

    def test_failures_elsewhere_slow_the_right_password_but_never_refuse_it(self):
        for host in ("10.0.0.5", "10.0.0.6", "10.0.0.7"):
            self.fail("bob", host)
        victim = self.world.connect("10.0.0.99")
        victim.take()
        victim.write("/login bob right")
        self.assertEqual(victim.take(), [])
        self.world.clock.advance(4)
        self.assertTrue(final_replies(victim.take())[0].startswith("+OK welcome"))

    def test_the_admin_is_protected_the_same_way(self):
        self.fail("admin", "10.3.0.1")
        self.fail("admin", "10.3.0.1")
        client = self.world.connect("10.3.0.1")
        reply = self.refused(client, f"/login admin {ADMIN_PASSWORD}")
        self.assertTrue(reply.startswith("-ERR rate-limited"), reply)

    def test_the_bare_name_prompt_is_throttled_too(self):
        self.fail("bob", "10.0.0.8")
        self.fail("bob", "10.0.0.8")
        client = self.world.connect("10.0.0.8")
        self.assertTrue(client.command("bob").startswith("+OK bob is known"))
        self.assertTrue(self.refused(client, "right").startswith("-ERR rate-limited"))

    def test_failed_logins_are_logged_with_name_and_address(self):
        events = capture_log(self)
        self.fail("bob", "10.4.0.1")
        messages = [e for e in events if e.get("address") == "10.4.0.1"]
        self.assertEqual(len(messages), 1)
        self.assertNotIn("wrong", repr(events))

    def test_wrong_current_password_in_p_is_throttled(self):
        bob = self.world.user("bob", "right")
        other_session = self.world.user("bob", "right")
        self.assertTrue(bob.command("/p nope new1").startswith("-ERR auth-failed"))
        bob.write("/p nope new2")
        self.assertEqual(bob.take(), [])  # held for 2 s
        reply = self.refused(other_session, "/p right new3")
        self.assertTrue(reply.startswith("-ERR rate-limited"), reply)
        self.world.clock.advance(2)
        self.assertTrue(final_replies(bob.take())[0].startswith("-ERR auth-failed"))
        self.assertEqual(bob.command("/p right new3"), "+OK password changed")


class DecoyTimingTests(unittest.TestCase):
    def test_the_decoy_hash_costs_what_a_real_one_costs(self):
        # bcrypt's cost is its variant and its cost factor: the same as a
        # real hash's, so checking against the decoy takes as long (not
        # timed here: a wall clock on a shared machine proves nothing).
        rounds = 10
        hasher = PasswordHasher(None, rounds=rounds)
        real = hash_password("secret", rounds)
        self.assertEqual(hasher._decoy.split("$")[1:3], real.split("$")[1:3])
        self.assertEqual(len(hasher._decoy), len(real))
        self.assertFalse(verify_password("guess", hasher._decoy))


class PasswordLengthTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()

    def check_password(self, name: str, password: str) -> None:
        client = self.world.connect()
        self.assertTrue(
            client.command(f"/register {name} {password}").startswith("+OK")
        )
        client.command("/logout")
        client.close()
        again = self.world.connect()
        self.assertTrue(again.command(f"/login {name} {password}").startswith("+OK"))
        # The last byte counts: bcrypt alone would ignore it past 72.
        wrong = password[:-1] + ("y" if password[-1] != "y" else "z")
        self.assertTrue(
            self.world.connect("10.9.0.1")
            .command(f"/login {name} {wrong}")
            .startswith("-ERR auth-failed")
        )

    def test_72_byte_password(self):
        self.check_password("p72", "a" * 72)

    def test_73_byte_password(self):
        self.check_password("p73", "b" * 73)

    def test_1000_byte_password(self):
        self.check_password("p1000", "c" * 1000)

    def test_multibyte_password_past_72_bytes(self):
        self.check_password("pmb", "é" * 40 + "x")

    def test_passwords_past_1024_bytes_are_refused(self):
        reply = self.world.connect().command("/register big " + "d" * 1025)
        self.assertTrue(reply.startswith("-ERR bad-password"), reply)

    def test_interactive_registration_with_a_long_password(self):
        client = self.world.connect()
        self.assertTrue(client.command("longpw").startswith("+OK longpw is new"))
        self.assertTrue(client.command("e" * 500).startswith("+OK welcome"))
        again = self.world.connect()
        self.assertTrue(again.command("longpw").startswith("+OK longpw is known"))
        self.assertTrue(again.command("e" * 500).startswith("+OK welcome"))
