"""
A room message reaches many IRC members in one call per kind of client
(IRCProtocol.room_message_fan_out): each member still gets the encoding of
its own caps.
"""

from __future__ import annotations

from tests.test_irc import IRCTestCase


class FanOutTests(IRCTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.welcomed("alice")
        self.timed = [
            self.welcomed(f"t{i}", "CAP REQ server-time", "CAP END") for i in range(2)
        ]
        self.plain = [self.welcomed(f"p{i}") for i in range(2)]
        for client in (self.alice, *self.timed, *self.plain):
            client.write("JOIN #den")
            client.take()
        for client in (*self.timed, *self.plain):
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
