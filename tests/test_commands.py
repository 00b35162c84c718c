"""
Every command of PROTOCOL.md, its success and each of its failure codes,
driven through the real protocol against a whole server.
"""

from twisted.internet import defer

from chatroom.protocol.line.commands import COMMANDS
from tests.asynctest import async_test
from tests.clients import data_lines
from tests.helpers import ServerTestCase

# 2001-09-09T01:46:40Z is START_TIME, the fake clock's first reading.
STARTED = "2001-09-09T01:46:40Z"


class RegisterTests(ServerTestCase):
    @async_test
    async def test_register_creates_the_account_and_logs_in(self):
        client = self.server.connect()
        self.assertEqual(
            await client.send("/register alice pw-alice"), ["+OK welcome, alice"]
        )
        self.assertIsNotNone(await self.server.store.find_user("alice"))
        self.assertEqual(data_lines(await client.send("/rooms")), ["lobby (default)"])

    @async_test
    async def test_register_with_a_password_containing_spaces(self):
        client = self.server.connect()
        await client.send("/register alice correct horse battery")
        other = await self.server.login("alice", "correct horse battery")
        self.assertFalse(other.closed)

    @async_test
    async def test_register_refuses_a_name_taken_in_any_case(self):
        await self.server.register("alice")
        client = self.server.connect()
        self.assertFailed(await client.send("/register ALICE pw"), "name-taken")
        self.assertFailed(await client.send("/rooms"), "not-logged-in")

    @async_test
    async def test_registering_one_name_twice_at_once_fails_the_second(self):
        first, second = self.server.connect(), self.server.connect()
        replies = await defer.gatherResults(
            [first.send("/register carol pw-1"), second.send("/register CAROL pw-2")]
        )
        self.assertEqual(replies[0], ["+OK welcome, carol"])
        self.assertFailed(replies[1], "name-taken")

    @async_test
    async def test_register_refuses_reserved_names(self):
        client = self.server.connect()
        for name in ("admin", "Admin", "root"):
            self.assertFailed(await client.send(f"/register {name} pw"), "name-taken")
        self.assertIsNone(await self.server.store.find_user("root"))

    @async_test
    async def test_register_refuses_a_bad_name_and_creates_nothing(self):
        client = self.server.connect()
        for name in ("-alice", "a" * 33, "al!ce", "élodie"):
            self.assertFailed(await client.send(f"/register {name} pw"), "bad-name")
        self.assertEqual(len(await self.server.store.list_users()), 1)

    @async_test
    async def test_register_refuses_a_password_with_control_characters(self):
        client = self.server.connect()
        self.assertFailed(await client.send("/register bob pass\x07"), "bad-password")
        self.assertIsNone(await self.server.store.find_user("bob"))

    @async_test
    async def test_register_without_a_password_is_bad_arguments(self):
        client = self.server.connect()
        self.assertFailed(await client.send("/register bob"), "bad-arguments")

    @async_test
    async def test_register_when_logged_in_is_refused(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/register bob pw-bob"), "already-logged-in")
        self.assertIsNone(await self.server.store.find_user("bob"))


class LoginTests(ServerTestCase):
    @async_test
    async def test_login_with_the_right_password(self):
        alice = await self.server.register("alice", "pw-alice")
        alice.disconnect()
        client = self.server.connect()
        self.assertEqual(
            await client.send("/login alice pw-alice"), ["+OK welcome, alice"]
        )

    @async_test
    async def test_login_name_is_case_insensitive(self):
        await self.server.register("Alice", "pw-alice")
        client = self.server.connect()
        self.assertEqual(
            await client.send("/login aLiCe pw-alice"), ["+OK welcome, Alice"]
        )

    @async_test
    async def test_login_with_a_wrong_password_fails(self):
        await self.server.register("alice", "pw-alice")
        client = self.server.connect()
        self.assertFailed(await client.send("/login alice wrong"), "auth-failed")
        self.assertFailed(await client.send("/rooms"), "not-logged-in")

    @async_test
    async def test_failed_login_creates_no_user(self):
        client = self.server.connect()
        self.assertFailed(await client.send("/login nobody pw"), "auth-failed")
        self.assertIsNone(await self.server.store.find_user("nobody"))
        self.assertEqual(
            [name for _, name, _ in await self.server.store.list_users()], ["admin"]
        )

    @async_test
    async def test_failed_login_is_in_the_users_activity_log(self):
        await self.server.register("alice", "pw-alice")
        client = self.server.connect(peer="10.0.0.7")
        self.assertFailed(await client.send("/login alice wrong"), "auth-failed")
        admin = await self.server.admin()
        entries = data_lines(await admin.send("/log alice"))
        self.assertIn(f"{STARTED} login-failed alice 10.0.0.7", entries)

    @async_test
    async def test_failed_login_of_an_unknown_name_is_recorded(self):
        client = self.server.connect(peer="10.0.0.7")
        self.assertFailed(await client.send("/login nobody pw"), "auth-failed")

        def failures(cursor):
            cursor.execute(
                "SELECT user_id, actor, detail FROM activity"
                " WHERE event = 'login-failed'"
            )
            return cursor.fetchall()

        self.assertEqual(
            await self.server.database.read(failures), [(None, "nobody", "10.0.0.7")]
        )

    @async_test
    async def test_client_leaving_during_login_is_not_left_online(self):
        (await self.server.register("alice", "pw-alice")).disconnect()
        leaving = self.server.connect()
        leaving.send("/login alice pw-alice")
        leaving.disconnect()
        # bcrypt and the database each run one job at a time, in order: once
        # a later login is answered, the first one has finished too.
        staying = await self.server.login("alice", "pw-alice")
        account = self.server.chat.online_by_key["alice"]
        self.assertEqual(account.sessions, (staying.protocol.avatar,))

    @async_test
    async def test_login_when_logged_in_is_refused(self):
        alice = await self.server.register("alice", "pw-alice")
        self.assertFailed(
            await alice.send("/login alice pw-alice"), "already-logged-in"
        )


class InteractiveLoginTests(ServerTestCase):
    """A bare name, then the password on the next line: for telnet users."""

    @async_test
    async def test_new_name_asks_for_a_first_password_and_creates_the_account(self):
        client = self.server.connect()
        reply = await client.send("carol")
        self.assertEqual(len(reply), 1)
        self.assertTrue(reply[0].startswith("+OK carol is new"))
        self.assertEqual(await client.send("first secret"), ["+OK welcome, carol"])
        other = await self.server.login("carol", "first secret")
        self.assertFalse(other.closed)

    @async_test
    async def test_known_name_asks_for_the_password_and_logs_in(self):
        await self.server.register("alice", "pw-alice")
        client = self.server.connect()
        reply = await client.send("ALICE")
        self.assertTrue(reply[0].startswith("+OK ALICE is known"), reply)
        self.assertEqual(await client.send("pw-alice"), ["+OK welcome, alice"])

    @async_test
    async def test_known_name_with_a_wrong_password_fails_and_starts_over(self):
        await self.server.register("alice", "pw-alice")
        client = self.server.connect()
        await client.send("alice")
        self.assertFailed(await client.send("wrong"), "auth-failed")
        # The next line is a line again, not a password.
        self.assertEqual(await client.send("/ping"), ["+OK pong"])
        await client.send("alice")
        self.assertEqual(await client.send("pw-alice"), ["+OK welcome, alice"])

    @async_test
    async def test_bad_bare_name_is_refused(self):
        client = self.server.connect()
        self.assertFailed(await client.send("-alice"), "bad-name")

    @async_test
    async def test_text_of_several_words_before_login_is_refused(self):
        client = self.server.connect()
        self.assertFailed(await client.send("hello there"), "not-logged-in")


class ConnectionCommandTests(ServerTestCase):
    @async_test
    async def test_ping_answers_pong_before_and_after_login(self):
        client = self.server.connect()
        self.assertEqual(await client.send("/ping"), ["+OK pong"])
        alice = await self.server.register("alice")
        self.assertEqual(await alice.send("/ping"), ["+OK pong"])

    @async_test
    async def test_command_names_are_case_insensitive(self):
        client = self.server.connect()
        self.assertEqual(await client.send("/PING"), ["+OK pong"])

    @async_test
    async def test_help_lists_every_command_but_the_admin_ones(self):
        client = self.server.connect()
        reply = await client.send("/help")
        self.assertTrue(reply[-1].startswith("+OK"))
        shown = "\n".join(data_lines(reply))
        for cmd in set(COMMANDS.values()):
            if cmd.admin:
                self.assertNotIn(cmd.usage, shown)
            else:
                self.assertIn(cmd.usage, shown)

    @async_test
    async def test_help_shows_the_admin_their_commands(self):
        admin = await self.server.admin()
        shown = "\n".join(data_lines(await admin.send("/help")))
        self.assertIn("/list", shown)
        self.assertIn("/users", shown)

    @async_test
    async def test_logout_answers_then_closes(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        self.assertEqual(await alice.send("/logout"), ["+OK bye"])
        self.assertTrue(alice.closed)
        members = data_lines(await bob.send("/who lobby"))
        self.assertIn("alice", members)
        self.assertNotIn("alice (online)", members)

    @async_test
    async def test_logout_before_login_closes(self):
        client = self.server.connect()
        self.assertEqual(await client.send("/logout"), ["+OK bye"])
        self.assertTrue(client.closed)

    @async_test
    async def test_lines_after_logout_are_not_served(self):
        client = self.server.connect()
        await client.send_bytes(b"/logout\n/ping\n")
        self.assertEqual(client.take(), [])
        self.assertEqual(client.lines()[-1], "+OK bye")

    @async_test
    async def test_unknown_command_is_bad_command_once_logged_in(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/frobnicate now"), "bad-command")

    @async_test
    async def test_unknown_command_before_login_is_not_logged_in(self):
        # PROTOCOL.md: before login, anything else gets not-logged-in.
        client = self.server.connect()
        self.assertFailed(await client.send("/frobnicate"), "not-logged-in")

    @async_test
    async def test_bad_command_never_echoes_control_characters(self):
        alice = await self.server.register("alice")
        lines = await alice.send("/\x1b[2Jboom")
        self.assertFailed(lines, "bad-command")
        self.assertNotIn("\x1b", "".join(lines))

    @async_test
    async def test_reserved_name_is_refused_at_once_in_the_interactive_login(self):
        client = self.server.connect()
        self.assertFailed(await client.send("root"), "name-taken")

    @async_test
    async def test_commands_after_login_are_refused_before_login(self):
        await self.server.register("bob")
        client = self.server.connect()
        for line in (
            "/public lobby hi",
            "/private bob hi",
            "/msg bob hi",
            "/u carol",
            "/p old new",
            "/p",
            "/c dev",
            "/j lobby",
            "/l lobby",
            "/cd lobby",
            "/rooms",
            "/who lobby",
            "/history",
            "/log",
            "/list",
            "/users",
        ):
            self.assertFailed(await client.send(line), "not-logged-in")
        self.assertNotIn("dev", self.server.chat.rooms.by_key)
        self.assertIsNone(await self.server.store.find_user("carol"))


class MessageTests(ServerTestCase):
    @async_test
    async def test_plain_text_goes_to_the_default_room(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        self.assertEqual(await alice.send("hello"), ["+OK"])
        self.assertEqual(bob.take(), ["[lobby] alice: hello"])

    @async_test
    async def test_message_is_stored_before_its_ok(self):
        alice = await self.server.register("alice")
        await alice.send("hello")
        lobby = self.server.chat.rooms.lobby
        [stored] = await self.server.store.room_history(lobby.id, 10)
        self.assertEqual((stored.sender, stored.text), ("alice", "hello"))

    @async_test
    async def test_double_slash_sends_text_starting_with_a_slash(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        self.assertEqual(await alice.send("//shrug"), ["+OK"])
        self.assertEqual(bob.take(), ["[lobby] alice: /shrug"])

    @async_test
    async def test_public_sends_to_a_room_one_is_in(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await alice.send("/c dev")
        await bob.send("/j dev")
        alice.take()
        for target in ("dev", "<dev>", "#dev", "DEV"):
            self.assertEqual(await alice.send(f"/public {target} hi there"), ["+OK"])
            self.assertEqual(bob.take(), ["[dev] alice: hi there"])

    @async_test
    async def test_public_to_a_room_one_is_not_in_is_refused(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        self.assertFailed(await alice.send("/public dev hi"), "not-member")
        self.assertEqual(bob.take(), [])

    @async_test
    async def test_public_to_a_missing_room_is_refused(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/public nowhere hi"), "no-such-room")

    @async_test
    async def test_public_without_text_is_bad_arguments(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/public lobby"), "bad-arguments")

    @async_test
    async def test_private_reaches_only_its_recipient(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        carol = await self.server.register("carol")
        self.assertEqual(await alice.send("/private bob psst"), ["+OK"])
        self.assertEqual(await alice.send("/msg <BOB> again"), ["+OK"])
        self.assertEqual(
            bob.take(), ["[private] alice: psst", "[private] alice: again"]
        )
        self.assertEqual(carol.take(), [])

    @async_test
    async def test_private_to_an_unknown_user_is_refused(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/msg nobody hi"), "no-such-user")

    @async_test
    async def test_private_to_an_offline_user_is_delivered_oldest_first_at_login(self):
        bob = await self.server.register("bob", "pw-bob")
        bob.disconnect()
        alice = await self.server.register("alice")
        self.assertEqual(await alice.send("/msg bob one"), ["+OK"])
        self.assertEqual(await alice.send("/msg bob two"), ["+OK"])
        bob = self.server.connect()
        await bob.send("/login bob pw-bob")
        # Kept messages come after the welcome, before the next reply.
        self.assertEqual(
            await bob.send("/ping"),
            ["[private] alice: one", "[private] alice: two", "+OK pong"],
        )

    @async_test
    async def test_kept_private_messages_stay_kept_if_the_client_leaves_first(self):
        (await self.server.register("bob", "pw-bob")).disconnect()
        alice = await self.server.register("alice")
        await alice.send("/msg bob one")
        store = self.server.store
        reading = defer.Deferred()
        undelivered = store.undelivered_private
        self.patch(store, "undelivered_private", lambda user_id, limit: reading)
        bob = self.server.connect()
        await bob.send("/login bob pw-bob")
        # bob goes away while his kept messages are being read.
        bob.disconnect()
        bob_id = (await store.find_user("bob")).id
        reading.callback(await undelivered(bob_id, 10))
        await self.server.database.flushed()
        self.assertEqual([m.text for m in await undelivered(bob_id, 10)], ["one"])

    @async_test
    async def test_kept_private_messages_are_delivered_once(self):
        bob = await self.server.register("bob", "pw-bob")
        bob.disconnect()
        alice = await self.server.register("alice")
        await alice.send("/msg bob one")
        first = await self.server.login("bob", "pw-bob")
        self.assertEqual(
            await first.send("/ping"), ["[private] alice: one", "+OK pong"]
        )
        first.disconnect()
        bob = self.server.connect()
        await bob.send("/login bob pw-bob")
        self.assertEqual(await bob.send("/ping"), ["+OK pong"])


class RoomTests(ServerTestCase):
    @async_test
    async def test_create_makes_the_room_and_joins_it(self):
        alice = await self.server.register("alice")
        self.assertEqual(await alice.send("/c dev"), ["+OK created #dev"])
        self.assertEqual(
            data_lines(await alice.send("/rooms")), ["dev", "lobby (default)"]
        )

    @async_test
    async def test_create_drops_a_leading_hash(self):
        alice = await self.server.register("alice")
        self.assertEqual(await alice.send("/c #dev"), ["+OK created #dev"])
        self.assertIn("dev", self.server.chat.rooms.by_key)

    @async_test
    async def test_create_refuses_an_existing_room_in_any_case(self):
        alice = await self.server.register("alice")
        await alice.send("/c dev")
        for name in ("dev", "DEV", "#Dev", "Lobby"):
            self.assertFailed(await alice.send(f"/c {name}"), "room-exists")

    @async_test
    async def test_create_refuses_a_bad_name(self):
        alice = await self.server.register("alice")
        for name in ("-dev", "d" * 33, "#", "dév"):
            self.assertFailed(await alice.send(f"/c {name}"), "bad-name")

    @async_test
    async def test_join_adds_a_member_who_then_gets_the_rooms_messages(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await alice.send("/c dev")
        self.assertEqual(await bob.send("/j #DEV"), ["+OK joined #dev"])
        await alice.send("/public dev welcome")
        self.assertEqual(bob.take(), ["[dev] alice: welcome"])

    @async_test
    async def test_join_a_room_one_is_in_is_refused(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/j lobby"), "already-member")

    @async_test
    async def test_joining_twice_at_once_fails_only_the_second_join(self):
        alice = await self.server.register("alice", "pw-alice")
        again = await self.server.login("alice", "pw-alice")
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        # Both joins pass the membership check before either is stored, and
        # bob's message shares their commit.
        replies = await defer.gatherResults(
            [alice.send("/j dev"), again.send("/j dev"), bob.send("/public dev hi")]
        )
        self.assertEqual(replies[0], ["+OK joined #dev"])
        self.assertFailed(replies[1], "already-member")
        self.assertEqual(replies[2], ["* alice joined #dev", "+OK"])

    @async_test
    async def test_leaving_twice_at_once_fails_only_the_second_leave(self):
        alice = await self.server.register("alice", "pw-alice")
        again = await self.server.login("alice", "pw-alice")
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        await alice.send("/j dev")
        replies = await defer.gatherResults(
            [alice.send("/l dev"), again.send("/l dev")]
        )
        self.assertEqual(replies[0][-1], "+OK left #dev")
        self.assertFailed(replies[1], "not-member")
        await bob.send("/ping")
        self.assertEqual(
            [line for line in bob.lines() if "left #dev" in line], ["* alice left #dev"]
        )

    @async_test
    async def test_lists_sort_names_regardless_of_case(self):
        zed = await self.server.register("Zed")
        await self.server.register("alice")
        await zed.send("/c beta")
        await zed.send("/c Alpha")
        self.assertEqual(
            data_lines(await zed.send("/rooms")), ["Alpha", "beta", "lobby (default)"]
        )
        self.assertEqual(
            data_lines(await zed.send("/who lobby")),
            ["admin", "alice (online)", "Zed (online)"],
        )

    @async_test
    async def test_creating_one_room_twice_at_once_fails_the_second(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        replies = await defer.gatherResults([alice.send("/c dev"), bob.send("/c DEV")])
        self.assertEqual(replies[0], ["+OK created #dev"])
        self.assertFailed(replies[1], "room-exists")
        self.assertEqual(data_lines(await bob.send("/rooms")), ["lobby (default)"])

    @async_test
    async def test_join_a_missing_room_is_refused(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/j nowhere"), "no-such-room")

    @async_test
    async def test_leave_stops_the_rooms_messages(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await alice.send("/c dev")
        await bob.send("/j dev")
        self.assertEqual(await bob.send("/l dev"), ["+OK left #dev"])
        await alice.send("/public dev anyone?")
        self.assertEqual(bob.take(), [])
        self.assertFailed(await bob.send("/public dev hi"), "not-member")

    @async_test
    async def test_leave_a_room_one_is_not_in_is_refused(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        self.assertFailed(await alice.send("/l dev"), "not-member")

    @async_test
    async def test_leaving_the_default_room_falls_back_to_the_lobby(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await alice.send("/c dev")
        await alice.send("/cd dev")
        await alice.send("/l dev")
        self.assertEqual(data_lines(await alice.send("/rooms")), ["lobby (default)"])
        await alice.send("back again")
        self.assertEqual(bob.take(), ["[lobby] alice: back again"])

    @async_test
    async def test_leaving_the_lobby_as_default_falls_back_to_another_room(self):
        alice = await self.server.register("alice")
        await alice.send("/c dev")
        await alice.send("/l lobby")
        self.assertEqual(data_lines(await alice.send("/rooms")), ["dev (default)"])

    @async_test
    async def test_leaving_every_room_leaves_no_default(self):
        alice = await self.server.register("alice")
        await alice.send("/l lobby")
        self.assertEqual(await alice.send("/rooms"), ["+OK 0 rooms"])
        self.assertFailed(await alice.send("hello?"), "not-member")

    @async_test
    async def test_cd_makes_plain_text_go_to_that_room(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await alice.send("/c dev")
        await bob.send("/j dev")
        alice.take()
        self.assertEqual(await alice.send("/cd #dev"), ["+OK default room is #dev"])
        await alice.send("in dev")
        self.assertEqual(bob.take(), ["[dev] alice: in dev"])
        self.assertEqual(
            data_lines(await alice.send("/rooms")), ["dev (default)", "lobby"]
        )

    @async_test
    async def test_cd_to_a_room_one_is_not_in_is_refused(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        self.assertFailed(await alice.send("/cd dev"), "not-member")
        self.assertFailed(await alice.send("/cd nowhere"), "no-such-room")

    @async_test
    async def test_who_lists_members_with_the_online_ones_marked(self):
        alice = await self.server.register("alice")
        await self.server.register("bob")
        (await self.server.register("carol")).disconnect()
        reply = await alice.send("/who #lobby")
        self.assertEqual(
            data_lines(reply),
            ["admin", "alice (online)", "bob (online)", "carol"],
        )
        self.assertEqual(reply[-1], "+OK 4 members")

    @async_test
    async def test_who_of_a_room_one_is_not_in_is_refused(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        self.assertFailed(await alice.send("/who dev"), "not-member")
        self.assertFailed(await alice.send("/who nowhere"), "no-such-room")


class HistoryTests(ServerTestCase):
    history_default = 3

    async def _say(self, client, room, *texts):
        for text in texts:
            self.assertEqual(await client.send(f"/public {room} {text}"), ["+OK"])

    @async_test
    async def test_history_shows_the_default_rooms_last_messages_timestamped(self):
        alice = await self.server.register("alice")
        self.server.clock.advance(61)
        await self._say(alice, "lobby", "one", "two", "three", "four")
        reply = await alice.send("/history")
        self.assertEqual(
            data_lines(reply),
            [
                "2001-09-09T01:47:41Z [lobby] alice: two",
                "2001-09-09T01:47:41Z [lobby] alice: three",
                "2001-09-09T01:47:41Z [lobby] alice: four",
            ],
        )
        self.assertEqual(reply[-1], "+OK 3 messages")

    @async_test
    async def test_history_n_shows_the_last_n(self):
        alice = await self.server.register("alice")
        await self._say(alice, "lobby", "one", "two", "three", "four")
        reply = await alice.send("/history 2")
        self.assertEqual(
            [line.split(" ", 1)[1] for line in data_lines(reply)],
            ["[lobby] alice: three", "[lobby] alice: four"],
        )

    @async_test
    async def test_history_of_a_named_room_and_count(self):
        alice = await self.server.register("alice")
        await alice.send("/c dev")
        await self._say(alice, "dev", "d1", "d2")
        await self._say(alice, "lobby", "l1")
        reply = await alice.send("/history dev 5")
        self.assertEqual(
            [line.split(" ", 1)[1] for line in data_lines(reply)],
            ["[dev] alice: d1", "[dev] alice: d2"],
        )

    @async_test
    async def test_history_of_a_room_named_by_a_number_takes_a_hash(self):
        alice = await self.server.register("alice")
        await alice.send("/c 5")
        await self._say(alice, "5", "in five")
        await self._say(alice, "lobby", "l1", "l2", "l3", "l4", "l5", "l6")
        self.assertEqual(
            [
                line.split(" ", 1)[1]
                for line in data_lines(await alice.send("/history #5"))
            ],
            ["[5] alice: in five"],
        )
        self.assertEqual(len(data_lines(await alice.send("/history 5"))), 5)

    @async_test
    async def test_history_of_a_room_one_is_not_in_is_refused(self):
        alice = await self.server.register("alice")
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        self.assertFailed(await alice.send("/history dev"), "not-member")
        self.assertFailed(await alice.send("/history nowhere 3"), "no-such-room")


class LogTests(ServerTestCase):
    @async_test
    async def test_log_shows_ones_own_activity(self):
        alice = await self.server.register("alice")
        await alice.send("/c dev")
        reply = await alice.send("/log")
        self.assertEqual(
            data_lines(reply),
            [
                f"{STARTED} register alice",
                f"{STARTED} login alice 127.0.0.1",
                f"{STARTED} create alice #dev",
            ],
        )

    @async_test
    async def test_log_shows_what_was_just_done(self):
        alice = await self.server.register("alice")
        await alice.send("/c dev")
        await alice.send("/cd dev")
        await alice.send("/l dev")
        events = [line.split(" ")[1] for line in data_lines(await alice.send("/log"))]
        self.assertEqual(events[-3:], ["default", "default", "leave"])

    @async_test
    async def test_log_of_another_user_is_denied_to_non_admins(self):
        await self.server.register("bob")
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/log bob"), "permission-denied")

    @async_test
    async def test_log_naming_oneself_is_allowed(self):
        alice = await self.server.register("alice")
        self.assertEqual(len(data_lines(await alice.send("/log ALICE"))), 2)

    @async_test
    async def test_admin_reads_anyones_log(self):
        bob = await self.server.register("bob")
        await bob.send("/c dev")
        admin = await self.server.admin()
        entries = data_lines(await admin.send("/log bob"))
        self.assertIn(f"{STARTED} create bob #dev", entries)

    @async_test
    async def test_admin_log_of_an_unknown_user_is_refused(self):
        admin = await self.server.admin()
        self.assertFailed(await admin.send("/log nobody"), "no-such-user")


class AdminTests(ServerTestCase):
    @async_test
    async def test_list_and_users_are_denied_to_non_admins(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/list"), "permission-denied")
        self.assertFailed(await alice.send("/users"), "permission-denied")

    @async_test
    async def test_list_shows_every_room_with_its_member_count(self):
        alice = await self.server.register("alice")
        await alice.send("/c dev")
        await self.server.register("bob")
        admin = await self.server.admin()
        reply = await admin.send("/list")
        self.assertEqual(data_lines(reply), ["dev 1 member", "lobby 3 members"])
        self.assertEqual(reply[-1], "+OK 2 rooms")

    @async_test
    async def test_users_shows_every_user_online_or_not(self):
        await self.server.register("alice")
        (await self.server.register("bob")).disconnect()
        admin = await self.server.admin()
        self.assertEqual(
            data_lines(await admin.send("/users")),
            ["admin (online) (admin)", "alice (online)", "bob"],
        )


class RenameTests(ServerTestCase):
    @async_test
    async def test_rename_changes_the_name_everywhere(self):
        alice = await self.server.register("alice", "pw-alice")
        bob = await self.server.register("bob")
        self.assertEqual(await alice.send("/u alicia"), ["+OK you are now alicia"])
        self.assertEqual(bob.take(), ["* #lobby: alice is now known as alicia"])
        self.assertIn("alicia (online)", data_lines(await bob.send("/who lobby")))
        await alice.send("hello")
        self.assertEqual(bob.take(), ["[lobby] alicia: hello"])
        await bob.send("/msg alicia hi")
        self.assertEqual(alice.take(), ["[private] bob: hi"])
        self.assertFailed(
            await self.server.connect().send("/login alice pw-alice"), "auth-failed"
        )
        await self.server.login("alicia", "pw-alice")

    @async_test
    async def test_rename_updates_the_member_lists_of_every_room(self):
        alice = await self.server.register("alice")
        await alice.send("/c dev")
        await alice.send("/u alicia")
        self.assertEqual(
            data_lines(await alice.send("/who dev")), ["alicia (online) (owner)"]
        )

    @async_test
    async def test_rename_to_a_name_taken_in_any_case_is_refused(self):
        alice = await self.server.register("alice")
        await self.server.register("bob")
        for name in ("bob", "BOB"):
            self.assertFailed(await alice.send(f"/u {name}"), "name-taken")

    @async_test
    async def test_rename_to_a_reserved_name_is_refused(self):
        alice = await self.server.register("alice")
        for name in ("admin", "Admin", "system"):
            self.assertFailed(await alice.send(f"/u {name}"), "name-taken")

    @async_test
    async def test_the_admin_account_keeps_its_name(self):
        # The next start looks the admin up by name: a renamed admin would
        # get a second admin account created beside it.
        admin = await self.server.admin()
        self.assertFailed(await admin.send("/u boss"), "permission-denied")
        self.assertEqual(await admin.send("/u Admin"), ["+OK you are now Admin"])
        self.assertTrue((await self.server.store.find_user("admin")).is_admin)

    @async_test
    async def test_rename_to_a_bad_name_is_refused(self):
        alice = await self.server.register("alice")
        self.assertFailed(await alice.send("/u -alice"), "bad-name")

    @async_test
    async def test_changing_the_case_of_ones_own_name_is_fine(self):
        alice = await self.server.register("alice", "pw-alice")
        self.assertEqual(await alice.send("/u ALICE"), ["+OK you are now ALICE"])
        reply = await self.server.connect().send("/login alice pw-alice")
        self.assertEqual(reply, ["+OK welcome, ALICE"])


class PasswordTests(ServerTestCase):
    async def _check_password(self, name, works, fails):
        self.assertEqual(
            await self.server.connect().send(f"/login {name} {works}"),
            [f"+OK welcome, {name}"],
        )
        self.assertFailed(
            await self.server.connect().send(f"/login {name} {fails}"), "auth-failed"
        )

    @async_test
    async def test_password_change_replaces_the_old_password(self):
        alice = await self.server.register("alice", "old-pw")
        self.assertEqual(await alice.send("/p old-pw new-pw"), ["+OK password changed"])
        await self._check_password("alice", works="new-pw", fails="old-pw")

    @async_test
    async def test_password_change_with_a_wrong_old_password_is_refused(self):
        alice = await self.server.register("alice", "old-pw")
        self.assertFailed(await alice.send("/p wrong new-pw"), "auth-failed")
        await self._check_password("alice", works="old-pw", fails="new-pw")

    @async_test
    async def test_password_change_to_a_bad_password_is_refused(self):
        alice = await self.server.register("alice", "old-pw")
        self.assertFailed(await alice.send("/p old-pw bad\x1b"), "bad-password")
        await self._check_password("alice", works="old-pw", fails="bad\x1b")

    @async_test
    async def test_interactive_password_change(self):
        alice = await self.server.register("alice", "old-pw")
        self.assertEqual(await alice.send("/p"), ["+OK type your current password"])
        self.assertEqual(await alice.send("old-pw"), ["+OK type the new password"])
        self.assertEqual(await alice.send("new pw"), ["+OK password changed"])
        await self._check_password("alice", works="new pw", fails="old-pw")

    @async_test
    async def test_interactive_password_change_with_a_wrong_old_password(self):
        alice = await self.server.register("alice", "old-pw")
        await alice.send("/p")
        await alice.send("wrong")
        self.assertFailed(await alice.send("new-pw"), "auth-failed")
        await self._check_password("alice", works="old-pw", fails="new-pw")


class CountTests(ServerTestCase):
    """N in /history and /log: a count from 1, told apart from a room name."""

    @async_test
    async def test_a_count_below_one_is_bad_arguments(self):
        alice = await self.server.register("alice")
        for line in ["/history -1", "/history 0", "/history lobby 0", "/log -5"]:
            self.assertFailed(await alice.send(line), "bad-arguments")

    @async_test
    async def test_one_message_is_one_message(self):
        alice = await self.server.register("alice")
        await alice.send("hello")
        reply = await alice.send("/history 1")
        self.assertEqual(reply[-1], "+OK 1 message")
