"""
The IRC front end, driven through its front door on a StringTransport
against the same in-memory server as the line protocol's tests.
"""

from __future__ import annotations

import base64

from twisted.trial import unittest

from chatroom.protocol.irc import message
from chatroom.protocol.irc.factory import IRCFactory
from chatroom.protocol.irc.message import format_line, head_length
from chatroom.protocol.irc.protocol import split_text
from chatroom.service.events import Membership, RoomMessage, event_from_dict
from tests.clients import MemoryClient
from tests.helpers import RELAXED, ChatWorld


def params(line: str) -> list[str]:
    return message.parse(line).params


def command_of(line: str) -> str:
    return message.parse(line).command


class ParsingTests(unittest.TestCase):
    def test_tags_source_command_and_trailing(self):
        parsed = message.parse(
            r"@a=1\s2\:3;b;+c=x\\y :nick!u@h PRIVMSG #room :hi there"
        )
        self.assertEqual(parsed.tags, {"a": "1 2;3", "b": "", "+c": "x\\y"})
        self.assertEqual(parsed.source, "nick!u@h")
        self.assertEqual(parsed.command, "PRIVMSG")
        self.assertEqual(parsed.params, ["#room", "hi there"])

    def test_command_is_upper_cased_and_spaces_collapse(self):
        parsed = message.parse("privmsg   bob   :a  b")
        self.assertEqual((parsed.command, parsed.params), ("PRIVMSG", ["bob", "a  b"]))

    def test_an_empty_trailing_parameter_is_kept(self):
        self.assertEqual(message.parse("TOPIC #a :").params, ["#a", ""])

    def test_blank_line_is_no_message(self):
        self.assertRaises(message.ParseError, message.parse, "   ")

    def test_tag_values_round_trip_through_escaping(self):
        value = "a; b\\c\r\nd"
        line = message.format_line("X", "y", tags={"k": value}).decode()
        self.assertEqual(message.parse(line.rstrip("\r\n")).tags, {"k": value})

    def test_format_makes_the_last_param_trailing_only_when_needed(self):
        self.assertEqual(message.format_line("PONG", "s", "tok"), b"PONG s tok\r\n")
        self.assertEqual(
            message.format_line("PRIVMSG", "#a", "x y"), b"PRIVMSG #a :x y\r\n"
        )
        self.assertEqual(
            message.format_line("PRIVMSG", "#a", ":)"), b"PRIVMSG #a ::)\r\n"
        )

    def test_head_length_is_what_format_line_puts_before_the_trailing(self):
        for command, middle, source in [
            ("PRIVMSG", ("#den",), "ann!ann@chatroom.irc"),
            ("NOTICE", ("#café", "x"), "é!é@h"),
            ("PING", (), None),
        ]:
            with self.subTest(command):
                line = format_line(command, *middle, "a b", source=source)
                self.assertEqual(
                    head_length(command, *middle, source=source),
                    len(line) - len(b":a b\r\n"),
                )

    def test_long_text_splits_between_characters(self):
        text = "é" * 300
        pieces = split_text(text, 101)
        self.assertEqual("".join(pieces), text)
        self.assertTrue(all(len(p.encode()) <= 101 for p in pieces))


class IRCTestCase(unittest.TestCase):
    guests = True

    def setUp(self):
        self.world = ChatWorld()
        self.irc = IRCFactory(self.world.factory.admission, RELAXED, guests=self.guests)

    def connect(self, host="10.0.0.2") -> MemoryClient:
        return MemoryClient(self.irc, host)

    def register(self, nick: str, *before: str, host="10.0.0.2") -> MemoryClient:
        client = self.connect(host)
        for line in before:
            client.write(line)
        client.write(f"NICK {nick}")
        client.write(f"USER {nick} 0 * :{nick} real")
        return client

    def welcomed(self, nick: str, *before: str) -> MemoryClient:
        client = self.register(nick, *before)
        lines = client.take()
        self.assertIn("001", [command_of(line) for line in lines], lines)
        return client

    def commands(self, lines: list[str]) -> list[str]:
        return [command_of(line) for line in lines]


