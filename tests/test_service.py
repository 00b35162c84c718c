"""
The chat service without a protocol: accounts, the room directory, fan-out,
and what survives a restart.
"""

from twisted.trial import unittest

from chatroom.errors import BadName, BadPassword, NameTaken, NoSuchRoom
from chatroom.service.events import Notice
from chatroom.service.fanout import LocalFanout
from chatroom.service.rooms import Room, RoomDirectory
from tests.asynctest import async_test
from tests.clients import data_lines
from tests.helpers import ADMIN_PASSWORD, ServerTestCase, sqlite_file, start_server


class AccountTests(ServerTestCase):
    @async_test
    async def test_register_stores_the_account_and_puts_it_in_the_lobby(self):
        chat = self.server.chat
        record = await chat.register("alice", "pw-alice")
        self.assertEqual(await self.server.store.find_user("alice"), record)
        self.assertEqual(chat.rooms.lobby.members[record.id], "alice")
        self.assertEqual(record.default_room_id, chat.rooms.lobby.id)

    @async_test
    async def test_register_refuses_bad_input_and_stores_nothing(self):
        chat, admission = self.server.chat, self.server.factory.admission
        for name, password, error in (
            ("-bad", "pw", BadName),
            ("alice", "", BadPassword),
            ("system", "pw", NameTaken),
        ):
            with self.assertRaises(error):
                await admission.register(name, password, None, "127.0.0.1")
        self.assertEqual(len(await self.server.store.list_users()), 1)
        self.assertEqual(len(chat.rooms.lobby.members), 1)

    @async_test
    async def test_admin_exists_with_its_password_from_the_first_start(self):
        admin = await self.server.store.find_user("admin")
        self.assertTrue(admin.is_admin)
        self.assertIn(admin.id, self.server.chat.rooms.lobby.members)
        self.assertTrue(
            await self.server.chat.hasher.verify(ADMIN_PASSWORD, admin.password_hash)
        )

    @async_test
    async def test_given_admin_password_replaces_the_old_one(self):
        await self.server.chat.ensure_admin("new-admin-pw")
        admin = await self.server.store.find_user("admin")
        verify = self.server.chat.hasher.verify
        self.assertTrue(await verify("new-admin-pw", admin.password_hash))
        self.assertFalse(await verify(ADMIN_PASSWORD, admin.password_hash))

    @async_test
    async def test_sessions_of_an_account_share_it_until_the_last_leaves(self):
        chat = self.server.chat
        first = await self.server.register("alice", "pw-alice")
        second = await self.server.login("alice", "pw-alice")
        [account] = [a for a in chat.online.values() if a.name == "alice"]
        self.assertEqual(len(account.sessions), 2)
        first.disconnect()
        self.assertIs(chat.online_by_key["alice"], account)
        second.disconnect()
        self.assertNotIn("alice", chat.online_by_key)
        self.assertNotIn(account.id, chat.online)


class RoomDirectoryTests(unittest.TestCase):
    def setUp(self):
        self.rooms = RoomDirectory()
        self.lobby = self.rooms.add_room(Room(1, "lobby"))
        self.dev = self.rooms.add_room(Room(2, "Dev"))

    def test_find_ignores_case_and_a_leading_hash(self):
        for name in ("Dev", "dev", "#DEV"):
            self.assertIs(self.rooms.find(name), self.dev)
        self.assertIs(self.rooms.lobby, self.lobby)

    def test_find_of_a_missing_room_or_bad_name_fails(self):
        self.assertRaises(NoSuchRoom, self.rooms.find, "nowhere")
        self.assertRaises(BadName, self.rooms.find, "no where")

    def test_membership_is_seen_from_both_sides(self):
        self.rooms.add_member(self.dev, 7, "alice")
        self.rooms.add_member(self.lobby, 7, "alice")
        self.assertIn(7, self.dev.members)
        self.assertEqual(
            sorted(room.name for room in self.rooms.rooms_of(7)), ["Dev", "lobby"]
        )
        self.rooms.remove_member(self.dev, 7)
        self.assertNotIn(7, self.dev.members)
        self.assertEqual(self.rooms.rooms_of(7), [self.lobby])

    def test_rename_member_renames_in_every_room(self):
        self.rooms.add_member(self.dev, 7, "alice")
        self.rooms.add_member(self.lobby, 7, "alice")
        self.rooms.rename_member(7, "alicia")
        self.assertEqual((self.dev.members, self.lobby.members), ({7: "alicia"},) * 2)

    def test_sequence_numbers_continue_from_the_last_one_stored(self):
        room = Room(3, "ops", last_seq=41)
        self.assertEqual((room.next_seq(), room.next_seq()), (42, 43))


