"""
A room message reaches many IRC members in one call per kind of client
(IRCProtocol.room_message_fan_out): each member still gets the encoding of
its own caps.
"""

from __future__ import annotations

from tests.helpers import capture_log
from tests.test_irc import IRCTestCase


class FanOutTests(IRCTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.welcomed("alice")
        self.timed = [
            self.welcomed(f"t{i}", "CAP REQ server-time", "CAP END") for i in range(2)
        ]
        self.plain = [self.welcomed(f"p{i}") for i in range(2)]
        everyone = (self.alice, *self.timed, *self.plain)
        for client in everyone:
            client.write("JOIN #den")
        for client in everyone:
            client.take()

    def test_each_member_gets_the_encoding_of_its_caps(self):
        # Two messages in one read: the second is appended to output the
        # first began in the same turn, the fan-out's short path.
        self.alice.write_bytes(b"PRIVMSG #den :one\r\nPRIVMSG #den :two\r\n")
        for client in self.timed:
            lines = client.take()
            self.assertEqual(len(lines), 2, lines)
            for line, text in zip(lines, ("one", "two"), strict=True):
                self.assertTrue(line.startswith("@time="), line)
                self.assertTrue(line.endswith(f"PRIVMSG #den {text}"), line)
        for client in self.plain:
            self.assertEqual(
                client.take(),
                [f":alice!alice@chatroom.irc PRIVMSG #den {t}" for t in ("one", "two")],
            )
        # The sender is not a recipient (no echo-message here).
        self.assertEqual(self.alice.take(), [])

    def test_a_member_whose_delivery_fails_costs_the_others_nothing(self):
        log = capture_log(self)
        broken = self.plain[0].protocol

        def refuse(message, echo=False):
            raise ConnectionError("broken")

        broken.room_message = refuse
        self.alice.write("PRIVMSG #den :one")
        for client in (*self.timed, self.plain[1]):
            self.assertEqual(len(client.take()), 1)
        [failure] = [e for e in log if "log_failure" in e]
        self.assertIs(failure["client"], broken)
        self.flushLoggedErrors(ConnectionError)
