"""
IRCv3 bot-mode on the IRC front end: user mode +B, ISUPPORT BOT, WHO's
flag, WHOIS's RPL_WHOISBOT, and the C{bot} tag on what a bot sends.
"""

from __future__ import annotations

from chatroom.protocol.irc import message
from tests.test_irc import IRCTestCase, command_of, params

TAGS = ("CAP REQ :message-tags", "CAP END")


class BotModeTests(IRCTestCase):
    def bot(self, nick: str = "robo", *before: str):
        client = self.welcomed(nick, *before)
        client.write(f"MODE {nick} +B")
        self.assertEqual(client.take(), [f":{nick}!{nick}@chatroom.irc MODE {nick} +B"])
        return client

    def test_isupport_names_the_bot_mode(self):
        ann = self.register("ann")
        isupport = [
            p for line in ann.take() if command_of(line) == "005" for p in params(line)
        ]
        self.assertIn("BOT=B", isupport)

    def test_b_is_set_shown_and_unset(self):
        robo = self.bot()
        robo.write("MODE robo")
        self.assertEqual(params(robo.take()[0])[-1], "+B")
        robo.write("MODE robo -B")
        self.assertEqual(robo.take(), [":robo!robo@chatroom.irc MODE robo -B"])
        robo.write("MODE robo -B")
        self.assertEqual(robo.take(), [])

    def test_whois_says_a_bot_is_one_and_a_user_is_not(self):
        self.bot()
        ann = self.welcomed("ann")
        ann.write("WHOIS robo")
        bots = [line for line in ann.take() if command_of(line) == "335"]
        self.assertEqual([params(line)[:2] for line in bots], [["ann", "robo"]])
        ann.write("WHOIS ann")
        self.assertNotIn("335", [command_of(line) for line in ann.take()])

    def test_who_flags_a_bot_with_b(self):
        robo = self.bot()
        ann = self.welcomed("ann")
        for client in (robo, ann):
            client.write("JOIN #den")
        ann.take()
        ann.write("WHO #den")
        flags = {
            params(line)[5]: params(line)[6]
            for line in ann.take()
            if command_of(line) == "352"
        }
        self.assertIn("B", flags["robo"])
        self.assertNotIn("B", flags["ann"])

    def test_a_bots_room_message_is_tagged_for_message_tags_only(self):
        robo = self.bot()
        ann = self.welcomed("ann", *TAGS)
        ben = self.welcomed("ben")
        for client in (robo, ann, ben):
            client.write("JOIN #den")
        ann.take(), ben.take(), robo.take()
        robo.write("PRIVMSG #den :beep")
        (tagged,) = ann.take()
        self.assertIn("bot", message.parse(tagged).tags)
        self.assertEqual(ben.take(), [":robo!robo@chatroom.irc PRIVMSG #den beep"])
        ann.write("PRIVMSG #den :hi")
        (plain,) = robo.take()
        self.assertNotIn("bot", plain)

    def test_a_bots_private_message_and_its_echo_are_tagged(self):
        robo = self.bot("robo", "CAP REQ :message-tags echo-message", "CAP END")
        ann = self.welcomed("ann", *TAGS)
        robo.write("PRIVMSG ann :beep")
        (echo,) = robo.take()
        (got,) = ann.take()
        self.assertIn("bot", message.parse(echo).tags)
        self.assertIn("bot", message.parse(got).tags)