class _Mind:
    """A client that records what it is handed."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    def notice(self, text: str) -> None:
        self.notices.append(text)


class _BrokenMind:
    def notice(self, text: str) -> None:
        raise ConnectionError("gone")


class FanoutTests(unittest.TestCase):
    def setUp(self):
        self.fanout = LocalFanout()
        self.channel = ("room", 1)

    def test_publish_reaches_every_subscriber_but_the_excluded_one(self):
        sender, alice, bob = _Mind(), _Mind(), _Mind()
        for mind in (sender, alice, bob):
            self.fanout.subscribe(self.channel, mind)
        self.fanout.subscribe(("room", 2), _Mind())
        self.fanout.publish(self.channel, Notice("hi"), exclude=sender)
        self.assertEqual(
            (sender.notices, alice.notices, bob.notices), ([], ["hi"], ["hi"])
        )

    def test_unsubscribed_clients_get_nothing(self):
        alice = _Mind()
        self.fanout.subscribe(self.channel, alice)
        self.fanout.unsubscribe(self.channel, alice)
        self.fanout.publish(self.channel, Notice("hi"))
        self.assertEqual(alice.notices, [])
        self.assertEqual(self.fanout.subscribers(self.channel), frozenset())

    def test_a_failing_delivery_does_not_stop_the_others(self):
        minds = [_Mind(), _BrokenMind(), _Mind()]
        for mind in minds:
            self.fanout.subscribe(self.channel, mind)
        self.fanout.publish(self.channel, Notice("hi"))
        self.assertEqual([minds[0].notices, minds[2].notices], [["hi"], ["hi"]])
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)

    def test_a_delivery_may_unsubscribe_during_publish(self):
        alice = _Mind()

        class Leaving(_Mind):
            def notice(inner, text):
                self.fanout.unsubscribe(self.channel, inner)
                self.fanout.unsubscribe(self.channel, alice)

        self.fanout.subscribe(self.channel, Leaving())
        self.fanout.subscribe(self.channel, alice)
        self.fanout.publish(self.channel, Notice("bye"))
        self.assertEqual(self.fanout.subscribers(self.channel), frozenset())


class RestartTests(unittest.TestCase):
    """Stop the server, start a new one on the same file: nothing is lost."""

    timeout = 30

    @async_test
    async def test_everything_acknowledged_survives_a_restart(self):
        location = sqlite_file(self)
        first = await start_server(self, location)
        alice = await first.register("alice", "pw-alice")
        bob = await first.register("bob", "pw-bob")
        await alice.send("/c dev")
        await alice.send("/cd dev")
        await bob.send("/j dev")
        await alice.send("before the restart")
        bob.disconnect()
        await alice.send("/msg bob kept for you")
        await alice.send("/u Alicia")
        await first.stop()
        self.assertTrue(alice.closed)
        self.assertEqual(alice.take(), ["* the server is shutting down"])

        second = await start_server(self, location)
        alicia = await second.login("alicia", "pw-alice")
        self.assertEqual(
            data_lines(await alicia.send("/rooms")), ["dev (default)", "lobby"]
        )
        self.assertEqual(
            data_lines(await alicia.send("/who dev")),
            ["Alicia (online) (owner)", "bob"],
        )
        # Plain text still goes to the default room, with the next sequence.
        self.assertEqual(await alicia.send("after the restart"), ["+OK"])
        self.assertEqual(
            [
                line.split(" ", 1)[1]
                for line in data_lines(await alicia.send("/history dev"))
            ],
            ["[dev] alice: before the restart", "[dev] Alicia: after the restart"],
        )
        bob = second.connect()
        await bob.send("/login bob pw-bob")
        self.assertEqual(
            await bob.send("/ping"), ["[private] alice: kept for you", "+OK pong"]
        )
