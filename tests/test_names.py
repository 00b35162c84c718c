"""What a valid name, password and message text look like."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from chatroom.errors import BadName, BadPassword, BadText, TextTooLong
from chatroom.names import (
    TEXT_MAX_BYTES,
    check_name,
    check_password,
    check_room_name,
    check_text,
    name_key,
)


class NameTests(unittest.TestCase):
    def test_valid_names(self):
        for name in ("a", "A1", "9lives", "x" * 32, "al.ice_b-c"):
            self.assertEqual(check_name(name), name)

    def test_invalid_names(self):
        for name in ("", "x" * 33, "_a", "-a", ".a", "a b", "a!", "élodie", "a\n"):
            self.assertRaises(BadName, check_name, name)

    def test_room_names_may_start_with_a_hash_that_is_not_kept(self):
        self.assertEqual(check_room_name("#dev"), "dev")
        self.assertEqual(check_room_name("dev"), "dev")
        for name in ("#", "##dev", "#-dev"):
            self.assertRaises(BadName, check_room_name, name)

    def test_names_differing_only_in_case_have_one_key(self):
        self.assertEqual(name_key("Alice"), name_key("aLICE"))
        self.assertNotEqual(name_key("alice"), name_key("alice2"))


class PasswordTests(unittest.TestCase):
    def test_passwords_of_1_to_1024_bytes(self):
        for password in ("p", "p" * 1024, "é" * 512, "with spaces\tand tab"):
            self.assertEqual(check_password(password), password)

    def test_empty_too_long_or_control_passwords_are_refused(self):
        for password in ("", "p" * 1025, "é" * 513, "a\x00b", "a\x1b", "\x7f"):
            self.assertRaises(BadPassword, check_password, password)


FORBIDDEN = (
    [chr(c) for c in range(0x20) if c != 0x09]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e"]
    + ["\u2066", "\u2067", "\u2068", "\u2069"]
)


class TextTests(unittest.TestCase):
    def test_every_forbidden_character_is_refused(self):
        for char in FORBIDDEN:
            self.assertRaises(BadText, check_text, f"a{char}b")

    def test_tab_and_ordinary_unicode_are_allowed(self):
        for text in ("a\tb", "héllo wörld", "日本語", "emoji 😀"):
            self.assertEqual(check_text(text), text)

    def test_blank_text_is_refused(self):
        for text in ("", " ", "\t \t"):
            self.assertRaises(BadText, check_text, text)

    def test_text_is_normalised_to_nfc(self):
        self.assertEqual(check_text("cafe\u0301"), "caf\u00e9")

    @given(st.text())
    def test_accepted_text_never_carries_a_forbidden_character(self, text):
        try:
            checked = check_text(text)
        except BadText:
            return
        self.assertFalse(set(checked) & set(FORBIDDEN))


class TextRoundTwoTests(unittest.TestCase):
    """Text that looks empty, reorders a line, or outgrows its limit."""

    def test_a_message_of_invisible_characters_only_is_refused(self):
        for text in [
            "\u200b\u200b",
            "\u3164",
            "\u2800 \u2800",
            "\u00a0\u2060",
            "\u0301",
        ]:
            with self.assertRaises(BadText, msg=ascii(text)):
                check_text(text)

    def test_visible_text_with_invisible_characters_passes(self):
        self.assertEqual(check_text("a\u200bb"), "a\u200bb")

    def test_bidi_marks_and_line_separators_are_refused(self):
        for char in "\u200e\u200f\u061c\u2028\u2029":
            with self.assertRaises(BadText, msg=ascii(char)):
                check_text(f"x{char}y")

    def test_length_is_checked_after_normalising(self):
        # U+FB2C (a Hebrew presentation form) decomposes under NFC into three
        # code points: 3 bytes become 6.
        text = "\ufb2c" * (TEXT_MAX_BYTES // 3)
        self.assertLessEqual(len(text.encode()), TEXT_MAX_BYTES)
        with self.assertRaises(TextTooLong):
            check_text(text)
