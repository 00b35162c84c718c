"""
Moderation as IRC shows it: MODE, TOPIC, KICK, INVITE, LIST, NAMES
prefixes and the numerics of a refused JOIN.
"""

from __future__ import annotations

from tests.test_irc import IRCTestCase, command_of, params


class ModerationTestCase(IRCTestCase):
    def setUp(self) -> None:
        super().setUp()
        # Rooms made at time 0 have no known creation time.
        self.world.clock.advance(1000)
        self.alice = self.welcomed("alice")
        self.alice.write("JOIN #den")
        self.bob = self.welcomed("bob")
        self.alice.take()

    def replies(self, client, line: str) -> list[tuple[str, list[str]]]:
        client.write(line)
        return [(command_of(one), params(one)) for one in client.take()]


class ModeTests(ModerationTestCase):
    def test_isupport_names_the_modes_and_prefixes(self):
        tokens = [
            token
            for line in self.register("carol").take()
            if command_of(line) == "005"
            for token in params(line)[1:-1]
        ]
        for token in ("CHANMODES=b,k,l,imnst", "PREFIX=(ov)@+", "MODES=6", "EXTBAN=,m"):
            self.assertIn(token, tokens)

    def test_query_shows_modes_and_creation_time(self):
        replies = self.replies(self.alice, "MODE #den")
        self.assertEqual(replies[0], ("324", ["alice", "#den", "+nt"]))
        self.assertEqual(replies[1], ("329", ["alice", "#den", "1000"]))

    def test_changes_are_told_to_the_room_in_one_mode_line(self):
        self.bob.write("JOIN #den")
        self.alice.take()
        self.bob.take()
        self.alice.write("MODE #den +ik-t beer")
        expected = ("MODE", ["#den", "+ik-t", "beer"])
        self.assertEqual(
            [(command_of(x), params(x)) for x in self.alice.take()], [expected]
        )
        self.assertEqual(
            [(command_of(x), params(x)) for x in self.bob.take()], [expected]
        )
        self.assertEqual(
            self.replies(self.alice, "MODE #den")[0][1][2:], ["+ink", "beer"]
        )

    def test_a_non_operator_is_refused_with_482(self):
        self.bob.write("JOIN #den")
        self.bob.take()
        self.assertEqual(self.replies(self.bob, "MODE #den +m")[0][0], "482")

    def test_refusals_name_the_mode_and_target(self):
        replies = self.replies(self.alice, "MODE #den +lo 0 nobody")
        self.assertEqual([command for command, _ in replies], ["696", "401"], replies)
        self.assertEqual(replies[0][1][:4], ["alice", "#den", "l", "0"])
        self.assertEqual(self.replies(self.alice, "MODE #den +o bob")[0][0], "441")
        self.assertEqual(self.replies(self.alice, "MODE #den +z")[0][0], "472")

    def test_a_ban_puts_out_the_members_it_names_but_the_banner(self):
        self.bob.write("JOIN #den")
        self.alice.take()
        self.bob.take()
        self.alice.write("MODE #den +b bo*!*@*")
        lines = self.bob.take()
        self.assertIn("KICK", [command_of(line) for line in lines], lines)
        den = self.world.chat.rooms.find("den")
        self.assertEqual(sorted(den.members.values()), ["alice"])
        # A mute is a ban that keeps its member in.
        self.alice.write("MODE #den -b bo*!*@*")
        self.bob.write("JOIN #den")
        self.alice.write("MODE #den +b m:bob!*@*")
        self.assertEqual(sorted(den.members.values()), ["alice", "bob"])

    def test_ban_list(self):
        self.alice.write("MODE #den +b bob")
        self.alice.take()
        replies = self.replies(self.alice, "MODE #den +b")
        self.assertEqual(replies[0][0], "367")
        self.assertEqual(replies[0][1][:4], ["alice", "#den", "bob!*@*", "alice"])
        self.assertEqual(replies[1][0], "368")

    def test_join_refusals_have_their_numerics(self):
        for mode, numeric in (("+l 1", "471"), ("+i", "473"), ("+k beer", "475")):
            self.alice.write(f"MODE #den {mode}")
            self.assertEqual(self.replies(self.bob, "JOIN #den")[0][0], numeric)
            self.alice.write(f"MODE #den -{mode[1]}")
        self.alice.write("MODE #den +b bob")
        self.assertEqual(self.replies(self.bob, "JOIN #den")[0][0], "474")

    def test_join_with_the_key(self):
        self.alice.write("MODE #den +k beer")
        self.assertEqual(self.replies(self.bob, "JOIN #den beer")[0][0], "JOIN")


