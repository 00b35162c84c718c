"""The bundled client's session: what it sends for what the person types."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import Style
from chatroom.client.session import ChatSession


class ScriptedUI:
    """Answers each prompt from a list, and keeps what it was shown."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.shown: list[object] = []
        self.handler = None

    def ask(self, prompt: str, secret: bool = False) -> defer.Deferred[str]:
        return defer.succeed(self.answers.pop(0))

    def show(self, text: object) -> None:
        self.shown.append(text)


class PasswordChangeTests(TestCase):
    def test_passwords_with_spaces_go_on_lines_of_their_own(self):
        transport = StringTransport()
        protocol = ChatClientProtocol()
        protocol.makeConnection(transport)
        ui = ScriptedUI(["old pw ", " new pw", " new pw"])
        session = ChatSession(protocol, ui, Style(colour=False))
        session._logged_in = True
        session.line_entered("/p")
        replies = [
            b"+OK type your current password",
            b"+OK type the new password",
            b"+OK password changed",
        ]
        for reply in replies:
            protocol.dataReceived(reply + b"\r\n")
        self.assertEqual(transport.value(), b"/p\r\nold pw \r\n new pw\r\n")
