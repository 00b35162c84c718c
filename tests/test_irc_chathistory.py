"""
IRCv3 draft/chathistory and draft/read-marker on the IRC front end, through
its front door against the in-memory server: history from the rooms'
stored messages and the private messages storage keeps, read markers per
account.
"""

from __future__ import annotations

from twisted.trial import unittest

from chatroom.protocol.irc import message, wire
from tests.clients import MemoryClient
from tests.test_irc import IRCTestCase, command_of, params

HISTORY_CAPS = "CAP REQ :batch server-time draft/chathistory draft/read-marker"


def tags_of(line: str) -> dict[str, str]:
    return message.parse(line).tags


class MsgidTests(unittest.TestCase):
    def test_room_and_private_msgids_parse_back(self):
        self.assertEqual(wire.msgid_for("Den", 42), "den-42")
        self.assertEqual(wire.parse_msgid("den-42"), ("den", 42))
        # A room's name may hold a dash: the seq is after the last one.
        self.assertEqual(wire.parse_msgid(wire.msgid_for("a-b", 7)), ("a-b", 7))
        self.assertEqual(wire.parse_msgid(wire.msgid_for_private(9)), (None, 9))

    def test_anything_else_is_no_msgid(self):
        for bad in ("", "den", "den-", "-4", "den-x", "px", "den-٣", "p" + "9" * 19):
            self.assertRaises(ValueError, wire.parse_msgid, bad)

    def test_timestamps_parse_to_milliseconds(self):
        at = wire.parse_server_time("2019-01-04T14:33:26.123Z")
        self.assertEqual(wire.server_time(at), "2019-01-04T14:33:26.123Z")
        for bad in ("not-a-timestamp", "*", "2019-13-01T00:00:00Z"):
            self.assertRaises(ValueError, wire.parse_server_time, bad)


class ChathistoryTestCase(IRCTestCase):
    def history_client(self, nick: str, *before: str) -> MemoryClient:
        client = self.welcomed(nick, HISTORY_CAPS, *before, "CAP END")
        # msgid tags come with message-tags (the tags branch offers it):
        # given here so these tests can read the msgids history shows.
        client.protocol.caps = client.protocol.caps | {"message-tags"}
        return client

    def room_with_messages(self, client: MemoryClient, count: int) -> list[str]:
        """#den with C{count} messages 1 s apart; their msgids."""
        client.write("JOIN #den")
        for n in range(count):
            self.world.clock.advance(1)
            client.write(f"PRIVMSG #den :message {n}")
        client.take()
        return [wire.msgid_for("den", seq) for seq in range(1, count + 1)]

    def history(self, client: MemoryClient, line: str) -> list[str]:
        """The texts of the PRIVMSGs a CHATHISTORY line answers, in its batch."""
        client.write(line)
        lines = client.take()
        opened, *inside, closed = lines
        self.assertEqual(command_of(opened), "BATCH", lines)
        ref = params(opened)[0][1:]
        self.assertEqual(params(opened)[1], "chathistory")
        self.assertEqual(params(closed), [f"-{ref}"])
        self.assertTrue(all(tags_of(line)["batch"] == ref for line in inside))
        return [params(line)[1] for line in inside]

    def texts(self, *numbers: int) -> list[str]:
        return [f"message {n}" for n in numbers]


class CapabilityTests(ChathistoryTestCase):
    def test_offered_and_announced_with_the_limit(self):
        client = self.register("alice", "CAP LS 302")
        offered = params(client.take()[0])[-1].split()
        for cap in ("batch", "draft/chathistory", "draft/read-marker"):
            self.assertIn(cap, offered)
        client.write("CAP END")
        tokens = [
            token
            for line in client.take()
            if command_of(line) == "005"
            for token in params(line)[1:-1]
        ]
        self.assertIn("CHATHISTORY=1000", tokens)
        self.assertIn("MSGREFTYPES=msgid,timestamp", tokens)


