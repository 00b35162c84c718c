"""IRC's HELP and HELPOP, from the command table."""

from __future__ import annotations

from chatroom.protocol.irc.commands.table import COMMANDS
from tests.test_irc import IRCTestCase, command_of, params


class HelpTests(IRCTestCase):
    def test_help_alone_lists_every_command(self):
        client = self.welcomed("hana")
        client.write("HELP")
        lines = client.take()
        self.assertEqual(command_of(lines[0]), "704")
        self.assertEqual(command_of(lines[-1]), "706")
        listed = " ".join(params(line)[-1] for line in lines[1:-1]).split()
        self.assertEqual(set(COMMANDS), set(listed) & set(COMMANDS))

    def test_help_on_a_command_gives_its_usage_and_what_it_does(self):
        client = self.welcomed("hana")
        for command in ("HELP privmsg", "HELPOP PRIVMSG"):
            client.write(command)
            lines = client.take()
            self.assertEqual(self.commands(lines), ["704", "705", "706"])
            self.assertEqual(params(lines[0])[1], "PRIVMSG")
            self.assertTrue(params(lines[0])[2].startswith("PRIVMSG <target>"))

    def test_an_unknown_subject_is_one_numeric(self):
        client = self.welcomed("hana")
        client.write("HELP NOSUCHTHING")
        (line,) = client.take()
        self.assertEqual(command_of(line), "524")
        self.assertEqual(params(line)[1], "NOSUCHTHING")

    def test_every_command_says_how_it_is_used(self):
        for name, entry in COMMANDS.items():
            self.assertTrue(entry.usage.startswith(name), name)
            self.assertTrue(entry.help, name)
