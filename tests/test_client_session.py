"""The bundled client's session: what it sends for what the person types."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
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


class FakeMessenger:
    """Takes /msg lines and deliveries; its start ends when the test says."""

    def __init__(self) -> None:
        self.started: defer.Deferred[None] = defer.Deferred()
        self.names: list[str] = []
        self.commands: list[str] = []
        self.received: list[object] = []
        self.stopped = False

    async def start(self, name: str) -> None:
        self.names.append(name)
        await self.started

    def command(self, line: str):
        if not line.startswith("/msg "):
            return None
        self.commands.append(line)
        return self._done()

    async def _done(self) -> None:
        pass

    def receive(self, line: object) -> None:
        self.received.append(line)

    def stop(self) -> None:
        self.stopped = True

    def placeholder_note(self, line: object) -> str | None:
        return None


class EndToEndSessionTests(TestCase):
    def setUp(self) -> None:
        self.transport = StringTransport()
        self.protocol = ChatClientProtocol()
        self.protocol.makeConnection(self.transport)
        self.ui = ScriptedUI(["pw"])
        self.e2e = FakeMessenger()
        self.session = ChatSession(
            self.protocol, self.ui, Style(colour=False), "alice", self.e2e
        )
        self.session.run()
        for reply in (b"+OK alice is known", b"+OK welcome", b"+OK timestamps on"):
            self.protocol.dataReceived(reply + b"\r\n")
        self.transport.clear()

    def test_lines_typed_before_timestamps_are_on_wait_too(self):
        protocol = ChatClientProtocol()
        transport = StringTransport()
        protocol.makeConnection(transport)
        e2e = FakeMessenger()
        session = ChatSession(
            protocol, ScriptedUI(["pw"]), Style(colour=False), "bob", e2e
        )
        session.run()
        protocol.dataReceived(b"+OK bob is known\r\n+OK welcome\r\n")
        session.line_entered("/msg alice early")
        self.assertEqual(e2e.commands, [])
        protocol.dataReceived(b"+OK timestamps on\r\n")
        e2e.started.callback(None)
        self.assertEqual(e2e.commands, ["/msg alice early"])

    def test_the_messenger_starts_after_login_as_the_user(self):
        self.assertEqual(self.e2e.names, ["alice"])

    def test_lines_typed_while_it_starts_wait_in_order(self):
        self.session.line_entered("/msg bob early")
        self.session.line_entered("/j dev")
        self.assertEqual((self.e2e.commands, self.transport.value()), ([], b""))
        self.e2e.started.callback(None)
        self.assertEqual(self.e2e.commands, ["/msg bob early"])
        self.assertEqual(self.transport.value(), b"/j dev\r\n")

    def test_private_messages_go_to_the_messenger_never_to_the_server(self):
        self.e2e.started.callback(None)
        self.session.line_entered("/msg bob secret")
        self.assertEqual(self.e2e.commands, ["/msg bob secret"])
        self.assertEqual(self.transport.value(), b"")

    def test_deliveries_go_to_the_messenger_and_the_rest_to_the_screen(self):
        self.e2e.started.callback(None)
        line = b"~ e2e bob pc alice phone msgid-0001 2026-11-25T07:26:16Z QUJD"
        self.protocol.dataReceived(line + b"\r\n* bob joined lobby\r\n")
        self.assertEqual(len(self.e2e.received), 1)
        self.assertEqual(self.e2e.received[0].msgid, "msgid-0001")
        self.assertEqual(self.ui.shown[-1], "* bob joined lobby")
        self.assertNotIn("QUJD", "\n".join(map(str, self.ui.shown)))

    def test_a_closed_connection_stops_it(self):
        self.e2e.started.callback(None)
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.e2e.stopped)

    def test_help_adds_the_clients_own_commands(self):
        self.e2e.started.callback(None)
        self.session.line_entered("/help")
        self.protocol.dataReceived(b"= /j ROOM  join a room\r\n+OK\r\n")
        self.assertIn("/fingerprint USER", self.ui.shown[-1])
        self.assertIn("/plain USER TEXT", self.ui.shown[-1])
