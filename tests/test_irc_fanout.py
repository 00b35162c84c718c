"""
A room message reaches many IRC members in one call per kind of client
(RoomFan): each member still gets the encoding of its own caps, and the
messages of one turn are shared by the outputs of members with the same caps.
"""

from __future__ import annotations

from chatroom.protocol.output import SharedRun
from tests.helpers import capture_log
from tests.test_irc import IRCTestCase


class FanOutTests(IRCTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.welcomed("alice")
        self.timed = [
            self.welcomed(f"t{i}", "CAP REQ server-time", "CAP END") for i in range(2)
        ]
        self.plain = [self.welcomed(f"p{i}") for i in range(2)]
        everyone = (self.alice, *self.timed, *self.plain)
        for client in everyone:
            client.write("JOIN #den")
        for client in everyone:
            client.take()

    def test_each_member_gets_the_encoding_of_its_caps(self):
        # Two messages in one read: the second is appended to output the
        # first began in the same turn, the fan-out's short path.
        self.alice.write_bytes(b"PRIVMSG #den :one\r\nPRIVMSG #den :two\r\n")
        for client in self.timed:
            lines = client.take()
            self.assertEqual(len(lines), 2, lines)
            for line, text in zip(lines, ("one", "two"), strict=True):
                self.assertTrue(line.startswith("@time="), line)
                self.assertTrue(line.endswith(f"PRIVMSG #den {text}"), line)
        for client in self.plain:
            self.assertEqual(
                client.take(),
                [f":alice!alice@chatroom.irc PRIVMSG #den {t}" for t in ("one", "two")],
            )
        # The sender is not a recipient (no echo-message here).
        self.assertEqual(self.alice.take(), [])

    def test_a_member_whose_delivery_fails_costs_the_others_nothing(self):
        log = capture_log(self)
        broken = self.plain[0].protocol

        def refuse(*args, **kwargs):
            raise ConnectionError("broken")

        # Whether it shares the turn's output or takes the message itself.
        broken.join_run = broken.room_message = refuse
        self.alice.write("PRIVMSG #den :one")
        for client in (*self.timed, self.plain[1]):
            self.assertEqual(len(client.take()), 1)
        [failure] = [e for e in log if "log_failure" in e]
        self.assertIs(failure["client"], broken)
        self.flushLoggedErrors(ConnectionError)


class SharedRunTests(IRCTestCase):
    """
    A turn's messages of one room are one append for all members with the
    same caps (SharedRun), and still arrive in the order the server made
    them, whatever else each member is written meanwhile.  A turn here is
    lines handed to the server without flushing, then one flush.
    """

    def setUp(self):
        super().setUp()
        self.ann, self.bob, self.cy, self.di = (
            self.welcomed(name) for name in ("ann", "bob", "cy", "di")
        )
        for client in (self.ann, self.bob, self.cy, self.di):
            client.write("JOIN #den")
        for client in (self.ann, self.bob, self.cy, self.di):
            client.take()

    def hand(self, client, *lines: str) -> None:
        """Lines read by the server in this turn; nothing is flushed."""
        client.protocol.dataReceived("".join(f"{x}\r\n" for x in lines).encode())

    def texts(self, client) -> list[str]:
        return [line.rpartition(" ")[2] for line in client.take()]

    def test_members_with_the_same_caps_share_one_run_for_the_turn(self):
        self.hand(self.ann, "PRIVMSG #den :one", "PRIVMSG #den :two")
        runs = [c.protocol._pending[-1] for c in (self.bob, self.cy, self.di)]
        self.assertIsInstance(runs[0], SharedRun)
        self.assertTrue(all(run is runs[0] for run in runs))
        self.assertEqual(len(runs[0].parts), 2)
        for client in (self.bob, self.cy, self.di):
            self.assertEqual(self.texts(client), ["one", "two"])

    def test_a_private_message_between_two_room_messages_arrives_between(self):
        self.hand(self.ann, "PRIVMSG #den :one", "PRIVMSG bob :aside")
        self.hand(self.ann, "PRIVMSG #den :two")
        self.assertEqual(self.texts(self.bob), ["one", "aside", "two"])
        self.assertEqual(self.texts(self.cy), ["one", "two"])

    def test_the_sender_never_gets_its_own_but_gets_the_others(self):
        self.hand(self.ann, "PRIVMSG #den :one")
        self.hand(self.bob, "PRIVMSG #den :two")
        self.hand(self.ann, "PRIVMSG #den :three")
        self.hand(self.cy, "PRIVMSG #den :four")
        self.assertEqual(self.texts(self.ann), ["two", "four"])
        self.assertEqual(self.texts(self.bob), ["one", "three", "four"])
        self.assertEqual(self.texts(self.cy), ["one", "two", "three"])
        self.assertEqual(self.texts(self.di), ["one", "two", "three", "four"])

    def test_two_rooms_in_one_turn_keep_their_order_for_a_member_of_both(self):
        for client in (self.bob, self.cy):
            client.write("JOIN #lab")
        self.bob.take()
        self.cy.take()
        self.hand(self.ann, "PRIVMSG #den :d1")
        self.hand(self.cy, "PRIVMSG #lab :l1")
        self.hand(self.ann, "PRIVMSG #den :d2")
        self.hand(self.cy, "PRIVMSG #lab :l2")
        self.hand(self.ann, "PRIVMSG #den :d3")
        self.assertEqual(self.texts(self.bob), ["d1", "l1", "d2", "l2", "d3"])
        self.assertEqual(self.texts(self.di), ["d1", "d2", "d3"])

    def test_a_member_flushed_during_the_turn_still_gets_the_rest(self):
        self.hand(self.ann, "PRIVMSG #den :one")
        self.bob.protocol.flush()
        self.hand(self.ann, "PRIVMSG #den :two")
        self.assertEqual(self.texts(self.bob), ["one", "two"])
        self.assertEqual(self.texts(self.cy), ["one", "two"])

    def test_a_member_joining_during_the_turn_gets_what_follows_its_join(self):
        eve = self.welcomed("eve")
        self.hand(self.ann, "PRIVMSG #den :one")
        self.hand(eve, "JOIN #den")
        self.hand(self.ann, "PRIVMSG #den :two")
        lines = eve.take()
        self.assertEqual(lines[-1], ":ann!ann@chatroom.irc PRIVMSG #den two")
        self.assertNotIn("one", [line.rpartition(" ")[2] for line in lines])
        # cy sees eve's JOIN between the two.
        self.assertEqual(self.texts(self.cy)[-3:], ["one", "#den", "two"])

    def test_a_member_whose_output_is_backed_up_counts_each_message(self):
        bob = self.bob.protocol
        output = bob._output  # made at once: StringTransport does not say
        output.pauseProducing()
        queued = output.queued
        self.hand(self.ann, "PRIVMSG #den :one", "PRIVMSG #den :two")
        self.assertNotIsInstance(bob._pending[-1], SharedRun)
        self.assertEqual(
            output.queued - queued, len(b"".join(bob._pending)), bob._pending
        )
        self.assertEqual(self.texts(self.cy), ["one", "two"])

    def test_a_member_dropped_during_the_turn_costs_the_others_nothing(self):
        self.hand(self.ann, "PRIVMSG #den :one")
        self.bob.protocol.drop_output()
        self.hand(self.ann, "PRIVMSG #den :two")
        self.assertEqual(self.texts(self.cy), ["one", "two"])
        self.assertEqual(self.texts(self.bob), [])

    def test_the_run_keeps_its_encoding_when_its_encoder_changes_caps(self):
        self.hand(self.ann, "PRIVMSG #den :one")
        [(_, _, encoder)] = self.bob.protocol._run.fan._runs.values()
        changed = next(c for c in (self.bob, self.cy, self.di) if c.protocol is encoder)
        self.hand(changed, "CAP REQ :server-time")
        self.hand(self.ann, "PRIVMSG #den :two")
        for client in (self.bob, self.cy, self.di):
            lines = [line for line in client.take() if "PRIVMSG" in line]
            timed = client is changed
            self.assertEqual(
                [line.startswith("@time=") for line in lines],
                [False, timed],
                lines,
            )

    def test_a_cut_member_joins_no_run(self):
        self.bob.protocol.drop_output()
        self.hand(self.ann, "PRIVMSG #den :one")
        self.assertIsNone(self.bob.protocol._run)
        fan = self.cy.protocol._run.fan
        for client in (self.cy, self.di):
            client.take()
        # Nobody's left holding the run: the next turn starts anew.
        self.assertEqual(fan._attached, 0)
        self.hand(self.ann, "PRIVMSG #den :two")
        self.assertIsNot(self.cy.protocol._run, None)
        self.assertEqual(self.texts(self.cy), ["two"])

    def test_a_member_backed_up_while_in_a_run_counts_what_follows(self):
        self.hand(self.ann, "PRIVMSG #den :one")
        output = self.bob.protocol._output
        output.pauseProducing()
        self.assertIsNone(self.bob.protocol._run)
        queued = output.queued
        self.hand(self.ann, "PRIVMSG #den :two")
        self.assertEqual(
            output.queued - queued,
            len(b":ann!ann@chatroom.irc PRIVMSG #den two\r\n"),
        )
        self.assertEqual(self.texts(self.bob), ["one", "two"])