class FramingTests(IRCTestCase):
    def test_byte_at_a_time_with_a_character_split_across_reads(self):
        alice = self.welcomed("alice")
        alice.write("JOIN #den")
        bob = self.welcomed("bob")
        bob.write("JOIN #den")
        alice.take()
        for byte in "PRIVMSG #den :café ☕\r\n".encode():
            bob.write_bytes(bytes([byte]))
        self.assertEqual(params(alice.take()[-1]), ["#den", "café ☕"])

    def test_bare_lf_ends_a_line(self):
        client = self.connect()
        client.write_bytes(b"PING :tok\n")
        self.assertEqual(params(client.take()[0])[-1], "tok")

    def test_invalid_utf8_gets_fail_naming_the_command(self):
        alice = self.welcomed("alice")
        alice.write_bytes(b"@label=x PRIVMSG bob :hi\xaa\r\n")
        (line,) = alice.take()
        self.assertEqual(params(line)[:2], ["PRIVMSG", "INVALID_UTF8"])
        self.assertEqual(command_of(line), "FAIL")

    def test_body_over_512_bytes_is_refused_but_tags_may_add_4096(self):
        alice = self.welcomed("alice")
        alice.write("PING :" + "x" * 600)
        self.assertEqual(self.commands(alice.take()), ["417"])
        # "@", 4094 bytes of tags and the space: a client's most (message-tags).
        alice.write("@+k=" + "v" * 4091 + " PING :tok")
        self.assertEqual(self.commands(alice.take()), ["PONG"])
        alice.write("@+k=" + "v" * 4092 + " PING :tok")
        self.assertEqual(self.commands(alice.take()), ["417"])

    def test_a_line_over_every_limit_is_refused_and_the_next_read(self):
        alice = self.welcomed("alice")
        alice.write_bytes(b"PING :" + b"x" * 9000 + b"\r\nPING :after\r\n")
        lines = alice.take()
        self.assertEqual(self.commands(lines), ["417", "PONG"])


class RegistrationTests(IRCTestCase):
    def test_cap_negotiation_holds_the_welcome_until_cap_end(self):
        client = self.register("alice", "CAP LS 302")
        lines = client.take()
        self.assertEqual(self.commands(lines), ["CAP"])
        self.assertIn("sasl=PLAIN", params(lines[0])[-1].split())
        client.write("CAP REQ :server-time bogus")
        self.assertEqual(params(client.take()[0])[1], "NAK")
        client.write("CAP REQ :server-time echo-message")
        self.assertEqual(
            params(client.take()[0])[1:], ["ACK", "server-time echo-message"]
        )
        client.write("CAP LIST")
        self.assertEqual(
            params(client.take()[0])[-1].split(),
            ["cap-notify", "echo-message", "server-time"],
        )
        client.write("CAP END")
        self.assertEqual(
            self.commands(client.take())[:5], ["001", "002", "003", "004", "005"]
        )

    def test_isupport_says_the_name_rules(self):
        client = self.register("alice")
        tokens = [
            token
            for line in client.take()
            if command_of(line) == "005"
            for token in params(line)[1:-1]
        ]
        for token in (
            "CASEMAPPING=ascii",
            "CHANTYPES=#",
            "NICKLEN=32",
            "CHANNELLEN=33",
            "TOPICLEN=390",
            "LINELEN=512",
        ):
            self.assertIn(token, tokens)

    def test_pass_logs_in_to_the_account_named_by_the_nick(self):
        self.world.user("carol", "secret").disconnect()
        client = self.register("carol", "PASS secret")
        lines = client.take()
        self.assertIn("001", self.commands(lines))
        # An account's rooms are its channels on every client.
        self.assertIn(":carol!carol@chatroom.irc JOIN #lobby", lines)

    def test_a_wrong_pass_is_refused_and_closed(self):
        self.world.user("carol", "secret").disconnect()
        client = self.register("carol", "PASS wrong")
        self.assertEqual(self.commands(client.take()), ["464", "ERROR"])
        self.assertTrue(client.closing)

    def _sasl(self, client, payload: bytes) -> list[str]:
        client.write("CAP REQ :sasl")
        client.write("AUTHENTICATE PLAIN")
        client.write("AUTHENTICATE " + base64.b64encode(payload).decode())
        return client.take()

    def test_sasl_plain_logs_in_before_the_welcome(self):
        self.world.user("dave", "pw-dave").disconnect()
        client = self.connect()
        client.write("CAP LS 302")
        client.write("NICK somebody")
        client.write("USER d 0 * :d")
        lines = self._sasl(client, b"\0dave\0pw-dave")
        self.assertEqual(
            self.commands(lines)[-4:], ["CAP", "AUTHENTICATE", "900", "903"]
        )
        self.assertEqual(params(lines[-2])[2], "dave")
        client.write("CAP END")
        lines = client.take()
        # The account's name becomes the nick.
        self.assertEqual(lines[0], ":somebody!d@chatroom.irc NICK dave")
        self.assertEqual(params(lines[1])[0], "dave")

    def test_sasl_with_a_wrong_password_fails_and_may_be_retried(self):
        self.world.user("dave", "pw-dave").disconnect()
        client = self.connect()
        client.write("CAP LS 302")
        self.assertEqual(self.commands(self._sasl(client, b"\0dave\0nope"))[-1], "904")
        self.assertEqual(
            self.commands(self._sasl(client, b"dave\0dave\0pw-dave"))[-1], "903"
        )

    def test_sasl_needs_the_cap_and_knows_only_plain(self):
        client = self.connect()
        client.write("AUTHENTICATE PLAIN")
        self.assertEqual(self.commands(client.take()), ["904"])
        client.write("CAP REQ sasl")
        client.write("AUTHENTICATE EXTERNAL")
        self.assertEqual(self.commands(client.take()), ["CAP", "908", "904"])

    def test_a_guest_may_not_take_an_accounts_name_or_a_name_online(self):
        self.world.user("erin").disconnect()
        client = self.register("erin")
        self.assertEqual(self.commands(client.take()), ["433"])
        client.write("NICK frank")
        self.assertIn("001", self.commands(client.take()))
        other = self.register("FRANK")
        self.assertEqual(self.commands(other.take()), ["433"])
        # Nor may anyone register it while the guest has it.
        line = self.world.connect()
        self.assertTrue(
            line.command("/register frank pw").startswith("-ERR name-taken")
        )
        client.disconnect()
        self.assertIn("001", self.commands(self.register("frank").take()))

    def test_a_guest_keeps_nothing(self):
        guest = self.welcomed("gina")
        guest.write("JOIN #lobby")
        guest.disconnect()
        lobby = self.world.chat.rooms.lobby
        self.assertNotIn("gina", lobby.members.values())
        self.assertIsNone(
            self.world.pool.connection.execute(
                "SELECT 1 FROM users WHERE name_key = 'gina'"
            ).fetchone()
        )
        self.assertEqual(
            self.world.pool.connection.execute(
                "SELECT count(*) FROM activity WHERE actor = 'gina'"
            ).fetchone(),
            (0,),
        )

    def test_bad_nicks_and_commands_before_registration(self):
        client = self.connect()
        client.write("NICK -bad")
        client.write("NICK")
        client.write("JOIN #lobby")
        client.write("FOO")
        self.assertEqual(self.commands(client.take()), ["432", "431", "451", "451"])


