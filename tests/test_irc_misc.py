"""
The IRC front end's smaller commands and rules: what fits in a relayed
line, USER's real name, PART and QUIT reasons, NOTICE, the server's own
queries (TIME, VERSION, INFO, LUSERS), user modes, and the operator's
OPER, KILL and WALLOPS.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.python import usage
from twisted.trial import unittest

from chatroom.errors import AuthFailed, PermissionDenied
from chatroom.protocol.irc import message
from chatroom.protocol.irc.factory import IRCFactory
from chatroom.service.admission import Admission
from chatroom.service.events import NOTICE, Membership, RoomMessage, event_from_dict
from chatroom.service.throttle import LoginThrottle
from tests.clients import MemoryClient
from tests.helpers import ADMIN_PASSWORD, RELAXED, ChatWorld, fired, parse_options


def parsed(line: str) -> message.Message:
    return message.parse(line)


class IRCCase(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        admission = Admission(self.world.chat, operators=["opal"])
        self.irc = IRCFactory(admission, RELAXED, guests=True)

    def connect(self) -> MemoryClient:
        return MemoryClient(self.irc, "10.0.0.2")

    def welcomed(self, nick: str, *channels: str) -> MemoryClient:
        client = self.connect()
        client.write(f"NICK {nick}")
        client.write(f"USER {nick} 0 * :{nick} real")
        for channel in channels:
            client.write(f"JOIN {channel}")
        lines = client.take()
        self.assertIn("001", self.commands(lines), lines)
        return client

    def commands(self, lines: list[str]) -> list[str]:
        return [parsed(line).command for line in lines]

    def only(self, lines: list[str], command: str) -> list[message.Message]:
        return [parsed(line) for line in lines if parsed(line).command == command]


class RelayedLengthTests(IRCCase):
    def test_an_over_long_privmsg_is_cut_to_one_relayed_line(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        text = "a" * 480 + "😃"
        bob.write(f"PRIVMSG #den :{text}")
        (line,) = alice.take()
        self.assertLessEqual(len(line.encode()) + 2, 512)
        relayed = parsed(line).params[1]
        self.assertTrue(text.startswith(relayed))
        self.assertLess(len(relayed), len(text))

    def test_a_cut_falls_between_characters(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write("PRIVMSG #den :" + "é" * 247)
        (line,) = alice.take()
        self.assertEqual(set(parsed(line).params[1]), {"é"})

    def test_what_fits_is_relayed_whole(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write("PRIVMSG alice :" + "b" * 400)
        (line,) = alice.take()
        self.assertEqual(parsed(line).params, ["alice", "b" * 400])


class RegistrationRuleTests(IRCCase):
    def test_an_empty_real_name_is_not_enough_parameters(self):
        client = self.connect()
        client.write("NICK alice")
        client.write("USER alice 0 * :")
        (line,) = client.take()
        self.assertEqual(parsed(line).command, "461")
        self.assertEqual(parsed(line).params[:2], ["*", "USER"])
        client.write("USER alice 0 * :Alice")
        self.assertIn("001", self.commands(client.take()))

    def test_a_line_that_is_not_utf8_gets_a_fail_from_the_server(self):
        client = self.connect()
        client.write("NICK alice")
        client.write_bytes(b"USER alice 0 * :i\xe8rc\xe9\r\n")
        (line,) = client.take()
        self.assertEqual(parsed(line).source, "chatroom.irc")
        self.assertEqual(parsed(line).params[:2], ["USER", "INVALID_UTF8"])


class ReasonTests(IRCCase):
    def test_a_part_reason_reaches_the_other_members(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write("PART #den :bye everyone")
        self.assertEqual(parsed(bob.take()[0]).params, ["#den", "bye everyone"])
        (part,) = alice.take()
        self.assertEqual(parsed(part).command, "PART")
        self.assertEqual(parsed(part).params, ["#den", "bye everyone"])

    def test_a_part_without_reason_has_none(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write("PART #den")
        self.assertEqual(parsed(alice.take()[0]).params, ["#den"])

    def test_a_guests_quit_reason_reaches_its_channels(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write("QUIT :off to bed")
        (quit,) = alice.take()
        self.assertEqual(parsed(quit).source, "bob!bob@chatroom.irc")
        self.assertEqual(parsed(quit).params, ["Quit: off to bed"])

    def test_a_lost_connection_says_so(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.disconnect()
        self.assertEqual(parsed(alice.take()[0]).params, ["Connection closed"])

    def test_an_account_going_offline_stays_in_its_channels(self):
        # Always-on: an account is a member while offline, so no QUIT.
        self.world.user("carol", "secret").disconnect()
        alice = self.welcomed("alice", "#lobby")
        carol = self.connect()
        for line in ("PASS secret", "NICK carol", "USER c 0 * :Carol"):
            carol.write(line)
        carol.take()
        alice.take()
        carol.write("QUIT :later")
        self.assertEqual(alice.take(), [])

    def test_the_reason_crosses_nodes(self):
        event = Membership(Membership.LEAVE, "den", "bob", "bob left #den", None, "x")
        self.assertEqual(event_from_dict(event.to_dict()).reason, "x")


class NoticeTests(IRCCase):
    def test_a_notice_to_a_channel_stays_a_notice(self):
        alice, bob = self.welcomed("alice", "#den"), self.welcomed("bob", "#den")
        alice.take()
        bob.write("NOTICE #den :hello there")
        (line,) = alice.take()
        self.assertEqual(parsed(line).command, "NOTICE")
        self.assertEqual(parsed(line).params, ["#den", "hello there"])

    def test_a_notice_is_echoed_as_a_notice(self):
        alice = self.connect()
        for line in ("CAP LS 302", "CAP REQ :echo-message", "CAP END"):
            alice.write(line)
        alice.write("NICK alice")
        alice.write("USER alice 0 * :Alice")
        alice.write("JOIN #den")
        alice.take()
        alice.write("NOTICE #den :hi")
        self.assertEqual(self.commands(alice.take()), ["NOTICE"])

    def test_a_private_notice_stays_a_notice(self):
        alice, bob = self.welcomed("alice"), self.welcomed("bob")
        bob.write("NOTICE alice :psst")
        self.assertEqual(self.commands(alice.take()), ["NOTICE"])

    def test_the_line_protocol_shows_a_notice_as_a_message(self):
        carol = self.world.user("carol")
        bob = self.welcomed("bob", "#lobby")
        carol.take()
        bob.write("NOTICE #lobby :hello")
        self.assertEqual(carol.take(), ["[lobby] bob: hello"])

    def test_the_kind_crosses_nodes(self):
        message_ = RoomMessage("den", 1, "bob", "hi", 0, NOTICE)
        self.assertEqual(event_from_dict(message_.to_dict()).kind, NOTICE)


class ServerQueryTests(IRCCase):
    def test_time_names_the_server(self):
        alice = self.welcomed("alice")
        alice.write("TIME")
        (line,) = alice.take()
        self.assertEqual(parsed(line).command, "391")
        self.assertEqual(parsed(line).params[:2], ["alice", "chatroom.irc"])
        alice.write("TIME elsewhere.example")
        self.assertEqual(self.commands(alice.take()), ["402"])

    def test_a_server_mask_is_matched_case_insensitively(self):
        alice = self.welcomed("alice")
        for target in ("CHATROOM.IRC", "*.irc", "Chat*", "ch?troom.irc", "alice"):
            alice.write(f"TIME {target}")
            self.assertEqual(self.commands(alice.take()), ["391"], target)

    def test_a_server_mask_is_no_glob_pattern(self):
        # fnmatch would take [c] as a set and cache every pattern sent.
        alice = self.welcomed("alice")
        for target in ("[c]hatroom.irc", "*" * 300, "*a" * 240):
            for command in ("TIME", "VERSION", "INFO"):
                alice.write(f"{command} {target}")
                self.assertEqual(self.commands(alice.take()), ["402"], target)

    def test_version_then_isupport(self):
        alice = self.welcomed("alice")
        alice.write("VERSION")
        lines = alice.take()
        self.assertEqual(self.commands(lines)[0], "351")
        self.assertEqual(parsed(lines[0]).params[2], "chatroom.irc")
        self.assertEqual(set(self.commands(lines)[1:]), {"005"})

    def test_info_ends_with_end_of_info(self):
        alice = self.welcomed("alice")
        alice.write("INFO")
        commands = self.commands(alice.take())
        self.assertEqual(commands[-1], "374")
        self.assertEqual(set(commands[:-1]), {"371"})

    def _lusers(self, client) -> dict[str, message.Message]:
        client.write("LUSERS")
        return {parsed(line).command: parsed(line) for line in client.take()}

    def test_lusers_counts_the_invisible_and_keeps_the_peak(self):
        alice, bob = self.welcomed("alice"), self.welcomed("bob")
        alice.write("MODE alice +i")
        alice.take()
        replies = self._lusers(bob)
        self.assertEqual(
            replies["251"].params[1], "There are 1 users and 1 invisible on 1 servers"
        )
        self.assertEqual(replies["265"].params[1:3], ["2", "2"])
        alice.disconnect()
        self.assertEqual(self._lusers(bob)["266"].params[1:3], ["1", "2"])

    def test_lusers_counts_unregistered_connections(self):
        alice = self.welcomed("alice")
        waiting = self.connect()
        self.assertEqual(self._lusers(alice)["253"].params[1], "1")
        waiting.disconnect()
        self.assertNotIn("253", self._lusers(alice))

    def test_lusers_forgets_who_left(self):
        alice, bob = self.welcomed("alice"), self.welcomed("bob")
        bob.write("MODE bob +i")
        bob.disconnect()
        self.assertEqual(
            self._lusers(alice)["251"].params[1],
            "There are 1 users and 0 invisible on 1 servers",
        )


class UserModeTests(IRCCase):
    def test_modes_are_set_shown_and_unset(self):
        alice = self.welcomed("alice")
        alice.write("MODE alice +iw")
        (line,) = alice.take()
        self.assertEqual(parsed(line).params, ["alice", "+iw"])
        alice.write("MODE alice")
        self.assertEqual(parsed(alice.take()[0]).params, ["alice", "+iw"])
        alice.write("MODE alice -i")
        self.assertEqual(parsed(alice.take()[0]).params, ["alice", "-i"])

    def test_a_mode_already_set_changes_nothing(self):
        alice = self.welcomed("alice")
        alice.write("MODE alice -w")
        self.assertEqual(alice.take(), [])

    def test_o_is_not_self_given_and_unknown_flags_are_refused(self):
        alice = self.welcomed("alice")
        alice.write("MODE alice +oz")
        self.assertEqual(self.commands(alice.take()), ["501"])
        alice.write("MODE alice")
        self.assertEqual(parsed(alice.take()[0]).params, ["alice", "+"])

    def test_anothers_modes_are_not_ours(self):
        alice, _ = self.welcomed("alice"), self.welcomed("bob")
        alice.write("MODE bob +i")
        self.assertEqual(self.commands(alice.take()), ["502"])


class OperatorTests(IRCCase):
    def setUp(self):
        super().setUp()
        self.world.user("opal", "opal-secret").disconnect()

    def oper(self, nick: str, *channels: str) -> MemoryClient:
        client = self.welcomed(nick, *channels)
        client.write("OPER opal opal-secret")
        lines = client.take()
        self.assertEqual(self.commands(lines), ["381", "MODE"])
        self.assertEqual(parsed(lines[1]).params, [nick, "+o"])
        return client

    def test_oper_with_an_operator_accounts_password(self):
        alice = self.oper("alice")
        alice.write("MODE alice")
        self.assertEqual(parsed(alice.take()[0]).params, ["alice", "+o"])

    def test_the_admin_is_an_operator(self):
        alice = self.welcomed("alice")
        alice.write(f"OPER admin {ADMIN_PASSWORD}")
        self.assertEqual(self.commands(alice.take()), ["381", "MODE"])

    def test_a_wrong_password_or_name_is_refused(self):
        alice = self.welcomed("alice")
        alice.write("OPER opal wrong")
        self.assertEqual(self.commands(alice.take()), ["464"])
        alice.write("OPER nobody wrong")
        self.assertEqual(self.commands(alice.take()), ["464"])
        alice.write("OPER opal")
        self.assertEqual(self.commands(alice.take()), ["461"])
        alice.write("MODE alice")
        self.assertEqual(parsed(alice.take()[0]).params, ["alice", "+"])

    def test_an_account_that_is_no_operators_gets_no_oper(self):
        self.world.user("dave", "dave-secret").disconnect()
        alice = self.welcomed("alice")
        alice.write("OPER dave dave-secret")
        self.assertEqual(self.commands(alice.take()), ["491"])

    def test_whois_shows_an_operator(self):
        self.oper("alice")
        bob = self.welcomed("bob")
        bob.write("WHOIS alice")
        self.assertIn("313", self.commands(bob.take()))
        bob.write("WHOIS bob")
        self.assertNotIn("313", self.commands(bob.take()))

    def test_who_marks_an_operator(self):
        self.oper("alice")
        bob = self.welcomed("bob")
        bob.write("WHO alice")
        (reply, _) = [parsed(line) for line in bob.take()]
        self.assertEqual(reply.params[6], "H*")

    def test_lusers_counts_operators_while_they_are_on(self):
        alice, bob = self.oper("alice"), self.welcomed("bob")
        bob.write("LUSERS")
        (op,) = self.only(bob.take(), "252")
        self.assertEqual(op.params[1], "1")
        alice.disconnect()
        bob.write("LUSERS")
        (op,) = self.only(bob.take(), "252")
        self.assertEqual(op.params[1], "0")

    def test_minus_o_gives_it_up(self):
        alice = self.oper("alice")
        alice.write("MODE alice -o")
        self.assertEqual(parsed(alice.take()[0]).params, ["alice", "-o"])
        alice.write("KILL alice :x")
        self.assertEqual(self.commands(alice.take()), ["481"])

    def test_kill_ends_the_target_with_a_quit_its_channels_see(self):
        alice = self.oper("alice", "#den")
        bob, carol = self.welcomed("bob", "#den"), self.welcomed("carol", "#den")
        alice.take()
        carol.take()
        alice.write("KILL bob :spamming")
        self.assertTrue(bob.closing)
        self.assertIn("Killed (alice (spamming))", bob.take()[-1])
        (quit,) = carol.take()
        self.assertEqual(parsed(quit).command, "QUIT")
        self.assertEqual(parsed(quit).params, ["Killed (alice (spamming))"])
        self.assertNotIn("bob", [a.name for a in self.world.chat.online.values()])

    def test_kill_ends_every_session_of_an_account(self):
        line = self.world.user("carol", "secret")
        alice = self.oper("alice")
        alice.write("KILL carol")
        self.assertTrue(line.closing)

    def test_kill_is_for_operators_and_online_nicks(self):
        alice, bob = self.welcomed("alice"), self.welcomed("bob")
        alice.write("KILL bob :x")
        self.assertEqual(self.commands(alice.take()), ["481"])
        self.assertFalse(bob.closing)
        root = self.oper("ops")
        root.write("KILL nobody :x")
        self.assertEqual(self.commands(root.take()), ["401"])

    def test_wallops_reach_users_with_w(self):
        alice = self.oper("alice")
        bob, carol = self.welcomed("bob"), self.welcomed("carol")
        carol.write("MODE carol +w")
        carol.take()
        alice.write("WALLOPS :hi everyone")
        (line,) = carol.take()
        self.assertEqual(parsed(line).command, "WALLOPS")
        self.assertEqual(parsed(line).source, "alice!alice@chatroom.irc")
        self.assertEqual(bob.take(), [])
        self.assertEqual(alice.take(), [])

    def test_wallops_are_for_operators(self):
        alice = self.welcomed("alice")
        alice.write("WALLOPS :hi")
        self.assertEqual(self.commands(alice.take()), ["481"])


class OperatorCheckTests(unittest.TestCase):
    """The admission gate's check of an operator account's password."""

    def setUp(self):
        self.world = ChatWorld()
        self.world.user("opal", "opal-secret").disconnect()
        self.world.user("dave", "dave-secret").disconnect()
        self.throttle = LoginThrottle(self.world.clock, free=1, base=1, cap=8)
        self.admission = Admission(self.world.chat, self.throttle, operators=["OPAL"])

    def check(self, name: str, password: str):
        return defer.ensureDeferred(
            self.admission.check_operator(name, password, "10.0.0.9")
        )

    def test_an_operator_account_and_the_admin_pass(self):
        self.assertEqual(fired(self.check("opal", "opal-secret")).name, "opal")
        self.assertEqual(fired(self.check("admin", ADMIN_PASSWORD)).name, "admin")

    def test_another_account_is_no_operator(self):
        self.assertRaises(PermissionDenied, fired, self.check("dave", "dave-secret"))

    def test_wrong_passwords_are_slowed_down_as_logins_are(self):
        self.assertRaises(AuthFailed, fired, self.check("opal", "wrong"))
        d = self.check("opal", "wrong")
        self.assertNoResult(d)
        self.world.clock.advance(1)
        self.assertRaises(AuthFailed, fired, d)


class OperatorOptionTests(unittest.TestCase):
    def test_irc_oper_names_accounts_and_refuses_a_bad_name(self):
        config = parse_options(self, "--irc-oper", "opal", "--irc-oper", "ops")
        self.assertEqual(config["irc-opers"], ["opal", "ops"])
        self.assertEqual(parse_options(self)["irc-opers"], [])
        self.assertRaises(usage.UsageError, parse_options, self, "--irc-oper", "a b")
