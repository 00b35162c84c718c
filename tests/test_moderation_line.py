"""
Moderation over the line protocol: /kick, /ban, /unban, /mute, /unmute,
/op, /deop, /voice, /devoice, /invite and /room, their replies and error
codes; what IRC sees of them and they of IRC; what survives a restart.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from chatroom.protocol.irc.factory import IRCFactory
from chatroom.service.events import Membership, event_from_dict
from chatroom.storage.store import ModeWrite
from tests.clients import MemoryClient, data_lines
from tests.helpers import ADMIN_PASSWORD, RELAXED, ChatWorld, sqlite_file
from tests.test_irc import command_of, params
from tests.test_postgres import PostgresTestCase


class LineModerationTestCase(unittest.TestCase):
    location = ":memory:"

    def setUp(self) -> None:
        self.world = ChatWorld(location=self.location)
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.assertEqual(self.alice.command("/c den"), "+OK created #den")
        self.assertEqual(self.bob.command("/j den"), "+OK joined #den")
        self.alice.take()

    def assertFailed(self, reply: str, code: str) -> None:
        self.assertEqual(reply.split(" ")[:2], ["-ERR", code], reply)

    def irc(self, nick: str) -> MemoryClient:
        factory = IRCFactory(self.world.factory.admission, RELAXED, guests=True)
        client = MemoryClient(factory, "10.0.0.2")
        client.write(f"NICK {nick}")
        client.write(f"USER {nick} 0 * :{nick}")
        client.take()
        return client

    def said(self, client: MemoryClient, text: str) -> str:
        client.take()
        return client.command(text)


class KickTests(LineModerationTestCase):
    def test_kick_puts_the_member_out_with_the_reason(self):
        reply = self.alice.command("/kick den bob spamming the room")
        self.assertEqual(reply, "+OK kicked bob from #den")
        self.assertIn("* #den: alice kicked bob (spamming the room)", self.bob.take())
        self.assertFailed(self.bob.command("/public den hi"), "not-member")
        self.assertEqual(self.bob.command("/j den"), "+OK joined #den")

    def test_kick_by_a_member_who_is_no_operator_is_refused(self):
        self.assertFailed(self.bob.command("/kick den alice"), "not-operator")
        self.assertIn("alice", [n.split()[0] for n in data_lines(self._who())])

    def test_kick_of_someone_not_in_the_room(self):
        self.world.user("carol")
        self.assertFailed(self.alice.command("/kick den carol"), "user-not-in-room")
        self.assertFailed(self.alice.command("/kick den nobody"), "no-such-user")
        self.assertFailed(self.alice.command("/kick den"), "bad-arguments")

    def _who(self) -> list[str]:
        self.alice.write("/who den")
        return self.alice.take()


class BanTests(LineModerationTestCase):
    def test_ban_puts_the_member_out_and_keeps_them_out(self):
        self.assertEqual(
            self.alice.command("/ban den bob"), "+OK bob banned from #den, removed bob"
        )
        self.assertIn("* #den: alice kicked bob (banned by alice)", self.bob.take())
        self.assertFailed(self.bob.command("/j den"), "banned")
        self.assertEqual(
            self.alice.command("/ban den BOB"), "+OK bob already banned from #den"
        )
        self.assertEqual(
            self.alice.command("/unban den bob"), "+OK bob unbanned from #den"
        )
        self.assertEqual(self.bob.command("/j den"), "+OK joined #den")

    def test_a_mask_bans_every_name_it_matches_but_the_owner(self):
        self.alice.command("/op den bob")
        self.world.user("bert").command("/j den")
        reply = self.bob.command("/ban den *")
        self.assertEqual(reply, "+OK * banned from #den, removed bert")
        self.assertFailed(self.world.user("carol").command("/j den"), "banned")

    def test_unban_of_no_ban_is_refused(self):
        self.assertFailed(self.alice.command("/unban den carol"), "not-banned")
        self.assertFailed(self.bob.command("/ban den carol"), "not-operator")
        self.assertFailed(self.alice.command("/ban den c@rol!x@host"), "bad-mode-param")
        self.assertFailed(self.alice.command("/ban den a b"), "bad-arguments")
        self.assertFailed(self.alice.command("/ban den m:bob"), "bad-mode-param")
        self.alice.command("/mute den m:bob")
        self.alice.take()
        self.alice.write("/room show den")
        self.assertIn("= mute bob!*@*", self.alice.take())

    def test_a_line_ban_refuses_an_irc_join(self):
        self.alice.command("/ban den carol")
        carol = self.irc("carol")
        carol.write("JOIN #den")
        self.assertEqual([command_of(line) for line in carol.take()], ["474"])

    def test_an_irc_ban_refuses_a_line_join(self):
        dave = self.irc("dave")
        dave.write("JOIN #pit")
        dave.write("MODE #pit +b BOB!*@*")
        self.assertFailed(self.bob.command("/j pit"), "banned")
        self.assertFailed(self.bob.command("/j #PIT"), "banned")


class RenameTests(LineModerationTestCase):
    def test_a_banned_account_keeps_its_name(self):
        # A ban is by name: renamed, bob would walk back in.
        self.alice.command("/ban den bob")
        self.assertFailed(self.bob.command("/u bobby"), "banned")
        self.assertFailed(self.bob.command("/j den"), "banned")
        self.assertEqual(self.bob.command("/u Bob"), "+OK you are now Bob")

    def test_a_muted_account_keeps_its_name(self):
        self.alice.command("/mute den bob")
        self.assertFailed(self.bob.command("/u bobby"), "banned")
        self.alice.command("/unmute den bob")
        self.assertEqual(self.bob.command("/u bobby"), "+OK you are now bobby")

    def test_over_irc_the_nick_change_gets_437(self):
        carol = self.irc("carol")
        self.alice.command("/mute den carol")
        carol.write("NICK caro")
        self.assertEqual([command_of(line) for line in carol.take()], ["437"])


class MuteTests(LineModerationTestCase):
    def test_a_muted_member_stays_but_cannot_send(self):
        self.assertEqual(self.alice.command("/mute den bob"), "+OK bob muted in #den")
        self.assertIn("* #den: alice muted bob", self.bob.take())
        self.assertFailed(self.bob.command("/public den hi"), "cannot-speak")
        self.assertIn("bob", self.alice.command("/who den") + " ".join(self._members()))
        self.assertEqual(
            self.alice.command("/mute den bob"), "+OK bob already muted in #den"
        )
        self.assertEqual(
            self.alice.command("/unmute den bob"), "+OK bob unmuted in #den"
        )
        self.assertEqual(self.bob.command("/public den hi"), "+OK")

    def test_a_muted_name_may_still_join(self):
        self.alice.command("/mute den carol")
        carol = self.world.user("carol")
        self.assertEqual(carol.command("/j den"), "+OK joined #den")
        self.assertFailed(carol.command("/public den hi"), "cannot-speak")

    def test_voice_lifts_a_mute(self):
        self.alice.command("/mute den bob")
        self.assertEqual(
            self.alice.command("/voice den bob"), "+OK bob is now voiced in #den"
        )
        self.assertEqual(self.bob.command("/public den hi"), "+OK")

    def test_unmute_of_no_mute_and_mute_by_a_member_are_refused(self):
        self.assertFailed(self.alice.command("/unmute den bob"), "not-muted")
        self.assertFailed(self.bob.command("/mute den alice"), "not-operator")

    def test_a_line_mute_is_the_irc_mute_extban(self):
        carol = self.irc("carol")
        carol.write("JOIN #den")
        self.alice.command("/mute den carol")
        carol.take()
        carol.write("MODE #den +b")
        self.assertEqual(params(carol.take()[0])[2], "m:carol!*@*")
        carol.write("PRIVMSG #den :hello")
        self.assertEqual([command_of(line) for line in carol.take()], ["404"])

    def test_an_irc_mute_extban_mutes_a_line_member(self):
        self.alice.command("/op den bob")
        dave = self.irc("dave")
        dave.write("JOIN #den")
        self.bob.command("/op den dave")
        dave.take()
        dave.write("MODE #den +b m:alice!*@*")
        self.alice.command("/deop den alice")
        self.assertFailed(self.alice.command("/public den hi"), "cannot-speak")

    def _members(self) -> list[str]:
        self.alice.write("/who den")
        return data_lines(self.alice.take())


class RoleTests(LineModerationTestCase):
    def test_op_and_deop(self):
        self.assertEqual(
            self.alice.command("/op den bob"), "+OK bob is now an operator in #den"
        )
        self.assertIn("* #den: alice made bob an operator", self.bob.take())
        self.assertEqual(
            self.alice.command("/op den bob"), "+OK bob is already an operator in #den"
        )
        self.assertEqual(
            self.bob.command("/deop den alice"),
            "+OK alice is no longer an operator in #den",
        )
        # The owner, no longer an operator, may only make itself one again.
        self.assertFailed(self.alice.command("/deop den bob"), "not-operator")

    def test_the_owner_may_always_op_itself_again(self):
        self.alice.command("/deop den alice")
        self.assertEqual(
            self.alice.command("/op den alice"), "+OK alice is now an operator in #den"
        )

    def test_roles_name_members(self):
        self.assertFailed(self.alice.command("/voice den carol"), "no-such-user")
        self.world.user("carol")
        self.assertFailed(self.alice.command("/voice den carol"), "user-not-in-room")
        self.assertEqual(
            self.alice.command("/devoice den bob"), "+OK bob is not voiced in #den"
        )

    def test_a_kick_over_irc_shows_on_the_line(self):
        dave = self.irc("dave")
        dave.write("JOIN #pit")
        self.bob.command("/j pit")
        dave.write("KICK #pit bob :out")
        self.assertIn("* #pit: dave kicked bob (out)", self.bob.take())


class InviteTests(LineModerationTestCase):
    def test_an_invitation_lets_one_into_an_invite_only_room(self):
        carol = self.world.user("carol")
        self.assertEqual(
            self.alice.command("/room set den invite-only"),
            "+OK invite-only of #den is now on",
        )
        self.assertFailed(carol.command("/j den"), "invite-only")
        self.assertFailed(self.bob.command("/invite den carol"), "not-operator")
        self.assertEqual(
            self.alice.command("/invite den carol"), "+OK invited carol to #den"
        )
        self.assertIn("* alice invites you to #den", carol.take())
        self.assertEqual(carol.command("/j den"), "+OK joined #den")

    def test_only_an_operators_invitation_lets_one_past_a_ban(self):
        carol = self.world.user("carol")
        carol.command("/j den")
        self.alice.command("/ban den bob")
        # Carol may invite (no invite-only), but that lifts no ban.
        self.assertEqual(carol.command("/invite den bob"), "+OK invited bob to #den")
        self.assertFailed(self.bob.command("/j den"), "banned")
        self.alice.command("/invite den bob")
        self.assertEqual(self.bob.command("/j den"), "+OK joined #den")

    def test_invite_refusals(self):
        self.assertFailed(self.alice.command("/invite den nobody"), "no-such-user")
        self.assertFailed(self.alice.command("/invite den bob"), "already-member")
        carol = self.world.user("carol")
        self.assertFailed(carol.command("/invite den bob"), "not-member")


class RoomSetTests(LineModerationTestCase):
    def test_flags_on_and_off(self):
        self.assertEqual(
            self.alice.command("/room set den moderated on"),
            "+OK moderated of #den is now on",
        )
        self.assertFailed(self.bob.command("/public den hi"), "cannot-speak")
        self.assertEqual(
            self.alice.command("/room set den moderated on"),
            "+OK moderated of #den was already on",
        )
        self.assertEqual(
            self.alice.command("/room set #den MODERATED off"),
            "+OK moderated of #den is now off",
        )
        self.assertEqual(self.bob.command("/public den hi"), "+OK")
        self.alice.take()
        self.alice.write("/room set den no-external off")
        self.assertIn("* #den: alice set no-external off", self.alice.take())

    def test_topic_lock_off_lets_members_set_the_topic(self):
        self.assertFailed(self.bob.command("/topic den bob's den"), "not-operator")
        self.alice.command("/room set den topic-lock off")
        self.assertEqual(
            self.bob.command("/topic den bob's den"), "+OK topic of #den set"
        )

    def test_a_key_is_needed_to_join(self):
        self.bob.command("/l den")
        self.assertEqual(
            self.alice.command("/room set den key beer"), "+OK key of #den is now set"
        )
        self.assertFailed(self.bob.command("/j den"), "bad-room-key")
        self.assertFailed(self.bob.command("/j den wine"), "bad-room-key")
        self.assertEqual(self.bob.command("/j den beer"), "+OK joined #den")
        self.assertEqual(
            self.alice.command("/room set den key off"), "+OK key of #den is now off"
        )

    def test_a_limit(self):
        self.assertEqual(
            self.alice.command("/room set den limit 2"), "+OK limit of #den is now 2"
        )
        self.assertFailed(self.world.user("carol").command("/j den"), "room-full")
        self.assertEqual(
            self.alice.command("/room set den limit off"),
            "+OK limit of #den is now off",
        )

    def test_bad_settings_are_refused_and_change_nothing(self):
        for line, code in (
            ("/room set den limit 0", "bad-mode-param"),
            ("/room set den key a,b", "bad-mode-param"),
            ("/room set den key", "bad-arguments"),
            ("/room set den loud on", "bad-arguments"),
            ("/room set den secret maybe", "bad-arguments"),
            ("/room frobnicate den", "bad-arguments"),
            ("/room set nowhere secret", "no-such-room"),
        ):
            self.assertFailed(self.alice.command(line), code)
        self.assertFailed(self.bob.command("/room set den secret"), "not-operator")
        self.assertIn("limit off", self._show(self.alice))

    def test_show_lists_the_settings(self):
        self.alice.command("/room set den key beer")
        self.alice.command("/mute den carol")
        self.alice.command("/ban den eve")
        shown = self._show(self.alice)
        for line in (
            "owner alice",
            "topic-lock on",
            "invite-only off",
            "key beer",
            "operator alice",
            "ban eve!*@*",
            "mute carol!*@*",
        ):
            self.assertIn(line, shown)
        self.assertIn("key set", self._show(self.bob))

    def test_settings_show_on_irc(self):
        self.alice.command("/room set den moderated")
        self.alice.command("/room set den limit 9")
        dave = self.irc("dave")
        dave.write("MODE #den")
        self.assertEqual(params(dave.take()[0])[2:], ["+mntl", "9"])
        # A secret room is no channel at all to those not in it.
        self.alice.command("/room set den secret")
        dave.write("MODE #den")
        self.assertEqual(command_of(dave.take()[0]), "403")

    def test_help_lists_the_commands_and_the_room_syntax(self):
        self.alice.write("/help")
        help_lines = " ".join(self.alice.take())
        for word in (
            "/kick",
            "/ban",
            "/unban",
            "/mute",
            "/unmute",
            "/op",
            "/deop",
            "/voice",
            "/devoice",
            "/invite",
            "/room",
        ):
            self.assertIn(f"= {word} ", help_lines)
        self.alice.write("/room help")
        self.assertIn("key KEY|off", " ".join(self.alice.take()))

    def test_who_holds_a_role_is_shown_to_members_only(self):
        self.alice.command("/op den bob")
        carol = self.world.user("carol")
        shown = " ".join(self._show(carol))
        self.assertNotIn("alice", shown)
        self.assertNotIn("bob", shown)
        self.assertIn("alice", " ".join(self._show(self.bob)))

    def _show(self, client) -> list[str]:
        client.take()
        client.write("/room show den")
        return data_lines(client.take())


class DeleteTests(LineModerationTestCase):
    def test_the_owner_deletes_the_room_and_its_history(self):
        self.bob.command("/public den hello")
        self.bob.command("/cd den")
        self.bob.take()
        reply = self.alice.command("/room delete den")
        self.assertEqual(
            reply, "+OK deleted #den and its history (1 message, 2 members removed)"
        )
        self.assertIn("* #den was deleted by alice, with its history", self.bob.take())
        self.assertFailed(self.bob.command("/public den hi"), "no-such-room")
        self.assertFailed(self.bob.command("hi"), "not-member")
        self.alice.take()
        self.alice.write("/log")
        self.assertIn("delete alice #den", " ".join(self.alice.take()))
        self.assertEqual(self.bob.command("/c den"), "+OK created #den")
        self.bob.write("/history den")
        self.assertEqual(self.bob.take(), ["+OK 0 messages"])

    def test_only_the_owner_or_the_admin_deletes(self):
        self.alice.command("/op den bob")
        self.assertFailed(self.bob.command("/room delete den"), "not-owner")
        admin = self.world.connect()
        admin.command(f"/login admin {ADMIN_PASSWORD}")
        self.assertEqual(
            admin.command("/room delete den"),
            "+OK deleted #den and its history (0 messages, 2 members removed)",
        )

    def test_the_lobby_cannot_be_deleted(self):
        admin = self.world.connect()
        admin.command(f"/login admin {ADMIN_PASSWORD}")
        self.assertFailed(admin.command("/room delete lobby"), "permission-denied")
        self.assertFailed(admin.command("/room delete nowhere"), "no-such-room")

    def test_irc_members_see_a_kick_with_the_reason(self):
        dave = self.irc("dave")
        dave.write("JOIN #den")
        dave.take()
        self.alice.command("/room delete den")
        (line,) = dave.take()
        self.assertEqual(command_of(line), "KICK")
        self.assertEqual(params(line), ["#den", "dave", "#den was deleted by alice"])

    def test_the_deletion_crosses_nodes_as_data(self):
        event = Membership(Membership.DELETE, "den", "alice", "gone", detail="why")
        copy = event_from_dict(event.to_dict())
        self.assertEqual((copy.kind, copy.room, copy.detail), ("delete", "den", "why"))


class RestartTests(LineModerationTestCase):
    def setUp(self) -> None:
        self.location = sqlite_file(self)
        super().setUp()

    def restart(self) -> None:
        self.world = ChatWorld(location=self.location)

    def test_a_mute_survives_a_restart(self):
        self.alice.command("/mute den bob")
        self.restart()
        bob = self.world.user("bob")
        self.assertFailed(bob.command("/public den hi"), "cannot-speak")

    def test_a_deleted_room_stays_deleted(self):
        self.bob.command("/public den hello")
        self.alice.command("/room delete den")
        self.restart()
        bob = self.world.user("bob")
        self.assertFailed(bob.command("/j den"), "no-such-room")
        self.assertEqual(bob.command("/c den"), "+OK created #den")
        bob.take()
        bob.write("/history den")
        self.assertEqual(bob.take(), ["+OK 0 messages"])


class DeleteStorage:
    """A room's deletion in storage: everything of it goes in one write."""

    @defer.inlineCallbacks
    def test_a_deleted_room_leaves_nothing_behind(self):
        store = self.store
        user = yield store.create_user("Ann", "ann", "hash", 1)
        room_id = yield store.create_room("den", "den", user.id, 5, creator_role=2)
        yield store.store_room_message(room_id, 1, user.id, "Ann", "hello", 6)
        yield store.store_modes(
            ModeWrite(room_id, "nt", None, 0, bans_added=(("b*!*@*", "Ann", 8),))
        )
        yield store.set_default_room(user.id, room_id)
        yield store.advance_read_marker(user.id, "#den", 6)
        self.assertEqual((yield store.delete_room(room_id, "#den")), 1)
        self.assertNotIn(room_id, [r.id for r in (yield store.load_rooms())])
        self.assertEqual((yield store.load_moderation()).bans, [])
        self.assertIsNone((yield store.get_user(user.id)).default_room_id)
        self.assertIsNone((yield store.read_marker(user.id, "#den")))
        self.assertEqual((yield store.room_history(room_id, 10)), [])


class SQLiteDeleteTests(DeleteStorage, unittest.TestCase):
    def setUp(self) -> None:
        self.store = ChatWorld().chat.store


class PostgresDeleteTests(DeleteStorage, PostgresTestCase):
    pass
