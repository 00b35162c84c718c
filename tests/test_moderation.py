"""
Room moderation in the service (chatroom.service.moderation): who may do
what, what each mode refuses, and what survives a restart.
"""

from __future__ import annotations

from types import SimpleNamespace

from twisted.internet import defer
from twisted.trial import unittest

from chatroom.errors import (
    AlreadyMember,
    BadModeParam,
    BadRoomKey,
    Banned,
    CannotSpeak,
    InviteOnly,
    NoSuchRoom,
    NoSuchUser,
    NotMember,
    NotOperator,
    RoomFull,
    UserNotInRoom,
)
from chatroom.service import moderation
from chatroom.service.events import Membership, ModeChange, event_from_dict
from chatroom.service.rooms import Room
from chatroom.storage.store import ModeWrite
from tests.helpers import ADMIN_PASSWORD, ChatWorld, fired, sqlite_file
from tests.test_postgres import PostgresTestCase


class Mind:
    """A mind that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list = []

    def room_message(self, message, echo=False) -> None:
        self.events.append(message)

    def private_message(self, message) -> None:
        self.events.append(message)

    def membership(self, event) -> None:
        self.events.append(event)

    def notice(self, text) -> None:
        self.events.append(text)

    def disconnect(self, reason) -> None:
        pass

    def drained(self):
        return defer.succeed(True)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events if isinstance(e, Membership)]


def run(coroutine):
    """A coroutine of a ChatWorld, which finishes inside the call."""
    return fired(defer.ensureDeferred(coroutine))


def on(mode: str, param: str | None = None) -> ModeChange:
    return ModeChange(True, mode, param)


def off(mode: str, param: str | None = None) -> ModeChange:
    return ModeChange(False, mode, param)


class ModerationTestCase(unittest.TestCase):
    location = ":memory:"

    def setUp(self) -> None:
        self.world = ChatWorld(location=self.location)
        self.minds: dict[str, Mind] = {}

    def user(self, name: str, guest: bool = False):
        mind = self.minds[name] = Mind()
        admission = self.world.factory.admission
        if guest:
            admitted = run(admission.guest(name, mind, "10.0.0.1"))
        else:
            admitted = run(admission.register(name, f"pw-{name}", mind, "10.0.0.1"))
        self.addCleanup(admitted.logout)
        return admitted.avatar

    def admin(self):
        mind = self.minds["admin"] = Mind()
        admitted = run(
            self.world.factory.admission.login("admin", ADMIN_PASSWORD, mind, "x")
        )
        self.addCleanup(admitted.logout)
        return admitted.avatar

    def room(self, name: str = "den"):
        return self.world.chat.rooms.find(name)


class RoleTests(ModerationTestCase):
    def test_the_creator_owns_the_room_and_is_its_operator(self):
        alice = self.user("alice")
        run(alice.create_room("den"))
        room = self.room()
        self.assertEqual(room.mod.owner_id, alice.account.id)
        self.assertTrue(moderation.is_operator(room, alice.account.id))

    def test_a_room_that_never_changed_has_no_state(self):
        room = self.world.chat.rooms.lobby
        self.assertIsNone(room.mod)
        self.assertEqual(moderation.modes_of(room).flags, "nt")

    def test_operator_grants_and_takes_operator_and_voice(self):
        alice, bob = self.user("alice"), self.user("bob")
        run(alice.create_room("den"))
        run(bob.join("den"))
        result = run(alice.change_modes("den", [on("o", "bob"), on("v", "BOB")]))
        self.assertEqual(result.applied, [on("o", "bob"), on("v", "bob")])
        self.assertEqual(moderation.prefix(self.room(), bob.account.id, True), "@+")
        run(alice.change_modes("den", [off("o", "bob")]))
        self.assertEqual(moderation.prefix(self.room(), bob.account.id), "+")
        modes = [e for e in self.minds["bob"].events if e.kind == Membership.MODE]
        self.assertEqual(
            [m.detail for m in modes],
            [(on("o", "bob"), on("v", "bob")), (off("o", "bob"),)],
        )

    def test_a_member_who_is_no_operator_changes_nothing(self):
        alice, bob = self.user("alice"), self.user("bob")
        run(alice.create_room("den"))
        run(bob.join("den"))
        with self.assertRaises(NotOperator):
            run(bob.change_modes("den", [on("o", "bob"), on("m")]))
        self.assertEqual(moderation.role_of(self.room(), bob.account.id), 0)
        self.assertNotIn("m", moderation.modes_of(self.room()).flags)

    def test_the_owner_and_the_admin_may_make_themselves_operator_again(self):
        alice, admin = self.user("alice"), self.admin()
        run(alice.create_room("den"))
        run(admin.join("den"))
        run(alice.change_modes("den", [off("o", "alice")]))
        run(alice.change_modes("den", [on("o", "alice")]))
        run(admin.change_modes("den", [on("o", "admin")]))
        room = self.room()
        self.assertTrue(moderation.is_operator(room, alice.account.id))
        self.assertTrue(moderation.is_operator(room, admin.account.id))

    def test_roles_name_members_only(self):
        self.user("bob")
        alice = self.user("alice")
        run(alice.create_room("den"))
        result = run(alice.change_modes("den", [on("o", "bob"), on("o", "nobody")]))
        self.assertEqual(
            [type(error) for _, error in result.refused], [UserNotInRoom, NoSuchUser]
        )
        self.assertEqual(result.applied, [])

    def test_leaving_drops_the_role(self):
        alice, bob = self.user("alice"), self.user("bob")
        run(alice.create_room("den"))
        run(bob.join("den"))
        run(alice.change_modes("den", [on("v", "bob")]))
        run(bob.leave("den"))
        run(bob.join("den"))
        self.assertEqual(moderation.role_of(self.room(), bob.account.id), 0)


class ModeTests(ModerationTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice, self.bob = self.user("alice"), self.user("bob")
        run(self.alice.create_room("den"))

    def test_a_key_keeps_out_who_does_not_give_it(self):
        run(self.alice.change_modes("den", [on("k", "beer")]))
        self.assertRaises(BadRoomKey, run, self.bob.join("den"))
        self.assertRaises(BadRoomKey, run, self.bob.join("den", "wine"))
        self.assertEqual(run(self.bob.join("den", "beer")), "den")

    def test_a_bad_key_or_limit_is_refused_and_changes_nothing(self):
        changes = [on("k", "two words"), on("k", "x" * 24), on("l", "0"), on("l", "")]
        result = run(self.alice.change_modes("den", changes))
        self.assertEqual(result.applied, [])
        self.assertEqual(
            [(e.mode, type(e)) for _, e in result.refused],
            [("k", BadModeParam)] * 2 + [("l", BadModeParam)] * 2,
        )
        self.assertIsNone(moderation.modes_of(self.room()).key)

    def test_a_limit_counts_members(self):
        run(self.alice.change_modes("den", [on("l", "1")]))
        self.assertRaises(RoomFull, run, self.bob.join("den"))
        run(self.alice.change_modes("den", [off("l")]))
        run(self.bob.join("den"))

    def test_invite_only_lets_in_the_invited_once(self):
        run(self.alice.change_modes("den", [on("i")]))
        self.assertRaises(InviteOnly, run, self.bob.join("den"))
        self.assertEqual(run(self.alice.invite("bob", "den")), "bob")
        self.assertEqual(self.bob.invitations(), ["den"])
        [invite] = [e for e in self.minds["bob"].events if e.kind == "invite"]
        self.assertEqual((invite.room, invite.name), ("den", "alice"))
        run(self.bob.join("den"))
        run(self.bob.leave("den"))
        self.assertRaises(InviteOnly, run, self.bob.join("den"))

    def test_only_operators_invite_into_an_invite_only_room(self):
        carol = self.user("carol")
        run(self.bob.join("den"))
        run(self.alice.change_modes("den", [on("i")]))
        self.assertRaises(NotOperator, run, self.bob.invite("carol", "den"))
        self.assertRaises(NotMember, run, carol.invite("bob", "den"))
        self.assertRaises(AlreadyMember, run, self.alice.invite("bob", "den"))
        self.assertRaises(NoSuchUser, run, self.alice.invite("nobody", "den"))

    def test_a_ban_keeps_the_account_out_until_lifted(self):
        result = run(self.alice.change_modes("den", [on("b", "BO*")]))
        self.assertEqual(result.applied, [on("b", "bo*!*@*")])
        self.assertRaises(Banned, run, self.bob.join("den"))
        [ban] = self.alice.bans("den")
        self.assertEqual((ban.mask, ban.set_by), ("bo*!*@*", "alice"))
        run(self.alice.change_modes("den", [off("b", "bo*!*@*")]))
        run(self.bob.join("den"))

    def test_a_ban_naming_a_host_is_refused(self):
        result = run(self.alice.change_modes("den", [on("b", "*!*@evil.example")]))
        self.assertIsInstance(result.refused[0][1], BadModeParam)
        self.assertEqual(self.alice.bans("den"), [])

    def test_moderated_room_hears_operators_and_voiced_members_only(self):
        run(self.bob.join("den"))
        run(self.alice.change_modes("den", [on("m")]))
        self.assertRaises(CannotSpeak, lambda: run(self.bob.say("den", "hi")))
        run(self.alice.change_modes("den", [on("v", "bob")]))
        self.assertEqual(run(self.bob.say("den", "hi")).text, "hi")

    def test_without_n_a_non_member_may_send(self):
        self.assertRaises(NotMember, lambda: run(self.bob.say("den", "knock")))
        run(self.alice.change_modes("den", [off("n")]))
        run(self.bob.say("den", "knock"))
        self.assertEqual(self.minds["alice"].events[-1].text, "knock")

    def test_setting_what_is_set_tells_nobody(self):
        result = run(self.alice.change_modes("den", [on("n"), on("t")]))
        self.assertEqual(result.applied, [])
        self.assertNotIn(Membership.MODE, self.minds["alice"].kinds())

    def test_a_secret_room_is_hidden_from_non_members(self):
        run(self.alice.change_modes("den", [on("s")]))
        room = self.room()
        self.assertFalse(moderation.is_visible(room, self.bob.account.id))
        self.assertTrue(moderation.is_visible(room, self.alice.account.id))
        # It does not exist to them: no "not a member" that says it does.
        self.assertRaises(NoSuchRoom, self.bob.topic, "den")
        self.assertRaises(NoSuchRoom, lambda: run(self.bob.set_topic("den", "x")))


class TopicAndKickTests(ModerationTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice, self.bob = self.user("alice"), self.user("bob")
        run(self.alice.create_room("den"))
        run(self.bob.join("den"))

    def test_a_locked_topic_is_for_operators(self):
        self.assertRaises(NotOperator, run, self.bob.set_topic("den", "mine"))
        self.world.clock.advance(5)
        run(self.alice.set_topic("den", "welcome"))
        topic = self.bob.topic("den")
        self.assertEqual((topic.text, topic.set_by), ("welcome", "alice"))
        self.assertEqual(topic.set_at, self.world.chat.now())
        run(self.alice.change_modes("den", [off("t")]))
        run(self.bob.set_topic("den", ""))
        self.assertEqual(self.alice.topic("den").text, "")
        [told] = [e for e in self.minds["bob"].events if e.kind == "topic"][:1]
        self.assertEqual(told.detail, "welcome")

    def test_kick_puts_the_member_out_and_tells_them_why(self):
        self.assertRaises(NotOperator, run, self.bob.kick("den", "alice"))
        self.assertEqual(run(self.alice.kick("den", "BOB", "be nice")), "bob")
        self.assertNotIn(self.bob.account.id, self.room().members)
        [kick] = [e for e in self.minds["bob"].events if e.kind == "kick"]
        self.assertEqual((kick.name, kick.detail), ("alice", ("bob", "be nice")))
        self.assertRaises(UserNotInRoom, run, self.alice.kick("den", "bob"))

    def test_kick_without_a_reason_gives_the_kickers_name(self):
        run(self.alice.kick("den", "bob"))
        [kick] = [e for e in self.minds["alice"].events if e.kind == "kick"]
        self.assertEqual(kick.detail, ("bob", "alice"))

    def test_guests_roles_live_in_memory(self):
        guest = self.user("visitor", guest=True)
        run(guest.create_room("shed"))
        self.assertTrue(moderation.is_operator(self.room("shed"), guest.account.id))

    def test_mode_events_cross_nodes_as_data(self):
        event = Membership(
            Membership.MODE, "den", "alice", "text", detail=(on("o", "bob"),)
        )
        copy = event_from_dict(event.to_dict())
        self.assertEqual(copy.detail, (on("o", "bob"),))


class RestartTests(ModerationTestCase):
    def setUp(self) -> None:
        self.location = sqlite_file(self)
        super().setUp()

    def restart(self) -> None:
        # The old world's sessions log out into its own (open) pool.
        self.world = ChatWorld(location=self.location)

    def test_topic_modes_bans_and_roles_survive_a_restart(self):
        alice, bob = self.user("alice"), self.user("bob")
        self.user("carol")
        self.world.clock.advance(1000)
        run(alice.create_room("den"))
        run(bob.join("den"))
        run(alice.set_topic("den", "welcome"))
        changes = [on("b", "carol"), on("k", "beer"), on("l", "5"), on("m")]
        run(alice.change_modes("den", [*changes, on("v", "bob")]))
        alice_id, bob_id = alice.account.id, bob.account.id
        self.restart()
        room = self.room()
        modes = moderation.modes_of(room)
        self.assertEqual(
            (modes.topic, modes.topic_by, modes.flags, modes.key, modes.limit),
            ("welcome", "alice", "mnt", "beer", 5),
        )
        self.assertEqual(list(modes.bans), ["carol!*@*"])
        self.assertEqual(modes.owner_id, alice_id)
        self.assertEqual(moderation.role_of(room, alice_id), moderation.OP)
        self.assertEqual(moderation.role_of(room, bob_id), moderation.VOICE)
        self.assertEqual(room.created_at, 1_000_000)
        carol = self.user_again("carol")
        self.assertRaises(Banned, run, carol.join("den", "beer"))

    def test_a_kick_is_stored(self):
        alice, bob = self.user("alice"), self.user("bob")
        run(alice.create_room("den"))
        run(bob.join("den"))
        run(alice.kick("den", "bob"))
        self.restart()
        self.assertNotIn(bob.account.id, self.room().members)

    def user_again(self, name: str):
        mind = Mind()
        admitted = run(
            self.world.factory.admission.login(name, f"pw-{name}", mind, "x")
        )
        self.addCleanup(admitted.logout)
        return admitted.avatar


class SpeakRuleTests(unittest.TestCase):
    """L{moderation.check_speak} on a room's state alone."""

    def refusal(self, *masks: str) -> str:
        room = Room(1, "den")
        room.members[7] = "bob"
        modes = moderation.state_of(room)
        for mask in masks:
            modes.bans[mask] = moderation.Ban(mask, "alice", 0)
        account = SimpleNamespace(id=7, key="bob")
        with self.assertRaises(CannotSpeak) as raised:
            moderation.check_speak(room, account)
        return str(raised.exception)

    def test_a_ban_outranks_a_mute_whichever_came_first(self):
        both = ("m:bob!*@*", "b*!*@*")
        self.assertEqual(self.refusal(*both), "you are banned from #den")
        self.assertEqual(self.refusal(*reversed(both)), "you are banned from #den")
        self.assertEqual(self.refusal("m:b*!*@*"), "you are muted in #den")


