"""
IRC messages of one connection overlap while they wait on storage, so a
fast sender is not held to one commit per line; every reply still comes
back in the order of the lines.
"""

from __future__ import annotations

from twisted.internet import defer

from chatroom.protocol.irc import commands, pipeline
from chatroom.protocol.irc.pipeline import MAX_PIPELINE, RESUME_AT
from tests.clients import MemoryClient
from tests.helpers import HeldReads, HeldWrites
from tests.test_irc import IRCTestCase, command_of


class PipelineTests(IRCTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.welcomed("alice", "CAP REQ echo-message", "CAP END")
        self.bob = self.welcomed("bob")
        for client in (self.alice, self.bob):
            client.write("JOIN #den")
        self.alice.take(), self.bob.take()
        self.writes = HeldWrites(self.world)
        self.addCleanup(self.writes.commit_all)

    def test_messages_fan_out_before_the_first_is_stored(self):
        self.alice.write_bytes(b"".join(b"PRIVMSG #den :m%d\r\n" % i for i in range(3)))
        self.assertEqual(
            self.bob.take(),
            [f":alice!alice@chatroom.irc PRIVMSG #den m{i}" for i in range(3)],
        )
        self.assertEqual(self.alice.transport.producerState, "producing")
        # Echoes are replies: only once stored.
        self.assertEqual(self.alice.take(), [])
        self.writes.commit_all()
        self.assertEqual(
            self.alice.take(),
            [f":alice!alice@chatroom.irc PRIVMSG #den m{i}" for i in range(3)],
        )

    def test_a_channel_message_takes_the_short_path_and_keeps_its_turn(self):
        # Callbacks, not dispatch's coroutine; the echo and the refusal that
        # its callbacks write are still this command's, in the lines' order.
        dispatched = []
        real = commands.dispatch

        def dispatch(conn, msg):
            dispatched.append(msg.command)
            return real(conn, msg)

        self.patch(commands, "dispatch", dispatch)
        self.alice.write_bytes(
            b"PRIVMSG #den :one\r\nPRIVMSG #nowhere :two\r\nPING token\r\n"
        )
        self.assertEqual(self.alice.take(), [])
        self.writes.commit_all()
        self.assertEqual(
            [command_of(line) for line in self.alice.take()],
            ["PRIVMSG", "403", "PONG"],
        )
        self.assertEqual(dispatched, ["PING"])

    def test_a_channel_message_whose_commit_fails_is_answered_in_its_turn(self):
        self.alice.write_bytes(b"PRIVMSG #den :lost\r\nPING token\r\n")
        self.writes.fail(RuntimeError("disk full"))
        lines = self.alice.take()
        self.assertEqual([command_of(line) for line in lines], ["FAIL", "PONG"])
        self.assertIn("SERVER_ERROR", lines[0])
        self.flushLoggedErrors(RuntimeError)

    def test_a_reply_behind_a_running_message_waits_its_turn(self):
        self.alice.write_bytes(
            b"PRIVMSG #den :stored\r\nPRIVMSG #nowhere :refused\r\nPING token\r\n"
        )
        # The refusal is known at once, and PING needs nothing: both wait.
        self.assertEqual(self.alice.take(), [])
        self.writes.commit_all()
        lines = self.alice.take()
        self.assertEqual(
            [command_of(line) for line in lines], ["PRIVMSG", "403", "PONG"]
        )

    def test_a_refused_line_is_answered_after_the_messages_before_it(self):
        self.alice.write_bytes(
            b"PRIVMSG #den :stored\r\nPRIVMSG #den :"
            + b"x" * 600
            + b"\r\nPRIVMSG #den :\xff\r\nPING token\r\n"
        )
        self.assertEqual(self.alice.take(), [])
        self.writes.commit_all()
        self.assertEqual(
            [command_of(line) for line in self.alice.take()],
            ["PRIVMSG", "417", "FAIL", "PONG"],
        )

    def test_a_command_waits_for_the_messages_before_it(self):
        self.alice.write_bytes(
            b"PRIVMSG #den :first\r\nPART #den\r\nPRIVMSG #den :x\r\n"
        )
        self.assertEqual(self.alice.transport.producerState, "paused")
        # The PART has not run: alice is still in the room.
        self.assertIn("alice", self.world.chat.rooms.by_key["den"].members.values())
        self.assertEqual(
            self.bob.take(), [":alice!alice@chatroom.irc PRIVMSG #den first"]
        )
        self.writes.commit_all()
        self.assertEqual(
            [command_of(line) for line in self.alice.take()], ["PRIVMSG", "PART", "404"]
        )
        self.assertEqual(self.alice.transport.producerState, "producing")

    def test_reading_stops_when_too_many_messages_wait(self):
        count = MAX_PIPELINE + 5
        self.alice.write_bytes(
            b"".join(b"PRIVMSG #den :m%d\r\n" % i for i in range(count))
        )
        self.assertEqual(len(self.bob.take()), MAX_PIPELINE)
        self.assertEqual(self.alice.transport.producerState, "paused")
        self.writes.commit_all()
        self.assertEqual(len(self.bob.take()), count - MAX_PIPELINE)
        self.assertEqual(len(self.alice.take()), count)
        self.assertEqual(self.alice.transport.producerState, "producing")
        self.assertEqual(self.irc.in_flight.count, 0)

    def test_once_full_reading_resumes_only_when_half_are_done(self):
        stored = []

        def hold(*args):
            d = defer.Deferred()
            stored.append(d)
            return d

        self.patch(self.world.chat.store, "store_room_message", hold)
        count = MAX_PIPELINE * 2
        self.alice.write_bytes(
            b"".join(b"PRIVMSG #den :m%d\r\n" % i for i in range(count))
        )
        self.assertEqual(len(stored), MAX_PIPELINE)
        # The waiting message starts as each finishes; what is behind it
        # stays in the socket until only RESUME_AT are running.
        for d in stored[: MAX_PIPELINE - RESUME_AT]:
            d.callback(None)
            self.assertEqual(self.alice.transport.producerState, "paused")
        self.assertEqual(len(stored), MAX_PIPELINE + 1)
        stored[MAX_PIPELINE - RESUME_AT].callback(None)
        # Read again: it fills up to the limit, and stops.
        self.assertEqual(len(stored), MAX_PIPELINE + 1 + MAX_PIPELINE - RESUME_AT)
        self.assertEqual(self.alice.transport.producerState, "paused")
        for d in stored:
            if not d.called:
                d.callback(None)
        while len(stored) < count:
            for d in stored:
                if not d.called:
                    d.callback(None)
        self.assertEqual(len(self.bob.take()), count)
        self.assertEqual(self.alice.transport.producerState, "producing")

    def test_reading_stops_when_too_many_lines_wait_on_all_connections(self):
        self.irc.in_flight.limit = 2
        self.alice.write_bytes(b"PRIVMSG #den :a1\r\nPRIVMSG #den :a2\r\n")
        self.bob.write_bytes(b"PRIVMSG #den :b1\r\nPRIVMSG #den :b2\r\n")
        # Bob's first line starts anyway: one line each is never held back.
        self.assertEqual(self.bob.transport.producerState, "paused")
        self.assertEqual(
            self.alice.take(),
            [":bob!bob@chatroom.irc PRIVMSG #den b1"],
        )
        self.writes.commit_all()
        self.assertEqual(
            self.alice.take(),
            [
                ":alice!alice@chatroom.irc PRIVMSG #den a1",
                ":alice!alice@chatroom.irc PRIVMSG #den a2",
                ":bob!bob@chatroom.irc PRIVMSG #den b2",
            ],
        )
        self.assertEqual(self.bob.transport.producerState, "producing")
        self.assertEqual(self.irc.in_flight.count, 0)

    def test_an_idle_connection_keeps_no_pipeline(self):
        self.alice.write("PRIVMSG #den :one")
        self.assertIsNotNone(self.alice.protocol._pipe)
        self.writes.commit_all()
        self.assertIsNone(self.alice.protocol._pipe)

    def test_a_command_started_after_the_messages_holds_the_lines_behind_it(self):
        reads = HeldReads(self.world)
        self.alice.write_bytes(
            b"PRIVMSG #den :first\r\nCHATHISTORY LATEST #den * 5\r\nPING token\r\n"
        )
        self.writes.commit_all()
        # The history now waits on its read: PING behind it, unanswered.
        self.assertEqual([command_of(line) for line in self.alice.take()], ["PRIVMSG"])
        self.assertEqual(self.alice.transport.producerState, "paused")
        reads.commit_all()
        self.assertEqual(
            [command_of(line) for line in self.alice.take()][-1:], ["PONG"]
        )
        self.assertEqual(self.alice.transport.producerState, "producing")

    def test_a_failure_is_answered_only_to_its_own_connection(self):
        # A command started inside another connection's command context.
        elsewhere = pipeline.Running(self.bob.protocol, behind=True)
        token = pipeline.current.set(elsewhere)

        def broken(*args, **kwargs):
            raise RuntimeError("broken")

        self.patch(type(self.alice.protocol.avatar), "say", broken)
        try:
            self.alice.write("PRIVMSG #den :a")
        finally:
            pipeline.current.reset(token)
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(elsewhere.held, [])
        self.assertEqual([command_of(line) for line in self.alice.take()], ["FAIL"])


class ClosingTests(IRCTestCase):
    def setUp(self):
        super().setUp()
        # As on a network: a close is a lost connection only once it is sent.
        self.alice = MemoryClient(self.irc, "10.0.0.2", buffer_size=10**7)
        self.alice.write("NICK alice")
        self.alice.write("USER alice 0 * :alice")
        self.bob = self.welcomed("bob")
        for client in (self.alice, self.bob):
            client.write("JOIN #den")
        self.bob.write("JOIN #other")
        self.alice.take(), self.bob.take()
        self.writes = HeldWrites(self.world)
        self.addCleanup(self.writes.commit_all)

    def test_a_command_read_before_the_close_does_not_run_after_it(self):
        self.alice.write_bytes(b"PRIVMSG #den :a\r\nJOIN #other\r\n")
        self.assertEqual(self.alice.transport.producerState, "paused")
        account = self.alice.protocol.avatar.account
        # The service ends alice's session (a kill, a password change).
        self.world.chat.end_sessions(account.id, "Killed")
        self.assertTrue(self.alice.transport.disconnecting)
        self.writes.commit_all()
        self.alice.close()
        self.writes.commit_all()
        self.assertNotIn(account.id, self.world.chat.rooms.by_key["other"].members)
        self.assertEqual(self.irc.in_flight.count, 0)
