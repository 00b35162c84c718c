"""The bundled client and discovery: actions and timestamps, parsed and shown."""

import time

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from chatroom.client.lines import (
    PrivateMessage,
    RoomMessage,
    SentMessage,
    Timestamped,
    Unrecognised,
    classify_outgoing,
    parse_line,
)
from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import Style
from chatroom.client.session import ChatSession
from tests.test_client_session import ScriptedUI

PLAIN = Style(colour=False, local_time=time.gmtime)
COLOUR = Style(colour=True, local_time=time.gmtime)
# 2026-12-03T07:04:05Z
AT = 1796281445


class ParseTests(TestCase):
    def test_room_and_private_actions(self) -> None:
        self.assertEqual(
            parse_line("[lobby] * bob waves: hello"),
            RoomMessage("lobby", "bob", "waves: hello", action=True),
        )
        self.assertEqual(
            parse_line("[private] * bob nods"),
            PrivateMessage("bob", "nods", action=True),
        )

    def test_a_message_is_not_an_action(self) -> None:
        self.assertFalse(parse_line("[lobby] bob: * waves").action)

    def test_timestamped_messages(self) -> None:
        self.assertEqual(
            parse_line("2026-12-03T07:04:05Z [lobby] bob: hi"),
            Timestamped(AT, RoomMessage("lobby", "bob", "hi")),
        )
        self.assertEqual(
            parse_line("2026-12-03T07:04:05Z [private] * bob nods"),
            Timestamped(AT, PrivateMessage("bob", "nods", action=True)),
        )

    def test_a_time_before_anything_else_is_not_a_message(self) -> None:
        line = "2026-12-03T07:04:05Z hello"
        self.assertEqual(parse_line(line), Unrecognised(line))


class OwnActionTests(TestCase):
    def test_me_and_describe_are_actions_of_ones_own(self) -> None:
        self.assertEqual(
            classify_outgoing("/me waves "), SentMessage("waves", action=True)
        )
        self.assertEqual(
            classify_outgoing("/describe <bob> nods"),
            SentMessage("nods", "bob", private=True, action=True),
        )
        self.assertIsNone(classify_outgoing("/me "))

    def test_shown_as_actions_once_confirmed(self) -> None:
        self.assertEqual(PLAIN.sent(SentMessage("waves", action=True)), "✓ * you waves")
        self.assertEqual(
            PLAIN.sent(SentMessage("nods", "bob", private=True, action=True)),
            "✓ [private to bob] * you nods",
        )


class RenderTests(TestCase):
    def test_actions_read_as_actions(self) -> None:
        self.assertEqual(
            PLAIN.server_line(RoomMessage("lobby", "bob", "waves", True)),
            "[lobby] * bob waves",
        )
        self.assertEqual(
            PLAIN.server_line(PrivateMessage("bob", "nods", True)),
            "[private] * bob nods",
        )
        self.assertEqual(
            COLOUR.server_line(RoomMessage("lobby", "bob", "waves", True)),
            "\x1b[36m[lobby]\x1b[0m * \x1b[1mbob\x1b[0m waves",
        )

    def test_hostile_action_text_is_sanitized(self) -> None:
        line = RoomMessage("lobby", "b\x1b", "\x1b[2J", True)
        self.assertEqual(PLAIN.server_line(line), "[lobby] * b^[ ^[[2J")

    def test_the_time_of_day_comes_first(self) -> None:
        line = Timestamped(AT, RoomMessage("lobby", "bob", "hi"))
        self.assertEqual(PLAIN.server_line(line), "07:04 [lobby] bob: hi")
        self.assertEqual(
            COLOUR.server_line(line),
            "\x1b[34m07:04\x1b[0m \x1b[36m[lobby]\x1b[0m \x1b[1mbob\x1b[0m: hi",
        )

    def test_the_time_is_the_persons_own(self) -> None:
        an_hour_ahead = Style(
            colour=False, local_time=lambda at: time.gmtime(at + 3600)
        )
        line = Timestamped(AT, PrivateMessage("bob", "nods", True))
        self.assertEqual(an_hour_ahead.server_line(line), "08:04 [private] * bob nods")


class SessionTests(TestCase):
    def test_timestamps_are_turned_on_after_login(self) -> None:
        transport = StringTransport()
        protocol = ChatClientProtocol()
        protocol.makeConnection(transport)
        ui = ScriptedUI(["secret"])
        ChatSession(protocol, ui, PLAIN, name="ann").run()
        protocol.dataReceived(b"+OK ann is known: type your password\r\n")
        self.assertEqual(transport.value(), b"ann\r\nsecret\r\n")
        protocol.dataReceived(b"+OK welcome, ann\r\n")
        self.assertEqual(transport.value(), b"ann\r\nsecret\r\n/set timestamps on\r\n")
        # A server without /set refuses; the session goes on, nothing shown.
        shown = len(ui.shown)
        protocol.dataReceived(b"-ERR bad-command unknown command /set; try /help\r\n")
        self.assertEqual(len(ui.shown), shown)