class SharedStringTests(IRCTestCase):
    """What each connection keeps of USER and NICK is one string per value."""

    def test_a_user_name_that_is_the_nick_is_the_nicks_string(self):
        client = self.connect()
        client.write("NICK alice")
        client.write("USER alice 0 * :Alice")
        protocol = client.protocol
        self.assertEqual(protocol.username, "alice")
        self.assertIs(protocol.username, protocol.nick)

    def test_connections_with_one_real_name_share_it(self):
        first, second = (self.register(nick) for nick in ("alice", "bob"))
        for client in (first, second):
            client.write("SETNAME :WeeChat user")
        self.assertIs(first.protocol.realname, second.protocol.realname)
        third = self.connect()
        third.write("NICK carol")
        third.write("USER carol 0 * :WeeChat user")
        self.assertIs(third.protocol.realname, first.protocol.realname)


class NoGuestTests(IRCTestCase):
    guests = False

    def test_without_an_account_nothing_can_be_done_and_a_notice_says_how(self):
        client = self.register("nobody")
        lines = client.take()
        self.assertEqual(self.commands(lines), ["NOTICE"])
        self.assertIn("SASL", params(lines[0])[-1])
        client.write("JOIN #lobby")
        client.write("PRIVMSG #lobby :hi")
        self.assertEqual(
            self.commands(client.take()), ["451", "NOTICE", "451", "NOTICE"]
        )
        self.assertFalse(self.world.chat.online_by_key)


