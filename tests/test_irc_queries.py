"""
The IRC front end's user queries and away state: AWAY and away-notify, WHO
(masks, flags, WHOX), WHOIS, WHOWAS, ISON, USERHOST, user mode +i.
"""

from __future__ import annotations

from chatroom.protocol.irc.commands.who import mask_matcher, parse_whox
from chatroom.service.events import AwayChanged, event_from_dict
from chatroom.service.whowas import WhowasHistory
from tests.test_irc import IRCTestCase, command_of, params


def replies(lines: list[str], code: str) -> list[list[str]]:
    return [params(line) for line in lines if command_of(line) == code]


class AwayTests(IRCTestCase):
    def test_away_sets_and_clears_with_305_306(self):
        bob = self.welcomed("bob")
        bob.write("AWAY :gone fishing")
        self.assertEqual(self.commands(bob.take()), ["306"])
        account = self.world.chat.online_by_key["bob"]
        self.assertEqual(account.away, "gone fishing")
        bob.write("AWAY :")
        self.assertEqual(self.commands(bob.take()), ["305"])
        self.assertIsNone(account.away)
        bob.write("AWAY x")
        bob.write("AWAY")
        self.assertEqual(self.commands(bob.take()), ["306", "305"])
        self.assertIsNone(account.away)

    def test_privmsg_to_someone_away_answers_301_and_notice_does_not(self):
        bob = self.welcomed("bob")
        amy = self.welcomed("amy")
        amy.write("PRIVMSG bob :hi")
        self.assertEqual(amy.take(), [])
        bob.write("AWAY :lunch")
        bob.take()
        amy.write("PRIVMSG bob :hi")
        amy.write("NOTICE bob :hi")
        self.assertEqual(replies(amy.take(), "301"), [["amy", "bob", "lunch"]])
        self.assertEqual(len(bob.take()), 2)

    def test_an_away_message_with_control_characters_is_refused(self):
        bob = self.welcomed("bob")
        bob.write("AWAY :\x1b[2Jx")
        self.assertEqual(self.commands(bob.take()), ["FAIL"])
        self.assertIsNone(self.world.chat.online_by_key["bob"].away)

    def test_a_long_away_message_is_cut_to_awaylen(self):
        bob = self.welcomed("bob")
        bob.write("AWAY :" + "é" * 150)
        bob.take()
        away = self.world.chat.online_by_key["bob"].away
        self.assertEqual(away, "é" * 100)

    def test_away_is_the_accounts_on_every_session(self):
        self.world.user("dora", "pw").close()
        first = self.welcomed("dora", "PASS pw")
        second = self.welcomed("dora", "PASS pw")
        first.write("AWAY :out")
        first.take()
        amy = self.welcomed("amy")
        amy.write("WHOIS dora")
        self.assertEqual(replies(amy.take(), "301"), [["amy", "dora", "out"]])
        second.write("AWAY")
        second.take()
        amy.write("WHOIS dora")
        self.assertEqual(replies(amy.take(), "301"), [])

    def test_away_ends_with_the_accounts_last_session(self):
        self.world.user("dora", "pw").close()
        dora = self.welcomed("dora", "PASS pw")
        dora.write("AWAY :out")
        dora.close()
        dora = self.welcomed("dora", "PASS pw")
        self.assertIsNone(self.world.chat.online_by_key["dora"].away)

    def test_away_notify_is_offered_and_tells_channel_members_once(self):
        amy = self.welcomed("amy", "CAP LS 302", "CAP REQ :away-notify", "CAP END")
        bob = self.welcomed("bob")
        plain = self.welcomed("pat")
        for client in (amy, bob, plain):
            client.write("JOIN #den")
            client.write("JOIN #den2" if client is not plain else "PING x")
        for client in (amy, bob, plain):
            client.take()
        bob.write("AWAY :brb")
        self.assertEqual(self.commands(bob.take()), ["306"])
        self.assertEqual(amy.take(), [":bob!bob@chatroom.irc AWAY brb"])
        self.assertEqual(plain.take(), [])
        bob.write("AWAY")
        bob.take()
        self.assertEqual(amy.take(), [":bob!bob@chatroom.irc AWAY"])

    def test_someone_away_who_joins_is_shown_away(self):
        amy = self.welcomed("amy", "CAP LS 302", "CAP REQ :away-notify", "CAP END")
        amy.write("JOIN #den")
        amy.take()
        bob = self.welcomed("bob")
        bob.write("AWAY :brb")
        bob.write("JOIN #den")
        self.assertNotIn("AWAY", self.commands(bob.take()))
        self.assertEqual(
            amy.take(),
            [
                ":bob!bob@chatroom.irc JOIN #den",
                ":bob!bob@chatroom.irc AWAY brb",
            ],
        )

    def test_away_changed_crosses_nodes_as_data(self):
        event = event_from_dict(AwayChanged("bob", "brb").to_dict())
        self.assertEqual((event.name, event.text), ("bob", "brb"))

    def test_a_line_client_in_the_room_is_not_disturbed(self):
        line = self.world.user("lena")
        bob = self.welcomed("bob")
        bob.write("JOIN #lobby")
        bob.take()
        line.take()
        bob.write("AWAY :brb")
        self.assertEqual(line.take(), [])


