"""
The admission gate: every front end's one way in, with its rules once.
Driven through the line protocol's front door on an in-memory world.
"""

from __future__ import annotations

from twisted.trial import unittest

from chatroom.errors import BadName, BadPassword, LineTooLong
from chatroom.names import NAME_MAX, PASSWORD_MAX_BYTES, check_name, check_password
from chatroom.protocol.framing import LineFraming
from chatroom.service.throttle import LoginThrottle
from tests.helpers import RELAXED, ChatWorld


class FailedLoginLookupTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(RELAXED)
        self.world.user("bob", "right")
        self.lookups: list[str] = []
        store = self.world.chat.store
        find_user = store.find_user

        def counting(key):
            self.lookups.append(key)
            return find_user(key)

        self.patch(store, "find_user", counting)

    def test_a_failed_login_looks_the_account_up_once(self):
        client = self.world.connect()
        reply = client.command("/login bob wrong")
        self.assertTrue(reply.startswith("-ERR auth-failed"), reply)
        self.assertEqual(self.lookups, ["bob"])

    def test_a_failed_login_to_an_unknown_name_looks_it_up_once(self):
        client = self.world.connect()
        reply = client.command("/login nobody wrong")
        self.assertTrue(reply.startswith("-ERR auth-failed"), reply)
        self.assertEqual(self.lookups, ["nobody"])

    def test_the_failure_is_recorded_against_the_account_tried(self):
        client = self.world.connect()
        client.command("/login bob wrong")
        bob = self.world.user("bob", "right")
        bob.write("/log")
        self.assertTrue(
            any(line.endswith("login-failed bob 10.0.0.1") for line in bob.take())
        )


class IPv6ThrottleTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(RELAXED)
        self.world.factory.admission.throttle = LoginThrottle(
            self.world.clock, free=1, base=2, cap=16
        )
        for name in ("carol", "dave"):
            self.world.user(name, "right")

    def test_addresses_of_one_ipv6_64_are_throttled_as_one(self):
        first = self.world.connect("2001:db8:1:2::10")
        self.assertTrue(first.command("/login carol wrong").startswith("-ERR"))
        # The second failure from the same /64 is that party's second: delayed.
        second = self.world.connect("2001:db8:1:2:ffff::99")
        second.take()
        second.write("/login dave wrong")
        self.assertEqual(second.take(), [])
        self.world.clock.advance(2)
        self.assertTrue(second.take()[-1].startswith("-ERR auth-failed"))

    def test_another_ipv6_64_is_another_party(self):
        first = self.world.connect("2001:db8:1:2::10")
        first.command("/login carol wrong")
        elsewhere = self.world.connect("2001:db8:1:3::10")
        reply = elsewhere.command("/login dave wrong")
        self.assertTrue(reply.startswith("-ERR auth-failed"), reply)


class LimitsInErrorTextTests(unittest.TestCase):
    """Error sentences state the limit in force, not a number written twice."""

    def test_bad_name_states_the_name_limit(self):
        with self.assertRaises(BadName) as caught:
            check_name("x" * (NAME_MAX + 1))
        self.assertIn(f"1 to {NAME_MAX}", caught.exception.message)

    def test_bad_password_states_the_size_limit(self):
        with self.assertRaises(BadPassword) as caught:
            check_password("x" * (PASSWORD_MAX_BYTES + 1))
        self.assertIn(str(PASSWORD_MAX_BYTES), caught.exception.message)

    def test_a_front_end_with_its_own_line_limit_says_its_own_number(self):
        refused = []

        class Short(LineFraming):
            max_line = 10

            def textReceived(self, text):
                pass

            def textRefused(self, error):
                refused.append(error)

        Short().dataReceived(b"x" * 20 + b"\n")
        [error] = refused
        self.assertIsInstance(error, LineTooLong)
        self.assertEqual(error.message, "lines are at most 10 bytes")


class PasswordsVerbatimTests(unittest.TestCase):
    """One rule everywhere: a password is taken as typed, spaces and all."""

    def setUp(self):
        self.world = ChatWorld(RELAXED)

    def test_spaces_at_the_ends_count_in_register_and_login(self):
        client = self.world.connect()
        self.assertTrue(client.command("/register bob  two words ").startswith("+OK"))
        for wrong in ("/login bob two words", "/login bob  two words"):
            other = self.world.connect()
            self.assertTrue(other.command(wrong).startswith("-ERR auth-failed"), wrong)
        other = self.world.connect()
        self.assertTrue(other.command("/login bob  two words ").startswith("+OK"))

    def test_the_interactive_prompt_and_login_agree(self):
        client = self.world.connect()
        client.command("carol")
        self.assertTrue(client.command(" padded pw ").startswith("+OK welcome"))
        other = self.world.connect()
        self.assertTrue(other.command("/login carol  padded pw ").startswith("+OK"))

    def test_p_alone_takes_an_old_password_with_spaces(self):
        client = self.world.connect()
        client.command("/register dave old pw")
        self.assertEqual(client.command("/p"), "+OK type your current password")
        self.assertEqual(client.command("old pw"), "+OK type the new password")
        self.assertEqual(client.command(" new pw "), "+OK password changed")
        other = self.world.connect()
        self.assertTrue(other.command("/login dave  new pw ").startswith("+OK"))

    def test_p_old_new_keeps_the_spaces_of_the_new_one(self):
        client = self.world.connect()
        client.command("/register erin old")
        self.assertEqual(client.command("/p old  new pw"), "+OK password changed")
        other = self.world.connect()
        self.assertTrue(other.command("/login erin  new pw").startswith("+OK"))