class NamesTests(ModerationTestCase):
    def test_names_show_the_highest_prefix_or_all_with_multi_prefix(self):
        self.alice.write("MODE #den +v alice")
        self.alice.take()
        self.assertEqual(
            self.replies(self.alice, "NAMES #den")[0][1],
            ["alice", "=", "#den", "@alice"],
        )
        carol = self.welcomed("carol", "CAP REQ :multi-prefix", "CAP END")
        carol.write("JOIN #den")
        carol.take()
        self.assertEqual(self.replies(carol, "NAMES #den")[0][1][-1], "@+alice carol")
        who = self.replies(carol, "WHO #den")
        self.assertEqual(who[0][1][6], "H@+")

    def test_a_secret_room_is_marked_and_hidden(self):
        self.alice.write("MODE #den +s")
        self.alice.take()
        self.assertEqual(self.replies(self.alice, "NAMES #den")[0][1][1], "@")
        self.assertEqual(
            [command for command, _ in self.replies(self.bob, "NAMES #den")], ["366"]
        )
        self.assertEqual(
            [command for command, _ in self.replies(self.bob, "WHO #den")], ["315"]
        )
        listed = self.replies(self.bob, "LIST")
        self.assertEqual([command for command, _ in listed], ["321", "323"])

    def test_whois_names_a_secret_room_to_its_members_only(self):
        self.alice.write("MODE #den +s")
        self.alice.take()
        self.assertNotIn("319", [c for c, _ in self.replies(self.bob, "WHOIS alice")])
        whois = dict(self.replies(self.alice, "WHOIS alice"))
        # Alice made #den: its operator.
        self.assertEqual(whois["319"][-1], "@#den")

    def test_names_of_several_rooms_end_once(self):
        self.alice.write("JOIN #shed")
        self.alice.take()
        replies = self.replies(self.alice, "NAMES #den,#shed")
        self.assertEqual([c for c, _ in replies], ["353", "353", "366"])
        self.assertEqual(replies[-1][1][1], "#den,#shed")


class ListTests(ModerationTestCase):
    def test_list_shows_rooms_someone_is_in_with_their_topic(self):
        self.alice.write("TOPIC #den :welcome")
        replies = self.replies(self.bob, "LIST")
        self.assertEqual(
            replies,
            [
                ("321", ["bob", "Channel", "Users  Name"]),
                ("322", ["bob", "#den", "1", "welcome"]),
                ("323", ["bob", "End of /LIST"]),
            ],
        )

    def test_list_filters_by_mask_and_member_count(self):
        self.bob.write("JOIN #shed")
        self.alice.write("JOIN #shed")
        self.bob.take()

        def listed(line: str) -> list[str]:
            return [p[1] for c, p in self.replies(self.bob, line) if c == "322"]

        self.assertEqual(listed("LIST"), ["#den", "#shed"])
        self.assertEqual(listed("LIST *ed"), ["#shed"])
        self.assertEqual(listed("LIST !#d?n"), ["#shed"])
        self.assertEqual(listed("LIST >1"), ["#shed"])
        self.assertEqual(listed("LIST <2"), ["#den"])

    def test_list_of_a_room_that_does_not_exist_is_empty(self):
        replies = self.replies(self.bob, "LIST #nowhere")
        self.assertEqual([c for c, _ in replies], ["321", "323"])