class WhoTests(IRCTestCase):
    def setUp(self):
        super().setUp()
        self.bob = self.welcomed("bob")
        self.amy = self.welcomed("amy")
        self.bob.write("JOIN #den")
        self.amy.write("JOIN #den")
        self.bob.take()
        self.amy.take()

    def test_who_nick_is_one_reply_with_here_or_gone(self):
        self.amy.write("WHO BOB")
        self.assertEqual(
            replies(self.amy.take(), "352"),
            [
                [
                    "amy",
                    "*",
                    "bob",
                    "chatroom.irc",
                    "chatroom.irc",
                    "bob",
                    "H",
                    "0 bob real",
                ]
            ],
        )
        self.bob.write("AWAY :x")
        self.amy.write("WHO bob")
        self.assertEqual(replies(self.amy.take(), "352")[0][6], "G")

    def test_who_mask_matches_nicks_and_end_keeps_the_mask(self):
        self.amy.write("WHO B*")
        lines = self.amy.take()
        self.assertEqual([r[5] for r in replies(lines, "352")], ["bob"])
        self.assertEqual(replies(lines, "315"), [["amy", "B*", "End of WHO list"]])
        self.amy.write("WHO *")
        self.assertEqual(
            [r[5] for r in replies(self.amy.take(), "352")], ["amy", "bob"]
        )
        self.amy.write("WHO nobody")
        self.assertEqual(self.commands(self.amy.take()), ["315"])

    def test_who_channel_lists_members_in_it(self):
        self.amy.write("WHO #DEN")
        rows = replies(self.amy.take(), "352")
        self.assertEqual(
            [(r[1], r[5]) for r in rows], [("#den", "amy"), ("#den", "bob")]
        )

    def test_who_channel_shows_a_member_offline_as_gone(self):
        self.world.user("dora", "pw").close()
        dora = self.welcomed("dora", "PASS pw")
        dora.write("JOIN #den")
        dora.close()
        self.amy.write("WHO #den")
        rows = replies(self.amy.take(), "352")
        # Bob made #den: its operator.
        self.assertEqual(
            {r[5]: r[6] for r in rows}, {"amy": "H", "bob": "H@", "dora": "G"}
        )

    def test_whox_gives_the_fields_asked_in_fixed_order(self):
        self.world.clock.advance(7)
        self.amy.write("WHO bob %tcuihsnfdlaor,42")
        self.assertEqual(
            replies(self.amy.take(), "354"),
            [
                [
                    "amy",
                    "42",
                    "*",
                    "bob",
                    "255.255.255.255",
                    "chatroom.irc",
                    "chatroom.irc",
                    "bob",
                    "H",
                    "0",
                    "7",
                    "0",
                    "n/a",
                    "bob real",
                ]
            ],
        )
        self.amy.write("WHO bob %nt,321")
        self.assertEqual(replies(self.amy.take(), "354"), [["amy", "321", "bob"]])

    def test_whox_parsing(self):
        self.assertEqual(parse_whox("%rn,1234"), ("nr", "0"))
        self.assertEqual(parse_whox("%xyz"), ("", "0"))
        self.assertTrue(mask_matcher("a?c*")("ABCdef"))
        self.assertFalse(mask_matcher("a.c")("abc"))

    def test_invisible_users_are_hidden_from_masks_to_strangers_only(self):
        eve = self.welcomed("eve")
        eve.write("MODE eve +i")
        self.assertEqual(eve.take(), [":eve!eve@chatroom.irc MODE eve +i"])
        self.amy.write("WHO e*")
        self.assertEqual(self.commands(self.amy.take()), ["315"])
        self.amy.write("WHO eve")
        self.assertEqual(self.commands(self.amy.take()), ["352", "315"])
        eve.write("JOIN #den")
        eve.take()
        self.amy.take()
        self.amy.write("WHO e*")
        self.assertEqual(self.commands(self.amy.take()), ["352", "315"])
        eve.write("MODE eve")
        self.assertEqual(self.commands(eve.take()), ["221"])
        eve.write("MODE eve -i+x")
        # -i is applied, x is unknown: the order of the two replies is free.
        self.assertCountEqual(self.commands(eve.take()), ["MODE", "501"])