class RoomHistoryTests(ChathistoryTestCase):
    def test_latest_gives_the_last_messages_with_time_and_msgid(self):
        alice = self.history_client("alice")
        msgids = self.room_with_messages(alice, 5)
        alice.write("CHATHISTORY LATEST #den * 2")
        _, first, second, _ = alice.take()
        self.assertEqual(params(first), ["#den", "message 3"])
        self.assertEqual(tags_of(first)["msgid"], msgids[3])
        self.assertEqual(
            tags_of(second)["time"], wire.server_time(self.world.chat.now())
        )
        self.assertTrue(first.split(" ")[1].startswith(":alice!"))

    def test_latest_after_a_msgid_or_a_timestamp(self):
        alice = self.history_client("alice")
        msgids = self.room_with_messages(alice, 5)
        self.assertEqual(
            self.history(alice, f"CHATHISTORY LATEST #den msgid={msgids[2]} 10"),
            self.texts(3, 4),
        )
        alice.write("CHATHISTORY LATEST #den * 10")
        times = [tags_of(line)["time"] for line in alice.take()[1:-1]]
        self.assertEqual(
            self.history(alice, f"CHATHISTORY LATEST #den timestamp={times[2]} 10"),
            self.texts(3, 4),
        )

    def test_before_and_after_take_the_nearest_messages(self):
        alice = self.history_client("alice")
        msgids = self.room_with_messages(alice, 6)
        self.assertEqual(
            self.history(alice, f"CHATHISTORY BEFORE #den msgid={msgids[4]} 2"),
            self.texts(2, 3),
        )
        self.assertEqual(
            self.history(alice, f"CHATHISTORY AFTER #den msgid={msgids[1]} 2"),
            self.texts(2, 3),
        )

    def test_between_forwards_and_backwards(self):
        alice = self.history_client("alice")
        msgids = self.room_with_messages(alice, 6)
        first, last = msgids[0], msgids[-1]
        self.assertEqual(
            self.history(
                alice, f"CHATHISTORY BETWEEN #den msgid={first} msgid={last} 2"
            ),
            self.texts(1, 2),
        )
        self.assertEqual(
            self.history(
                alice, f"CHATHISTORY BETWEEN #den msgid={last} msgid={first} 2"
            ),
            self.texts(3, 4),
        )
        self.assertEqual(
            self.history(
                alice, f"CHATHISTORY BETWEEN #den msgid={first} msgid={last} 100"
            ),
            self.texts(1, 2, 3, 4),
        )

    def test_around_centres_on_the_message(self):
        alice = self.history_client("alice")
        msgids = self.room_with_messages(alice, 6)
        self.assertEqual(
            self.history(alice, f"CHATHISTORY AROUND #den msgid={msgids[3]} 1"),
            self.texts(3),
        )
        self.assertEqual(
            self.history(alice, f"CHATHISTORY AROUND #den msgid={msgids[3]} 3"),
            self.texts(2, 3, 4),
        )

    def test_history_is_the_line_protocols_history(self):
        alice = self.history_client("alice")
        alice.write("JOIN #lobby")
        line_user = self.world.user("lena")
        line_user.command("/public lobby hello from the line port")
        alice.take()
        self.assertEqual(
            self.history(alice, "CHATHISTORY LATEST #lobby * 5"),
            ["hello from the line port"],
        )

    def test_without_batch_the_lines_come_unframed(self):
        alice = self.welcomed("alice", "CAP REQ draft/chathistory", "CAP END")
        alice.write("JOIN #den")
        alice.write("PRIVMSG #den :one")
        alice.take()
        alice.write("CHATHISTORY LATEST #den * 5")
        (line,) = alice.take()
        self.assertEqual(params(line), ["#den", "one"])
        self.assertFalse(line.startswith("@"))