class TopicTests(ModerationTestCase):
    def test_topic_is_told_to_the_room_and_shown_on_join(self):
        self.assertEqual(self.replies(self.alice, "TOPIC #den")[0][0], "331")
        self.assertEqual(
            self.replies(self.alice, "TOPIC #den :hello all"),
            [("TOPIC", ["#den", "hello all"])],
        )
        joined = self.replies(self.bob, "JOIN #den")
        self.assertEqual(joined[1], ("332", ["bob", "#den", "hello all"]))
        self.assertEqual(joined[2][1][:3], ["bob", "#den", "alice"])

    def test_a_locked_topic_is_refused_to_members_with_482(self):
        self.bob.write("JOIN #den")
        self.bob.take()
        self.assertEqual(self.replies(self.bob, "TOPIC #den :mine")[0][0], "482")
        self.assertEqual(self.replies(self.bob, "TOPIC #nowhere")[0][0], "403")


class KickTests(ModerationTestCase):
    def test_kick_is_told_to_everyone_with_the_reason(self):
        self.bob.write("JOIN #den")
        self.bob.take()
        self.alice.take()
        self.alice.write("KICK #den bob :behave")
        line = ("KICK", ["#den", "bob", "behave"])
        self.assertEqual([(command_of(x), params(x)) for x in self.bob.take()], [line])
        self.assertEqual(
            [(command_of(x), params(x)) for x in self.alice.take()], [line]
        )
        self.assertEqual(self.replies(self.bob, "PRIVMSG #den :hi")[0][0], "404")

    def test_kick_refusals(self):
        self.assertEqual(self.replies(self.bob, "KICK #den alice")[0][0], "442")
        self.assertEqual(self.replies(self.bob, "KICK #nowhere alice")[0][0], "403")
        self.assertEqual(self.replies(self.alice, "KICK #den bob")[0][0], "441")
        self.bob.write("JOIN #den")
        self.bob.take()
        self.assertEqual(self.replies(self.bob, "KICK #den alice")[0][0], "482")


class InviteTests(ModerationTestCase):
    def test_invite_reaches_the_invited_and_lets_them_in(self):
        self.alice.write("MODE #den +i")
        self.alice.take()
        self.assertEqual(
            self.replies(self.alice, "INVITE bob #den"),
            [("341", ["alice", "bob", "#den"])],
        )
        [invite] = self.bob.take()
        self.assertEqual(
            (command_of(invite), params(invite)), ("INVITE", ["bob", "#den"])
        )
        self.assertTrue(invite.startswith(":alice!"))
        self.assertEqual(
            self.replies(self.bob, "INVITE"),
            [("336", ["bob", "#den"]), ("337", ["bob", "End of /INVITE list"])],
        )
        self.assertEqual(self.replies(self.bob, "JOIN #den")[0][0], "JOIN")

    def test_invite_refusals(self):
        self.assertEqual(self.replies(self.alice, "INVITE nobody #den")[0][0], "401")
        self.assertEqual(self.replies(self.bob, "INVITE alice #den")[0][0], "442")
        self.bob.write("JOIN #den")
        self.bob.take()
        self.alice.take()
        self.assertEqual(self.replies(self.alice, "INVITE bob #den")[0][0], "443")
        self.alice.write("MODE #den +i")
        self.bob.take()
        carol = self.welcomed("carol")
        self.assertEqual(self.replies(self.bob, "INVITE carol #den")[0][0], "482")
        self.assertEqual(carol.take(), [])


class TagmsgModerationTests(ModerationTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.ann = self.welcomed("ann", "CAP REQ :message-tags", "CAP END")
        self.ann.write("JOIN #den")
        self.ann.take()
        self.alice.take()

    def test_a_muted_member_sends_no_tagmsg(self):
        self.alice.write("MODE #den +b m:ann!*@*")
        self.alice.take()
        self.ann.take()
        replies = self.replies(self.ann, "@+draft/react=x TAGMSG #den")
        self.assertEqual([command for command, _ in replies], ["404"])
        self.assertEqual(self.alice.take(), [])

    def test_a_moderated_room_takes_tagmsg_from_voiced_members_only(self):
        self.alice.write("MODE #den +m")
        self.alice.take()
        self.ann.take()
        replies = self.replies(self.ann, "@+typing=active TAGMSG #den")
        self.assertEqual([command for command, _ in replies], ["404"])
        self.alice.write("MODE #den +v ann")
        self.alice.take()
        self.ann.take()
        self.assertEqual(self.replies(self.ann, "@+typing=active TAGMSG #den"), [])
