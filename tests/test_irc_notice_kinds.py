"""
A NOTICE stays a NOTICE once stored: in a room's history, in a private
conversation's history, and as a private message kept for an account that
was offline, as PRIVMSGs stay PRIVMSGs.
"""

from __future__ import annotations

from tests.test_irc import command_of, params
from tests.test_irc_chathistory import ChathistoryTestCase


class StoredKindTests(ChathistoryTestCase):
    def account_client(self, nick: str):
        self.world.user(nick, "secret").disconnect()
        return self.history_client(nick, "PASS secret")

    def test_room_history_keeps_notices(self):
        ann = self.account_client("ann")
        ann.write("JOIN #den")
        ann.write("PRIVMSG #den :hello")
        ann.write("NOTICE #den :a notice")
        ann.take()
        ann.write("CHATHISTORY LATEST #den * 10")
        inside = ann.take()[1:-1]
        self.assertEqual(
            [(command_of(line), params(line)[1]) for line in inside],
            [("PRIVMSG", "hello"), ("NOTICE", "a notice")],
        )

    def test_room_history_keeps_actions_as_ctcp_actions(self):
        ann = self.account_client("ann")
        ann.write("JOIN #den")
        ann.write("PRIVMSG #den :\x01ACTION waves\x01")
        ann.take()
        ann.write("CHATHISTORY LATEST #den * 10")
        (line,) = ann.take()[1:-1]
        self.assertEqual(params(line)[1], "\x01ACTION waves\x01")

    def test_private_history_keeps_notices(self):
        ann, bob = self.account_client("ann"), self.account_client("bob")
        ann.write("NOTICE bob :a notice")
        ann.write("PRIVMSG bob :a message")
        bob.take()
        bob.write("CHATHISTORY LATEST ann * 10")
        inside = bob.take()[1:-1]
        self.assertEqual(
            [command_of(line) for line in inside], ["NOTICE", "PRIVMSG"], inside
        )

    def test_a_notice_kept_while_offline_comes_as_a_notice(self):
        self.world.user("bob", "secret").disconnect()
        ann = self.account_client("ann")
        ann.write("NOTICE bob :while you were out")
        ann.write("PRIVMSG bob :and this")
        bob = self.register("bob", "PASS secret")
        kept = [line for line in bob.take() if line.startswith(":ann!")]
        self.assertEqual(
            [(command_of(line), params(line)[1]) for line in kept],
            [("NOTICE", "while you were out"), ("PRIVMSG", "and this")],
        )
