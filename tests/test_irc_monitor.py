"""IRCv3 MONITOR: nicks watched coming online and going offline."""

from __future__ import annotations

from twisted.trial import unittest

from chatroom.protocol.irc.commands.monitor import TARGETS_BYTES, _chunks
from chatroom.service.watch import WatchRegistry
from tests.test_irc import IRCTestCase, command_of, params


class MonitorTests(IRCTestCase):
    def test_isupport_says_the_limit(self):
        client = self.register("alice")
        tokens = " ".join(
            " ".join(params(line)[1:-1])
            for line in client.take()
            if command_of(line) == "005"
        ).split()
        self.assertIn("MONITOR=100", tokens)

    def test_offline_then_online_then_offline(self):
        alice = self.welcomed("alice")
        alice.write("MONITOR + bob")
        self.assertEqual([params(line) for line in alice.take()], [["alice", "bob"]])
        bob = self.welcomed("bob")
        (line,) = alice.take()
        self.assertEqual(command_of(line), "730")
        self.assertEqual(params(line), ["alice", "bob!bob@chatroom.irc"])
        bob.write("QUIT :bye")
        (line,) = alice.take()
        self.assertEqual((command_of(line), params(line)), ("731", ["alice", "bob"]))

    def test_adding_says_who_is_online_and_who_is_not(self):
        self.welcomed("bob")
        alice = self.welcomed("alice")
        alice.write("MONITOR + bob,carol")
        lines = alice.take()
        self.assertEqual(self.commands(lines), ["730", "731"])
        self.assertEqual(params(lines[0])[1], "bob!bob@chatroom.irc")
        self.assertEqual(params(lines[1])[1], "carol")

    def test_a_mask_is_no_nick_and_is_not_watched(self):
        alice = self.welcomed("alice")
        alice.write("MONITOR + *!bob@host")
        self.assertEqual(self.commands(alice.take()), ["432"])
        alice.write("MONITOR L")
        self.assertEqual(self.commands(alice.take()), ["733"])

    def test_adding_or_removing_needs_nicks(self):
        alice = self.welcomed("alice")
        alice.write("MONITOR +")
        alice.write("MONITOR - :")
        self.assertEqual(self.commands(alice.take()), ["461", "461"])

    def test_removed_and_cleared_names_are_not_told(self):
        alice = self.welcomed("alice")
        alice.write("MONITOR + bob,carol")
        alice.write("MONITOR - bob")
        alice.take()
        self.welcomed("bob")
        self.assertEqual(alice.take(), [])
        alice.write("MONITOR C")
        self.assertEqual(alice.take(), [])
        self.welcomed("carol")
        self.assertEqual(alice.take(), [])

    def test_list_and_status(self):
        self.welcomed("bob")
        alice = self.welcomed("alice")
        alice.write("MONITOR + Bob,carol,bob")
        alice.take()
        alice.write("MONITOR L")
        lines = alice.take()
        self.assertEqual(self.commands(lines), ["732", "733"])
        self.assertEqual(params(lines[0]), ["alice", "Bob,carol"])
        alice.write("MONITOR S")
        self.assertEqual(self.commands(alice.take()), ["730", "731"])

    def test_renames_go_offline_and_come_online(self):
        alice = self.welcomed("alice")
        alice.write("MONITOR + qux")
        alice.take()
        baz = self.welcomed("baz")
        baz.write("NICK qux")
        (line,) = alice.take()
        self.assertEqual(command_of(line), "730")
        # A change of case is the same nick.
        baz.write("NICK QUX")
        self.assertEqual(alice.take(), [])
        baz.write("NICK other")
        (line,) = alice.take()
        self.assertEqual((command_of(line), params(line)), ("731", ["alice", "QUX"]))

    def test_a_full_list_refuses_the_rest(self):
        self.world.chat.watch.limit = 2
        alice = self.welcomed("alice")
        alice.write("MONITOR + a,b,c,d")
        lines = alice.take()
        self.assertEqual(self.commands(lines), ["734", "731"])
        self.assertEqual(params(lines[0])[1:3], ["2", "c,d"])
        self.assertEqual(params(lines[1])[1], "a,b")

    def test_a_closed_connection_watches_nothing(self):
        alice = self.welcomed("alice")
        alice.write("MONITOR + bob")
        alice.take()
        alice.write("QUIT :bye")
        self.assertEqual(self.world.chat.watch.watchers_of("bob"), frozenset())
        self.welcomed("bob")

    def test_an_account_is_online_from_its_first_session_to_its_last(self):
        alice = self.welcomed("alice")
        alice.write("MONITOR + carol")
        alice.take()
        line_session = self.world.user("carol", "secret")
        self.assertEqual(self.commands(alice.take()), ["730"])
        irc_session = self.register("carol", "PASS secret")
        irc_session.take()
        self.assertEqual(alice.take(), [])
        line_session.disconnect()
        self.assertEqual(alice.take(), [])
        irc_session.write("QUIT :bye")
        self.assertEqual(self.commands(alice.take()), ["731"])


class WatchRegistryTests(unittest.TestCase):
    def test_a_name_already_watched_does_not_count_twice(self):
        watch = WatchRegistry(limit=1)
        mind = object()
        self.assertEqual(watch.add(mind, ["bob"]), (["bob"], []))
        self.assertEqual(watch.add(mind, ["BOB", "carol"]), (["BOB"], ["carol"]))
        self.assertEqual(watch.watched(mind), ["bob"])

    def test_lines_stay_within_their_budget(self):
        names = ["n" * 90] * 20
        chunks = list(_chunks(names))
        self.assertEqual(sum(len(c) for c in chunks), 20)
        self.assertTrue(all(len(",".join(c)) <= TARGETS_BYTES for c in chunks))


class ExtendedMonitorTests(IRCTestCase):
    def watcher(self, *caps: str):
        alice = self.register("alice", "CAP LS 302", f"CAP REQ :{' '.join(caps)}")
        alice.write("CAP END")
        alice.write("MONITOR + bob")
        alice.take()
        return alice

    def test_a_watched_nick_going_away_is_told_with_away_notify(self):
        alice = self.watcher("extended-monitor", "away-notify")
        bob = self.welcomed("bob")
        alice.take()
        bob.write("AWAY :afk")
        (line,) = alice.take()
        self.assertTrue(line.startswith(":bob!bob@chatroom.irc AWAY"), line)
        self.assertEqual(params(line), ["afk"])
        bob.write("AWAY")
        (line,) = alice.take()
        self.assertEqual((command_of(line), params(line)), ("AWAY", []))

    def test_without_away_notify_or_extended_monitor_nothing_is_told(self):
        for caps in (["extended-monitor"], ["away-notify"]):
            alice = self.watcher(*caps)
            bob = self.welcomed("bob")
            alice.take()
            bob.write("AWAY :afk")
            self.assertEqual(alice.take(), [], caps)
            alice.write("QUIT")
            bob.write("QUIT")

    def test_a_shared_channel_tells_it_once(self):
        alice = self.watcher("extended-monitor", "away-notify")
        alice.write("JOIN #den")
        bob = self.welcomed("bob")
        bob.write("JOIN #den")
        alice.take()
        bob.write("AWAY :afk")
        self.assertEqual(self.commands(alice.take()), ["AWAY"])
