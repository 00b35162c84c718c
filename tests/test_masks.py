"""IRC masks: C{*} and C{?} and nothing else, matched without a regex."""

import re

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from chatroom.masks import MASK_MAX, matches
from tests.test_irc_misc import IRCCase


class MaskTests(unittest.TestCase):
    def test_star_and_question_mark(self):
        for mask in ("chatroom.irc", "*", "*.irc", "chat*", "ch?troom.irc", "*o*o*"):
            self.assertTrue(matches(mask, "chatroom.irc"), mask)
        for mask in ("", "chatroom", "?", "*.org", "chatroom.irc?", "a*"):
            self.assertFalse(matches(mask, "chatroom.irc"), mask)

    def test_nothing_else_is_special(self):
        for mask in ("[c]hatroom.irc", "chatroom.ir[a-z]", "chatroom\\.irc"):
            self.assertFalse(matches(mask, "chatroom.irc"), mask)
        self.assertTrue(matches("[c]*", "[c]hat"))

    def test_a_mask_over_the_limit_matches_nothing(self):
        self.assertTrue(matches("*" * MASK_MAX, "x"))
        self.assertFalse(matches("*" * (MASK_MAX + 1), "x"))

    def test_a_backtracking_mask_is_answered(self):
        # Seconds for a regex; a few hundred steps here.
        self.assertFalse(matches("*a" * 20 + "b", "a" * 32))
        self.assertTrue(matches("*a" * 20 + "*", "a" * 32))

    @given(st.text("ab*?", max_size=8), st.text("ab", max_size=8))
    def test_as_a_regex_would_match(self, mask, text):
        pattern = re.escape(mask).replace(r"\*", ".*").replace(r"\?", ".")
        self.assertEqual(matches(mask, text), re.fullmatch(pattern, text) is not None)


# A mask a backtracking regex takes many seconds to refuse on a long name.
SLOW_MASK = "*a" * 16 + "b"
LONG_NAME = "a" * 32


class MaskUseTests(IRCCase):
    """WHO, LIST and bans match masks a client chose: by L{matches}."""

    def test_who_answers_a_backtracking_mask(self):
        self.welcomed(LONG_NAME)
        bob = self.welcomed("bob")
        bob.write(f"WHO {SLOW_MASK}")
        self.assertEqual(self.commands(bob.take()), ["315"])
        bob.write("WHO *a*a*a*")
        self.assertEqual(self.commands(bob.take()), ["352", "315"])

    def test_list_answers_a_backtracking_mask(self):
        bob = self.welcomed("bob", f"#{LONG_NAME}")
        bob.take()
        bob.write(f"LIST #{SLOW_MASK}")
        self.assertEqual(self.commands(bob.take()), ["321", "323"])
        bob.write("LIST #*a*a*a*")
        self.assertEqual(self.commands(bob.take()), ["321", "322", "323"])

    def test_a_backtracking_ban_mask_bans_only_whom_it_matches(self):
        bob = self.welcomed("bob", "#den")
        bob.write(f"MODE #den +b {SLOW_MASK}!*@*")
        bob.write("MODE #den +b *a*a*z*!*@*")
        bob.take()
        joiner = self.welcomed(LONG_NAME)
        joiner.write("JOIN #den")
        self.assertIn("JOIN", self.commands(joiner.take()))
        zed = self.welcomed("zaaz")
        zed.write("JOIN #den")
        self.assertEqual(self.commands(zed.take()), ["474"])
