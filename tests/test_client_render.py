"""Tests for chatroom.client.render: sanitising and styling for the screen."""

import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from chatroom.client.lines import (
    Data,
    Err,
    Notice,
    Ok,
    PrivateMessage,
    RoomMessage,
    SentMessage,
    Unrecognised,
)
from chatroom.client.render import Style, sanitize, use_colour

PLAIN = Style(colour=False)
COLOUR = Style(colour=True)


class SanitizeTests(TestCase):
    def test_ordinary_text_and_tab_pass_unchanged(self) -> None:
        text = "héllo\tworld — 你好 🙂 [x] *"
        self.assertEqual(sanitize(text), text)

    def test_csi_sequence_cannot_reach_the_terminal(self) -> None:
        self.assertEqual(sanitize("\x1b[2J\x1b[31mred"), "^[[2J^[[31mred")

    def test_osc_sequence_and_its_bel_are_shown(self) -> None:
        self.assertEqual(sanitize("\x1b]0;owned\x07title"), "^[]0;owned^Gtitle")

    def test_c1_controls_such_as_8_bit_csi_are_shown_as_hex(self) -> None:
        self.assertEqual(sanitize("\x9b2J\x9d0;x\x9c"), "\\x9b2J\\x9d0;x\\x9c")

    def test_carriage_return_backspace_nul_and_del_are_shown(self) -> None:
        self.assertEqual(sanitize("a\rb\x08c\x00d\x7f\n"), "a^Mb^Hc^@d^?^J")

    def test_bidi_overrides_and_isolates_are_shown(self) -> None:
        self.assertEqual(
            sanitize("abc\u202edcba\u2066x\u2069"), "abc<U+202E>dcba<U+2066>x<U+2069>"
        )

    def test_no_line_from_the_network_carries_the_lock(self) -> None:
        # The lock marks what this client opened and checked: a server
        # writing one as text could pass a line off as a sealed message.
        forged = "07:04 \U0001f512 [private] alice: send the money to carol"
        for line in (
            Unrecognised(forged),
            Notice(forged),
            PrivateMessage("alice", forged),
        ):
            shown = PLAIN.server_line(line)
            self.assertIn("<U+1F512>", shown)
            for lock in "\U0001f50f\U0001f510\U0001f512":
                self.assertNotIn(lock, sanitize(f"{lock} {shown}"))
        self.assertEqual(
            PLAIN.sealed_received(0, "bob", "\U0001f512 hi").split(" ", 1)[1],
            "\U0001f512 [private] bob: <U+1F512> hi",
        )

    @given(st.text())
    def test_no_control_character_survives(self, text: str) -> None:
        for character in sanitize(text):
            self.assertTrue(
                character == "\t"
                or (
                    unicodedata.category(character) != "Cc"
                    and not 0x202A <= ord(character) <= 0x202E
                    and not 0x2066 <= ord(character) <= 0x2069
                ),
                repr(character),
            )


class UseColourTests(TestCase):
    def test_colour_on_a_terminal(self) -> None:
        self.assertTrue(use_colour(True, {"TERM": "xterm"}))

    def test_no_colour_when_not_a_terminal(self) -> None:
        self.assertFalse(use_colour(False, {}))

    def test_no_color_set_turns_colour_off_but_empty_does_not(self) -> None:
        self.assertFalse(use_colour(True, {"NO_COLOR": "1"}))
        self.assertTrue(use_colour(True, {"NO_COLOR": ""}))

    def test_dumb_terminal_gets_no_colour(self) -> None:
        self.assertFalse(use_colour(True, {"TERM": "dumb"}))


class StyleTests(TestCase):
    def test_each_line_kind_renders_plainly_without_colour(self) -> None:
        cases = [
            (RoomMessage("lobby", "bob", "hi"), "[lobby] bob: hi"),
            (PrivateMessage("carol", "psst"), "[private] carol: psst"),
            (Notice("bob joined lobby"), "* bob joined lobby"),
            (Err("no-such-room", "no room x"), "error no-such-room: no room x"),
            (Ok("joined lobby"), "joined lobby"),
            (Data("lobby (default)"), "  lobby (default)"),
            (Unrecognised("what"), "what"),
        ]
        for line, expected in cases:
            self.assertEqual(PLAIN.server_line(line), expected)

    def test_kinds_look_distinct_in_colour(self) -> None:
        room = COLOUR.server_line(RoomMessage("lobby", "bob", "hi"))
        private = COLOUR.server_line(PrivateMessage("bob", "hi"))
        notice = COLOUR.server_line(Notice("hi"))
        error = COLOUR.server_line(Err("bad-text", "hi"))
        self.assertEqual(room, "\x1b[36m[lobby]\x1b[0m \x1b[1mbob\x1b[0m: hi")
        self.assertIn("\x1b[35;1m[private]", private)
        self.assertEqual(notice, "\x1b[33m* hi\x1b[0m")
        self.assertEqual(error, "\x1b[31merror bad-text: hi\x1b[0m")

    def test_hostile_text_is_sanitized_in_every_field(self) -> None:
        line = RoomMessage("l\x1b", "b\x9b", "\x1b[2J\u202e")
        self.assertEqual(PLAIN.server_line(line), "[l^[] b\\x9b: ^[[2J<U+202E>")
        self.assertNotIn("\x1b[2J", COLOUR.server_line(line))

    def test_own_messages_are_marked_sent_with_their_destination(self) -> None:
        self.assertEqual(PLAIN.sent(SentMessage("hi")), "✓ you: hi")
        self.assertEqual(PLAIN.sent(SentMessage("hi", "dev")), "✓ [dev] you: hi")
        self.assertEqual(
            PLAIN.sent(SentMessage("hi", "bob", private=True)),
            "✓ [private to bob] you: hi",
        )

    def test_client_messages_keep_their_lines_but_no_controls(self) -> None:
        self.assertEqual(PLAIN.warning("first\nsecond \x1b[0m"), "first\nsecond ^[[0m")
        self.assertEqual(PLAIN.info("connected"), "-- connected")