class LineTopicTests(unittest.TestCase):
    """The line protocol's /topic, and moderation's notices there."""

    def setUp(self) -> None:
        self.world = ChatWorld()
        self.alice, self.bob = self.world.user("alice"), self.world.user("bob")
        self.alice.command("/c den")
        self.bob.command("/j den")
        self.alice.take()

    def test_topic_is_set_by_operators_and_shown_to_members(self):
        self.assertEqual(self.bob.command("/topic den"), "+OK #den has no topic")
        self.assertTrue(
            self.bob.command("/topic den mine").startswith("-ERR not-operator")
        )
        self.assertEqual(
            self.alice.command("/topic #den hello all"), "+OK topic of #den set"
        )
        self.assertIn("* #den: alice set the topic: hello all", self.bob.take())
        self.assertEqual(
            self.bob.command("/topic den"), "+OK #den: hello all (set by alice)"
        )
        self.assertTrue(self.bob.command("/topic").startswith("-ERR bad-arguments"))

    def test_a_topic_or_kick_reason_too_long_is_refused_and_changes_nothing(self):
        self.alice.command("/topic den hello all")
        self.bob.take()
        long = "x" * (moderation.TOPIC_MAX + 1)
        reply = self.alice.command(f"/topic den {long}")
        self.assertTrue(reply.startswith("-ERR text-too-long"), reply)
        reason = "y" * (moderation.KICK_MAX + 1)
        reply = self.alice.command(f"/kick den bob {reason}")
        self.assertTrue(reply.startswith("-ERR text-too-long"), reply)
        self.assertEqual(self.bob.take(), [])
        self.assertEqual(
            self.bob.command("/topic den"), "+OK #den: hello all (set by alice)"
        )
        self.assertEqual(self.bob.command("/public den still here"), "+OK")


class PostgresModerationTests(PostgresTestCase):
    """What moderation stores, on PostgreSQL."""

    @defer.inlineCallbacks
    def test_modes_topic_roles_and_bans_round_trip(self):
        store = self.store
        user = yield store.create_user("Ann", "ann", "hash", 1)
        room_id = yield store.create_room(
            "den", "den", user.id, 5, creator_role=moderation.OP
        )
        yield store.store_topic(room_id, "welcome", "Ann", 7)
        yield store.store_modes(
            ModeWrite(room_id, "imnt", "beer", 3, bans_added=(("b*!*@*", "Ann", 8),))
        )
        records = yield store.load_moderation()
        [settings] = [s for s in records.settings if s.room_id == room_id]
        self.assertEqual(
            (settings.created_by, settings.created_at, settings.topic, settings.modes),
            (user.id, 5, "welcome", "imnt"),
        )
        self.assertEqual((settings.key, settings.limit), ("beer", 3))
        self.assertEqual(records.roles, [(room_id, user.id, moderation.OP)])
        self.assertEqual(records.bans, [(room_id, "b*!*@*", "Ann", 8)])
        yield store.remove_kicked(room_id, user.id)
        self.assertEqual((yield store.load_moderation()).roles, [])