class RefusalTests(ChathistoryTestCase):
    def fail_of(self, client: MemoryClient, line: str) -> list[str]:
        client.write(line)
        (reply,) = client.take()
        self.assertEqual(command_of(reply), "FAIL", reply)
        return params(reply)

    def test_a_room_one_is_not_in_or_that_does_not_exist(self):
        bob = self.history_client("bob")
        bob.write("JOIN #secret")
        bob.write("PRIVMSG #secret :hush")
        alice = self.history_client("alice")
        for target in ("#secret", "#nowhere", "nobody"):
            self.assertEqual(
                self.fail_of(alice, f"CHATHISTORY LATEST {target} * 10")[:4],
                ["CHATHISTORY", "INVALID_TARGET", "LATEST", target],
            )

    def test_bad_selectors_limits_and_subcommands(self):
        alice = self.history_client("alice")
        self.room_with_messages(alice, 1)
        for line in (
            "CHATHISTORY LATEST #den * many",
            "CHATHISTORY LATEST #den * 0",
            "CHATHISTORY BEFORE #den * 10",
            "CHATHISTORY BEFORE #den msgid=nonsense 10",
            "CHATHISTORY BEFORE #den msgid=other-3 10",
            "CHATHISTORY BEFORE #den msgid=den-99999999999999999999 10",
            "CHATHISTORY AFTER #den timestamp=yesterday 10",
            "CHATHISTORY TARGETS * * 10",
        ):
            self.assertEqual(
                self.fail_of(alice, line)[:2], ["CHATHISTORY", "INVALID_PARAMS"]
            )
        self.assertEqual(
            self.fail_of(alice, "CHATHISTORY SIDEWAYS #den * 1")[:3],
            ["CHATHISTORY", "UNKNOWN_COMMAND", "SIDEWAYS"],
        )
        self.assertEqual(
            self.fail_of(alice, "CHATHISTORY BETWEEN #den * 1")[:3],
            ["CHATHISTORY", "NEED_MORE_PARAMS", "BETWEEN"],
        )


class PrivateHistoryTests(ChathistoryTestCase):
    def account_client(self, nick: str) -> MemoryClient:
        self.world.user(nick, "secret").disconnect()
        return self.history_client(nick, "PASS secret")

    def test_a_conversation_both_ways_and_no_other(self):
        ann, bob = self.account_client("ann"), self.account_client("bob")
        self.world.user("cat", "secret").command("/msg ann not this one")
        for sender, recipient, text in (
            (ann, "bob", "hi bob"),
            (bob, "ann", "hi ann"),
            (ann, "bob", "bye"),
        ):
            self.world.clock.advance(1)
            sender.write(f"PRIVMSG {recipient} :{text}")
        ann.take()
        ann.write("CHATHISTORY LATEST bob * 10")
        lines = ann.take()[1:-1]
        self.assertEqual(
            [params(line) for line in lines],
            [["bob", "hi bob"], ["ann", "hi ann"], ["bob", "bye"]],
        )
        self.assertTrue(lines[1].split(" ")[1].startswith(":bob!"))
        first = tags_of(lines[0])["msgid"]
        bob.take()
        self.assertEqual(
            self.history(bob, f"CHATHISTORY AFTER ANN msgid={first} 10"),
            ["hi ann", "bye"],
        )

    def test_a_guest_has_no_private_history(self):
        ann = self.account_client("ann")
        guest = self.history_client("gus")
        guest.write("PRIVMSG ann :not kept")
        ann.take()
        self.assertEqual(self.history(ann, "CHATHISTORY LATEST gus * 10"), [])
        self.assertEqual(self.history(guest, "CHATHISTORY LATEST ann * 10"), [])

    def test_targets_lists_rooms_and_people_by_their_last_message(self):
        ann, bob = self.account_client("ann"), self.account_client("bob")
        ann.write("JOIN #den")
        ann.write("PART #lobby")
        self.world.clock.advance(1)
        ann.write("PRIVMSG #den :first")
        self.world.clock.advance(1)
        ann.write("PRIVMSG bob :then")
        ann.take()
        den_at = wire.server_time(self.world.chat.now() - 1000)
        bob_at = wire.server_time(self.world.chat.now())
        ann.write(
            "CHATHISTORY TARGETS timestamp=1970-01-01T00:00:00.000Z"
            " timestamp=2200-01-01T00:00:00.000Z 10"
        )
        opened, *inside, _ = ann.take()
        self.assertEqual(params(opened)[1], "draft/chathistory-targets")
        self.assertEqual(
            [params(line) for line in inside],
            [["TARGETS", "#den", den_at], ["TARGETS", "bob", bob_at]],
        )
        # The window's edges are exclusive, and either may come first.
        ann.write(f"CHATHISTORY TARGETS timestamp={bob_at} timestamp={den_at} 10")
        self.assertEqual(len(ann.take()), 2)
        del bob