class ChatTests(IRCTestCase):
    def test_irc_and_line_users_share_a_room_and_its_history(self):
        line = self.world.user("lena")
        irc = self.welcomed("ivan")
        irc.write("JOIN #lobby")
        self.assertEqual(line.take(), ["* ivan joined #lobby"])
        self.assertIn("lena", params(irc.take()[1])[-1].split())
        line.command("/public lobby hello irc")
        self.assertEqual(
            irc.take(), [":lena!lena@chatroom.irc PRIVMSG #lobby :hello irc"]
        )
        irc.write("PRIVMSG #lobby :hello line")
        self.assertEqual(line.take(), ["[lobby] ivan: hello line"])
        line.write("/history lobby")
        history = line.take()
        self.assertIn("[lobby] lena: hello irc", history[0])
        self.assertIn("[lobby] ivan: hello line", history[1])
        irc.write("PART #lobby :bye")
        self.assertEqual(line.take(), ["* ivan left #lobby"])

    def test_each_front_end_gets_its_own_bytes_whoever_is_first(self):
        irc_first = self.welcomed("ivan")
        irc_first.write("JOIN #lobby")
        line = self.world.user("lena")
        sender = self.world.user("sam")
        irc_first.take()
        for text in ("one", "two"):
            sender.command(f"/public lobby {text}")
        self.assertEqual(line.take(), ["[lobby] sam: one", "[lobby] sam: two"])
        self.assertEqual(
            irc_first.take(),
            [
                ":sam!sam@chatroom.irc PRIVMSG #lobby one",
                ":sam!sam@chatroom.irc PRIVMSG #lobby two",
            ],
        )

    def test_the_cache_is_per_front_end_whichever_encodes_first(self):
        line_client = self.world.user("lena")
        irc = self.welcomed("ivan")
        for first, second in ((line_client, irc), (irc, line_client)):
            event = RoomMessage("den", 1, "sam", "hi", 0)
            first.protocol.room_message(event)
            second.protocol.room_message(event)
            self.assertEqual(irc.take(), [":sam!sam@chatroom.irc PRIVMSG #den hi"])
            self.assertEqual(line_client.take(), ["[den] sam: hi"])

    def test_a_backed_up_irc_client_keeps_its_lines_in_order(self):
        irc = self.welcomed("ivan")
        irc.write("JOIN #lobby")
        irc.take()
        sender = self.world.user("sam")
        # Past the soft limit, as the transport says when its buffer fills.
        irc.protocol._output.pauseProducing()
        for text in ("one", "two"):
            sender.command(f"/public lobby {text}")
        irc.protocol._output.resumeProducing()
        self.assertEqual(
            irc.take(),
            [
                ":sam!sam@chatroom.irc PRIVMSG #lobby one",
                ":sam!sam@chatroom.irc PRIVMSG #lobby two",
            ],
        )
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_private_messages_both_ways_and_server_time(self):
        line = self.world.user("lena")
        irc = self.welcomed("ivan", "CAP REQ server-time", "CAP END")
        irc.take()
        line.command("/msg ivan psst")
        (got,) = irc.take()
        self.assertTrue(got.startswith("@time=1970-01-01T00:00:00.000Z :lena!"), got)
        irc.write("PRIVMSG lena :back")
        self.assertEqual(line.take(), ["[private] ivan: back"])
        irc.write("PRIVMSG nobody :x")
        self.assertEqual(self.commands(irc.take()), ["401"])

    def test_echo_message(self):
        irc = self.welcomed("ivan", "CAP REQ echo-message", "CAP END")
        irc.write("JOIN #den")
        irc.take()
        irc.write("PRIVMSG #den :me")
        self.assertEqual(irc.take(), [":ivan!ivan@chatroom.irc PRIVMSG #den me"])

    def test_nick_change_is_told_to_shared_channels_once(self):
        a, b = self.welcomed("ann"), self.welcomed("ben")
        for client in (a, b):
            client.write("JOIN #one,#two")
        a.take(), b.take()
        b.write("NICK bert")
        self.assertEqual(b.take(), [":ben!ben@chatroom.irc NICK bert"])
        self.assertEqual(a.take(), [":ben!ben@chatroom.irc NICK bert"])

    def test_quit_is_told_to_shared_channels_once(self):
        a, b = self.welcomed("ann"), self.welcomed("ben")
        for client in (a, b):
            client.write("JOIN #one,#two")
        a.take()
        b.write("QUIT :off")
        self.assertEqual(command_of(b.take()[-1]), "ERROR")
        b.close()
        self.assertEqual(self.commands(a.take()), ["QUIT"])

    def test_errors_have_their_numerics(self):
        irc = self.welcomed("ivan")
        irc.write("PRIVMSG #lobby :not a member")
        irc.write("PRIVMSG #nowhere :x")
        irc.write("PART #lobby")
        irc.write("JOIN lobby")
        irc.write("PRIVMSG")
        irc.write("PRIVMSG #lobby")
        irc.write("BOGUS")
        irc.write("NOTICE #nowhere :silent")
        self.assertEqual(
            self.commands(irc.take()), ["404", "403", "442", "403", "411", "412", "421"]
        )

    def test_names_who_whois_topic_mode_ping(self):
        irc = self.welcomed("ivan")
        irc.write("JOIN #den")
        irc.take()
        irc.write("NAMES #den")
        irc.write("WHO #den")
        irc.write("WHOIS ivan")
        irc.write("TOPIC #den")
        irc.write("MODE #den")
        irc.write("PING :t")
        self.assertEqual(
            self.commands(irc.take()),
            [
                "353",
                "366",
                "352",
                "315",
                "311",
                "319",
                "312",
                "317",
                "318",
                "331",
                "324",
                "PONG",
            ],
        )


class EventTests(unittest.TestCase):
    def test_membership_events_cross_the_bus_as_plain_data(self):
        event = Membership(Membership.RENAME, "den", "ann", "ann is now bo", "bo")
        again = event_from_dict(event.to_dict())
        self.assertEqual(
            (again.kind, again.room, again.name, again.text, again.new_name),
            ("rename", "den", "ann", "ann is now bo", "bo"),
        )
