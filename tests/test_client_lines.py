"""Tests for chatroom.client.lines: server lines and typed lines by kind."""

from twisted.trial.unittest import TestCase

from chatroom.client.lines import (
    Data,
    E2eDelivery,
    Err,
    Notice,
    Ok,
    PrivateMessage,
    RoomMessage,
    SentMessage,
    Unrecognised,
    classify_outgoing,
    parse_line,
    says_name_is_new,
)


class ParseLineTests(TestCase):
    def test_ok_with_and_without_text(self) -> None:
        self.assertEqual(parse_line("+OK"), Ok(""))
        self.assertEqual(parse_line("+OK pong"), Ok("pong"))

    def test_err_splits_code_from_sentence(self) -> None:
        self.assertEqual(
            parse_line("-ERR auth-failed wrong name or password"),
            Err("auth-failed", "wrong name or password"),
        )
        self.assertEqual(parse_line("-ERR bad-text"), Err("bad-text", ""))

    def test_data_line_keeps_its_text_verbatim(self) -> None:
        self.assertEqual(parse_line("=   indented: x"), Data("  indented: x"))
        self.assertEqual(parse_line("="), Data(""))

    def test_room_message(self) -> None:
        self.assertEqual(
            parse_line("[lobby] bob: hi: there [x]"),
            RoomMessage("lobby", "bob", "hi: there [x]"),
        )

    def test_private_message(self) -> None:
        self.assertEqual(
            parse_line("[private] carol: psst"), PrivateMessage("carol", "psst")
        )

    def test_notice(self) -> None:
        self.assertEqual(parse_line("* bob joined lobby"), Notice("bob joined lobby"))

    def test_lines_of_no_known_kind_are_kept_whole(self) -> None:
        for line in ("+OKAY", "hello", "[lobby]bob: x", "-ERRx", ""):
            self.assertEqual(parse_line(line), Unrecognised(line))


class E2eDeliveryTests(TestCase):
    LINE = "~ e2e alice pc bob phone msgid-0001 2026-11-25T07:26:16Z QUJD"

    def test_a_delivery_line_is_parsed_into_its_fields(self) -> None:
        self.assertEqual(
            parse_line(self.LINE),
            E2eDelivery(
                "alice", "pc", "bob", "phone", "msgid-0001", 1795591576, "QUJD"
            ),
        )

    def test_one_with_a_session_timestamp_in_front_is_one_too(self) -> None:
        line = "2026-11-25T07:26:17Z " + self.LINE
        self.assertEqual(parse_line(line), parse_line(self.LINE))

    def test_a_malformed_one_is_unrecognised(self) -> None:
        for line in (
            self.LINE.rsplit(" ", 1)[0],
            self.LINE + " extra",
            self.LINE.replace("2026-11-25", "2026-13-45"),
            "~ other kind",
        ):
            self.assertEqual(parse_line(line), Unrecognised(line), line)


class ClassifyOutgoingTests(TestCase):
    def test_plain_text_goes_to_the_default_room(self) -> None:
        self.assertEqual(classify_outgoing("hello all"), SentMessage("hello all"))

    def test_public_names_its_room_with_or_without_brackets(self) -> None:
        expected = SentMessage("hi there", "room1")
        self.assertEqual(classify_outgoing("/public room1 hi there"), expected)
        self.assertEqual(classify_outgoing("/public <room1> hi there"), expected)

    def test_private_and_msg_are_private_messages(self) -> None:
        expected = SentMessage("psst", "bob", private=True)
        self.assertEqual(classify_outgoing("/private <bob> psst"), expected)
        self.assertEqual(classify_outgoing("/msg bob psst"), expected)

    def test_other_commands_are_not_messages(self) -> None:
        for line in ("/j lobby", "/rooms", "/public lobby", "/p old new"):
            self.assertIsNone(classify_outgoing(line))


class NameReplyTests(TestCase):
    def test_a_reply_saying_new_means_a_new_account(self) -> None:
        self.assertTrue(says_name_is_new("alice is a new name; choose a password"))
        self.assertTrue(says_name_is_new("New user alice, password?"))

    def test_a_reply_saying_known_or_welcome_back_means_log_in(self) -> None:
        self.assertFalse(says_name_is_new("alice is known; password?"))
        self.assertFalse(says_name_is_new("welcome back alice, password?"))
        self.assertFalse(says_name_is_new("password for renewed-alice?"))