class ReadMarkerTests(ChathistoryTestCase):
    def markread(self, client: MemoryClient, line: str) -> list[str]:
        client.write(line)
        (reply,) = client.take()
        return [command_of(reply), *params(reply)]

    def test_set_get_and_never_back(self):
        alice = self.history_client("alice")
        alice.write("JOIN #den")
        alice.take()
        self.assertEqual(
            self.markread(alice, "MARKREAD #den"), ["MARKREAD", "#den", "*"]
        )
        newer, older = "2019-06-01T12:00:00.000Z", "2019-01-01T00:00:00.000Z"
        for line in (
            f"MARKREAD #den timestamp={newer}",
            f"MARKREAD #den timestamp={older}",
            "MARKREAD #DEN",
        ):
            self.assertEqual(self.markread(alice, line)[2], f"timestamp={newer}", line)

    def test_bad_input_is_refused(self):
        alice = self.history_client("alice")
        self.assertEqual(
            self.markread(alice, "MARKREAD")[1:3], ["MARKREAD", "NEED_MORE_PARAMS"]
        )
        for line in (
            "MARKREAD #den *",
            "MARKREAD #den timestamp=soon",
            "MARKREAD #a!b timestamp=2019-01-01T00:00:00.000Z",
        ):
            self.assertEqual(
                self.markread(alice, line)[1:3], ["MARKREAD", "INVALID_PARAMS"], line
            )

    def test_join_shows_the_marker_before_the_names_end(self):
        alice = self.history_client("alice")
        alice.write("JOIN #den")
        lines = alice.take()
        commands = [command_of(line) for line in lines]
        self.assertLess(commands.index("MARKREAD"), commands.index("366"))
        self.assertEqual(params(lines[commands.index("MARKREAD")]), ["#den", "*"])

    def test_only_what_exists_is_marked(self):
        alice = self.history_client("alice")
        for target in ("#nowhere", "nobody"):
            reply = self.markread(
                alice, f"MARKREAD {target} timestamp=2019-06-01T12:00:00.000Z"
            )
            self.assertEqual(reply[:4], ["FAIL", "MARKREAD", "INVALID_PARAMS", target])

    def test_an_accounts_clients_agree_and_are_told(self):
        self.world.user("bob").disconnect()
        self.world.user("ann", "secret").disconnect()
        first = self.history_client("ann", "PASS secret")
        second = self.history_client("ann", "PASS secret")
        stamp = "timestamp=2022-11-11T11:11:11.111Z"
        first.write(f"MARKREAD bob {stamp}")
        first.take()
        self.assertEqual([params(line) for line in second.take()], [["bob", stamp]])
        second.disconnect()
        first.disconnect()
        # Stored: a later client of the account reads it back.
        third = self.history_client("ann", "PASS secret")
        self.assertEqual(self.markread(third, "MARKREAD bob")[2], stamp)

    def test_a_clients_own_channels_get_their_markers_at_welcome(self):
        self.world.user("ann", "secret").disconnect()
        first = self.history_client("ann", "PASS secret")
        first.write("MARKREAD #lobby timestamp=2020-03-15T10:00:00.000Z")
        first.take()
        second = self.register("ann", "PASS secret", HISTORY_CAPS, "CAP END")
        markers = [
            params(line) for line in second.take() if command_of(line) == "MARKREAD"
        ]
        self.assertEqual(markers, [["#lobby", "timestamp=2020-03-15T10:00:00.000Z"]])