class WhoisTests(IRCTestCase):
    def test_whois_shows_away_idle_and_signon(self):
        self.world.clock.advance(100)
        bob = self.welcomed("bob")
        bob.write("JOIN #den")
        self.world.clock.advance(5)
        bob.write("PRIVMSG #den :hi")
        bob.write("AWAY :afk")
        bob.take()
        self.world.clock.advance(30)
        amy = self.welcomed("amy")
        amy.write("WHOIS bob")
        lines = amy.take()
        self.assertEqual(
            self.commands(lines), ["311", "319", "312", "301", "317", "318"]
        )
        self.assertEqual(replies(lines, "301"), [["amy", "bob", "afk"]])
        self.assertEqual(replies(lines, "317")[0][2:4], ["30", "100"])

    def test_whois_hides_an_invisible_users_other_channels(self):
        bob = self.welcomed("bob")
        bob.write("JOIN #den")
        bob.write("JOIN #attic")
        bob.write("MODE bob +i")
        amy = self.welcomed("amy")
        amy.write("JOIN #den")
        amy.take()
        amy.write("WHOIS bob")
        # Bob made #den, so is its operator; #attic is hidden.
        self.assertEqual(replies(amy.take(), "319")[0][2], "@#den")


class WhowasTests(IRCTestCase):
    def test_whowas_lists_who_left_newest_first(self):
        amy = self.welcomed("amy")
        for username in ("one", "two"):
            bob = self.connect()
            bob.write("NICK bob")
            bob.write(f"USER {username} 0 * :Bob B")
            bob.write("QUIT")
        amy.write("WHOWAS bob")
        lines = amy.take()
        self.assertEqual([r[2] for r in replies(lines, "314")], ["two", "one"])
        self.assertEqual(
            replies(lines, "314")[0],
            ["amy", "bob", "two", "chatroom.irc", "*", "Bob B"],
        )
        self.assertEqual(self.commands(lines)[-1], "369")
        amy.write("WHOWAS bob 1")
        self.assertEqual(len(replies(amy.take(), "314")), 1)
        amy.write("WHOWAS bob -1")
        self.assertEqual(len(replies(amy.take(), "314")), 2)

    def test_whowas_keeps_a_renamed_name(self):
        amy = self.welcomed("amy")
        bob = self.welcomed("bob")
        bob.write("NICK rob")
        amy.write("WHOWAS bob")
        self.assertEqual(self.commands(amy.take()), ["314", "312", "369"])

    def test_whowas_shows_a_line_user_by_its_name(self):
        self.world.user("lena").close()
        amy = self.welcomed("amy")
        amy.write("WHOWAS lena")
        self.assertEqual(
            replies(amy.take(), "314"),
            [["amy", "lena", "lena", "chatroom.irc", "*", "lena"]],
        )

    def test_whowas_keeps_nobody_still_online(self):
        amy = self.welcomed("amy")
        self.welcomed("bob")
        amy.write("WHOWAS bob")
        self.assertEqual(self.commands(amy.take()), ["406", "369"])

    def test_whowas_unknown_and_missing_nick(self):
        amy = self.welcomed("amy")
        amy.write("WHOWAS ghost")
        amy.write("WHOWAS")
        self.assertEqual(self.commands(amy.take()), ["406", "369", "431"])

    def test_the_history_is_bounded(self):
        history = WhowasHistory(size=2)
        for n in range(3):
            history.add("bob", f"u{n}", "r", float(n))
        self.assertEqual([e.username for e in history.find("BOB")], ["u2", "u1"])


class IsonUserhostTests(IRCTestCase):
    def test_ison_names_those_online_as_they_spell_it(self):
        amy = self.welcomed("amy")
        self.welcomed("Bob")
        amy.write("ISON bob ghost")
        amy.write("ISON :amy BOB")
        self.assertEqual(
            replies(amy.take(), "303"), [["amy", "Bob"], ["amy", "amy Bob"]]
        )

    def test_userhost_shows_here_or_away(self):
        amy = self.welcomed("amy")
        bob = self.welcomed("bob")
        amy.write("USERHOST bob ghost")
        bob.write("AWAY :x")
        amy.write("USERHOST bob")
        amy.write("USERHOST")
        self.assertEqual(
            [line for line in amy.take()],
            [
                ":chatroom.irc 302 amy bob=+bob@chatroom.irc",
                ":chatroom.irc 302 amy bob=-bob@chatroom.irc",
                ":chatroom.irc 461 amy USERHOST :Not enough parameters",
            ],
        )
