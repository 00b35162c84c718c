"""REGISTER (IRCv3 draft/account-registration): accounts made from an IRC client."""

from __future__ import annotations

from dataclasses import replace

from chatroom.protocol.irc.factory import IRCFactory
from tests.helpers import RELAXED, ChatWorld
from tests.test_irc import IRCTestCase, command_of, params


def fails(lines: list[str]) -> list[list[str]]:
    return [params(line)[1:3] for line in lines if command_of(line) == "FAIL"]


class RegisterBeforeConnectTests(IRCTestCase):
    guests = False

    def negotiating(self, nick: str = "nell"):
        client = self.connect()
        client.write("CAP LS 302")
        client.write(f"NICK {nick}")
        client.write(f"USER {nick} 0 * :Nell")
        client.take()
        return client

    def test_the_cap_says_before_connect_and_no_custom_names(self):
        client = self.connect()
        client.write("CAP LS 302")
        offered = params(client.take()[0])[-1].split()
        self.assertIn("draft/account-registration=before-connect", offered)

    def test_register_makes_the_account_logs_in_and_the_welcome_follows(self):
        client = self.negotiating()
        client.write("REGISTER * * a-long-passphrase")
        lines = client.take()
        self.assertEqual(params(lines[0])[:2], ["SUCCESS", "nell"])
        self.assertEqual(command_of(lines[1]), "900")
        client.write("CAP END")
        lines = client.take()
        self.assertIn("001", self.commands(lines))
        self.assertIn(":nell!nell@chatroom.irc JOIN #lobby", lines)
        # The account is real: the line protocol logs in to it.
        line = self.world.connect()
        self.assertTrue(line.command("/login nell a-long-passphrase").startswith("+OK"))

    def test_after_a_refusal_for_want_of_an_account_register_lets_in(self):
        client = self.connect()
        client.write("NICK nora")
        client.write("USER nora 0 * :Nora")
        self.assertEqual(self.commands(client.take()), ["NOTICE"])
        client.write("REGISTER nora * a-long-passphrase")
        lines = client.take()
        self.assertEqual(self.commands(lines)[:3], ["REGISTER", "900", "001"])

    def test_the_account_must_be_the_nick(self):
        client = self.negotiating()
        client.write("REGISTER other * a-long-passphrase")
        self.assertEqual(fails(client.take()), [["ACCOUNT_NAME_MUST_BE_NICK", "other"]])
        self.assertIsNone(client.protocol.avatar)

    def test_a_nick_comes_first(self):
        client = self.connect()
        client.write("CAP LS 302")
        client.write("REGISTER * * a-long-passphrase")
        self.assertEqual(fails(client.take()), [["NEED_NICK", "*"]])

    def test_a_taken_name_a_reserved_name_and_a_bad_password_change_nothing(self):
        self.world.user("taken").disconnect()
        client = self.negotiating("taken")
        client.write("REGISTER * * a-long-passphrase")
        self.assertEqual(fails(client.take()), [["ACCOUNT_EXISTS", "taken"]])
        client = self.negotiating("root")
        client.write("REGISTER * * a-long-passphrase")
        self.assertEqual(fails(client.take()), [["ACCOUNT_EXISTS", "root"]])
        client = self.negotiating("nell")
        client.write("REGISTER * * bell\x07password")
        self.assertEqual(fails(client.take()), [["UNACCEPTABLE_PASSWORD", "nell"]])
        self.assertIsNone(client.protocol.avatar)

    def test_logged_in_already_is_refused(self):
        self.world.user("carol", "secret").disconnect()
        client = self.register("carol", "PASS secret")
        client.take()
        client.write("REGISTER * * a-long-passphrase")
        self.assertEqual(fails(client.take()), [["ALREADY_AUTHENTICATED", "*"]])

    def test_registrations_are_rate_limited_as_on_the_line_port(self):
        limits = replace(RELAXED, register_rate=3, register_burst=2)
        self.world = ChatWorld(limits)
        self.irc = IRCFactory(self.world.factory.admission, limits)
        for n in range(2):
            client = self.negotiating(f"user{n}")
            client.write("REGISTER * * a-long-passphrase")
            self.assertEqual(self.commands(client.take())[0], "REGISTER")
        client = self.negotiating("onemore")
        client.write("REGISTER * * a-long-passphrase")
        self.assertEqual(fails(client.take()), [["TEMPORARILY_UNAVAILABLE", "onemore"]])


class RegisterAsGuestTests(IRCTestCase):
    def test_a_guest_registers_its_nick_and_keeps_its_channels(self):
        guest = self.welcomed("gina")
        guest.write("JOIN #den")
        other = self.welcomed("otto")
        other.write("JOIN #den")
        guest.take()
        other.take()
        guest.write("REGISTER * * a-long-passphrase")
        lines = guest.take()
        self.assertEqual(self.commands(lines)[:2], ["REGISTER", "900"])
        account = guest.protocol.avatar.account
        self.assertFalse(account.is_guest)
        den = self.world.chat.rooms.find("den")
        self.assertEqual(den.members.get(account.id), "gina")
        # Others see the same nick, there all along: no QUIT, a JOIN at most.
        self.assertNotIn("QUIT", self.commands(other.take()))
        other.write("PRIVMSG #den :still here?")
        self.assertIn("still here?", guest.take()[-1])

    def test_a_guest_refused_stays_a_guest(self):
        guest = self.welcomed("gina")
        guest.write("REGISTER * * bell\x07password")
        lines = guest.take()
        self.assertEqual(fails(lines), [["UNACCEPTABLE_PASSWORD", "gina"]], lines)
        self.assertTrue(guest.protocol.avatar.account.is_guest)
        self.assertIs(
            self.world.chat.online_by_key["gina"], guest.protocol.avatar.account
        )
