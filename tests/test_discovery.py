"""
Discovery and presence on the line protocol: /rooms all, /who, /whois,
/away, /me and /set timestamps; and /me across to IRC and back.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from chatroom.protocol.irc.factory import IRCFactory
from chatroom.protocol.line.wire import timestamp
from chatroom.storage.schema import MIGRATIONS
from tests.clients import MemoryClient
from tests.helpers import RELAXED, ChatWorld, fired, sqlite_file
from tests.test_irc import command_of, params
from tests.test_postgres import PostgresTestCase

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def data_of(lines: list[str]) -> list[str]:
    return [line[2:] for line in lines if line.startswith("= ")]


class DiscoveryTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.world = ChatWorld()
        self.world.clock.advance(1_000_000)
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")

    def reply(self, client: MemoryClient, line: str) -> list[str]:
        """Everything that came back for C{line}, its final reply last."""
        client.write(line)
        return client.take()

    def assertRefused(self, lines: list[str], code: str) -> None:
        self.assertEqual(lines[-1].split(" ")[:2], ["-ERR", code], lines)


class RoomListTests(DiscoveryTestCase):
    def test_rooms_alone_is_still_the_rooms_one_is_in(self):
        self.alice.command("/c dev")
        self.assertEqual(
            self.reply(self.bob, "/rooms"), ["= lobby (default)", "+OK 1 room"]
        )

    def test_rooms_all_shows_every_room_with_members_and_topic(self):
        self.alice.command("/c dev")
        self.alice.command("/topic dev all about dev")
        self.assertEqual(
            self.reply(self.bob, "/rooms all"),
            [
                "= dev 1 member: all about dev",
                "= lobby 3 members (joined)",
                "+OK 2 rooms",
            ],
        )

    def test_a_secret_room_is_listed_only_to_its_members(self):
        irc = IRCFactory(self.world.factory.admission, RELAXED)
        self.alice.command("/c hush")
        self.alice.take()
        self.assertIn("= hush 1 member", self.reply(self.bob, "/rooms all"))
        # Made secret as IRC does it; the rule is the service's.
        op = MemoryClient(irc)
        for line in ("PASS pw", "NICK alice", "USER alice 0 * :alice", "MODE #hush +s"):
            op.write(line)
        self.assertNotIn("= hush 1 member", self.reply(self.bob, "/rooms all"))
        self.assertIn("= hush 1 member (joined)", self.reply(self.alice, "/rooms all"))

    def test_rooms_with_another_word_is_refused(self):
        self.assertRefused(self.reply(self.bob, "/rooms everything"), "bad-arguments")


class WhoTests(DiscoveryTestCase):
    def test_members_show_role_presence_and_away(self):
        self.alice.command("/c dev")
        self.bob.command("/j dev")
        carol = self.world.user("carol")
        carol.command("/j dev")
        carol.disconnect()
        self.bob.command("/away at lunch")
        self.assertEqual(
            data_of(self.reply(self.alice, "/who dev")),
            ["alice (online) (owner)", "bob (online) (away: at lunch)", "carol"],
        )

    def test_coming_back_clears_the_away_mark(self):
        self.bob.command("/away gone")
        self.assertEqual(self.bob.command("/away"), "+OK you are back")
        self.assertIn("bob (online)", data_of(self.reply(self.alice, "/who lobby")))

    def test_a_room_one_is_not_in_is_refused(self):
        self.alice.command("/c dev")
        self.assertRefused(self.reply(self.bob, "/who dev"), "not-member")


class WhoisTests(DiscoveryTestCase):
    def test_someone_online_with_idle_time_away_text_and_rooms(self):
        self.bob.command("/c dev")
        self.bob.command("hello")
        self.world.clock.advance(42)
        self.bob.command("/away back soon")
        self.alice.take()
        self.assertEqual(
            self.reply(self.alice, "/whois bob"),
            [
                "= bob is online, idle 42 s",
                "= away: back soon",
                "= rooms: #dev #lobby",
                "= shared rooms: #lobby",
                "+OK end of whois bob",
            ],
        )

    def test_someone_offline_shows_when_last_seen(self):
        self.world.clock.advance(60)
        left_at = int(self.world.clock.seconds() * 1000)
        self.bob.disconnect()
        self.world.clock.advance(3600)
        self.assertEqual(
            self.reply(self.alice, "/whois BOB")[:1],
            [f"= bob is offline, last seen {timestamp(left_at)}"],
        )

    def test_someone_never_seen_since_it_was_kept(self):
        carol = self.world.user("carol")
        # As an account from before the column: nothing stored.
        self.world.pool.runInteraction(
            lambda c: c.execute("UPDATE users SET last_seen_at = NULL")
        )
        carol.disconnect()
        self.world.pool.runInteraction(
            lambda c: c.execute("UPDATE users SET last_seen_at = NULL")
        )
        self.assertEqual(
            self.reply(self.alice, "/whois carol")[0],
            "= carol is offline, last seen: unknown",
        )

    def test_secret_rooms_are_not_shown_to_others(self):
        irc = IRCFactory(self.world.factory.admission, RELAXED)
        self.bob.command("/c hush")
        op = MemoryClient(irc)
        for line in ("PASS pw", "NICK bob", "USER bob 0 * :bob", "MODE #hush +s"):
            op.write(line)
        self.assertIn("= rooms: #lobby", self.reply(self.alice, "/whois bob"))
        self.assertIn("= rooms: #hush #lobby", self.reply(self.bob, "/whois bob"))

    def test_unknown_and_bad_names_are_refused(self):
        self.assertRefused(self.reply(self.alice, "/whois nobody"), "no-such-user")
        self.assertRefused(self.reply(self.alice, "/whois b@d"), "bad-name")
        self.assertRefused(self.reply(self.alice, "/whois"), "bad-arguments")


class LastSeenTests(DiscoveryTestCase):
    def last_seen(self, name: str):
        chat = self.world.chat
        record = fired(chat.store.find_user(name))
        return fired(chat.store.last_seen(record.id))

    def test_the_schema_has_the_column(self):
        # A migration of its own, whatever its number.
        self.assertTrue(any("last_seen_at" in " ".join(m) for m in MIGRATIONS))
        self.world.pool.runInteraction(
            lambda c: c.execute("SELECT last_seen_at FROM users")
        )

    def test_written_when_the_last_session_ends_not_per_message(self):
        second = self.world.user("bob")
        for n in range(3):
            self.bob.command(f"message {n}")
        self.assertIsNone(self.last_seen("bob"))
        self.bob.disconnect()
        # Still online in another session: not seen "last" yet.
        self.assertIsNone(self.last_seen("bob"))
        self.world.clock.advance(5)
        second.disconnect()
        self.assertEqual(self.last_seen("bob"), int(self.world.clock.seconds() * 1000))

    def test_kept_across_a_restart(self):
        location = sqlite_file(self)
        world = ChatWorld(location=location)
        world.clock.advance(2000)
        world.user("dave").disconnect()
        again = ChatWorld(location=location)
        alice = again.user("alice")
        alice.write("/whois dave")
        self.assertIn(
            f"= dave is offline, last seen {timestamp(2_000_000)}", alice.take()
        )


class AwayTests(DiscoveryTestCase):
    def test_away_replies_and_refuses_what_no_message_may_hold(self):
        self.assertEqual(self.alice.command("/away lunch"), "+OK you are away")
        self.assertRefused(self.reply(self.alice, "/away \x1b[2J"), "bad-text")
        self.assertRefused(
            self.reply(self.alice, "/away " + "x" * 201), "text-too-long"
        )
        self.assertIn("= away: lunch", self.reply(self.bob, "/whois alice"))

    def test_away_on_the_line_protocol_is_irc_away(self):
        irc = IRCFactory(self.world.factory.admission, RELAXED, guests=True)
        watcher = MemoryClient(irc)
        for line in ("CAP REQ away-notify", "NICK eve", "USER e 0 * :e", "CAP END"):
            watcher.write(line)
        watcher.write("JOIN #lobby")
        watcher.take()
        self.alice.command("/away lunch")
        self.assertIn(
            ("AWAY", ["lunch"]),
            [(command_of(x), params(x)) for x in watcher.take()],
        )
        watcher.write("WHOIS alice")
        away = [params(x) for x in watcher.take() if command_of(x) == "301"]
        self.assertEqual(away, [["eve", "alice", "lunch"]])


class ActionTests(DiscoveryTestCase):
    def test_an_action_reaches_the_room_as_one(self):
        self.assertEqual(self.alice.command("/me waves"), "+OK")
        self.assertEqual(self.bob.take(), ["[lobby] * alice waves"])

    def test_an_empty_action_is_refused(self):
        self.assertRefused(self.reply(self.alice, "/me"), "bad-arguments")
        self.assertRefused(self.reply(self.alice, "/me \x07"), "bad-text")
        self.assertEqual(self.bob.take(), [])

    def test_history_keeps_the_text_of_an_action(self):
        # The kind is not stored yet: history shows it as a message.
        self.alice.command("/me waves")
        self.bob.take()
        self.assertRegex(
            self.reply(self.bob, "/history lobby")[0],
            rf"= {STAMP} \[lobby\] alice: waves",
        )


class TimestampTests(DiscoveryTestCase):
    def test_on_live_messages_once_asked_for(self):
        self.assertEqual(
            self.reply(self.bob, "/set"), ["= timestamps off", "+OK 1 setting"]
        )
        self.assertEqual(self.bob.command("/set timestamps on"), "+OK timestamps on")
        now = int(self.world.clock.seconds() * 1000)
        self.alice.command("hi")
        self.alice.command("/me waves")
        self.alice.command("/msg bob psst")
        stamp = timestamp(now)
        self.assertEqual(
            self.bob.take(),
            [
                f"{stamp} [lobby] alice: hi",
                f"{stamp} [lobby] * alice waves",
                f"{stamp} [private] alice: psst",
            ],
        )
        # Only for who asked.
        self.world.user("carol")
        self.assertEqual(self.bob.command("/set timestamps off"), "+OK timestamps off")
        self.alice.command("again")
        self.assertEqual(self.bob.take(), ["[lobby] alice: again"])

    def test_bad_settings_are_refused(self):
        for line in ("/set timestamps", "/set timestamps maybe", "/set colour on"):
            self.assertRefused(self.reply(self.bob, line), "bad-arguments")


class IRCActionTests(DiscoveryTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.irc = IRCFactory(self.world.factory.admission, RELAXED, guests=True)
        self.eve = MemoryClient(self.irc)
        for line in ("NICK eve", "USER e 0 * :e", "JOIN #lobby"):
            self.eve.write(line)
        self.eve.take()
        self.bob.take()

    def test_a_ctcp_action_from_irc_is_an_action_on_the_line_protocol(self):
        self.eve.write("PRIVMSG #lobby :\x01ACTION waves\x01")
        self.assertEqual(self.bob.take(), ["[lobby] * eve waves"])
        # The closing \x01 is optional.
        self.eve.write("PRIVMSG bob :\x01ACTION nods")
        self.assertEqual(self.bob.take(), ["[private] * eve nods"])

    def test_a_line_action_reaches_irc_as_ctcp_action(self):
        self.alice.command("/me waves")
        self.assertEqual(
            [params(x) for x in self.eve.take() if command_of(x) == "PRIVMSG"],
            [["#lobby", "\x01ACTION waves\x01"]],
        )

    def test_a_private_action_reaches_irc_as_ctcp_action(self):
        self.assertEqual(self.alice.command("/describe eve nods"), "+OK")
        self.assertEqual(
            [params(x) for x in self.eve.take() if command_of(x) == "PRIVMSG"],
            [["eve", "\x01ACTION nods\x01"]],
        )
        self.alice.command("/describe <bob> nods too")
        self.assertEqual(self.bob.take(), ["[private] * alice nods too"])

    def test_a_long_action_is_split_into_actions_that_fit(self):
        self.alice.command("/me " + "word " * 200)
        lines = [x for x in self.eve.take() if command_of(x) == "PRIVMSG"]
        self.assertGreater(len(lines), 1)
        for line in lines:
            self.assertLessEqual(len(line.encode()) + 2, 512)
            text = params(line)[1]
            self.assertTrue(text.startswith("\x01ACTION "), text)
            self.assertTrue(text.endswith("\x01"), text)

    def test_other_ctcp_is_not_taken_for_an_action(self):
        self.eve.write("PRIVMSG #lobby :\x01ACTIONS x\x01")
        self.assertEqual(self.bob.take(), [])


class PostgresLastSeenTests(PostgresTestCase):
    @defer.inlineCallbacks
    def test_last_seen_is_stored_and_read(self):
        user = yield self.store.create_user("Ann", "ann", "hash", 1)
        self.assertIsNone((yield self.store.last_seen(user.id)))
        yield self.store.set_last_seen(user.id, 1_796_281_445_000)
        self.assertEqual((yield self.store.last_seen(user.id)), 1_796_281_445_000)


class HelpTests(DiscoveryTestCase):
    def test_help_lists_the_new_commands_from_the_table(self):
        usages = [
            line.split("  ")[0] for line in data_of(self.reply(self.bob, "/help"))
        ]
        for usage in ("/rooms [all]", "/whois NAME", "/away [TEXT]", "/me ACTION"):
            self.assertIn(usage, usages)
        self.assertIn("/set [NAME on|off]", usages)
