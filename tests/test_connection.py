"""
What every front end's connection shares (L{chatroom.protocol.connection}):
shutdown waits for their lines, the one login sweep, what is built only
when it is needed.
"""

from __future__ import annotations

import dataclasses

from twisted.internet.address import IPv4Address
from twisted.trial import unittest

from chatroom.protocol.connection import TIMEOUT_GRACE
from chatroom.protocol.irc.factory import IRCFactory
from chatroom.protocol.limits import ByteRate, FloodGate
from chatroom.protocol.line.pipeline import ReplyPipeline
from chatroom.protocol.output import OutputQueue
from chatroom.service.admission import Admitted
from tests.clients import MemoryClient
from tests.helpers import RELAXED, SOCKET_BUFFER, ChatWorld, HeldWrites
from tests.test_hardening_output import SocketTransport


class IRCAnsweredTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.irc = IRCFactory(self.world.factory.admission, RELAXED, guests=True)
        self.alice = MemoryClient(self.irc, "10.0.0.2")
        self.alice.write("NICK alice")
        self.alice.write("USER alice 0 * :Alice")
        self.alice.write("JOIN #lobby")
        self.alice.take()

    def test_shutdown_waits_for_an_irc_line_still_being_stored(self):
        held = HeldWrites(self.world)
        self.alice.write("PRIVMSG #lobby :hello")
        self.assertEqual(self.irc.in_flight.count, 1)
        answered = self.irc.all_answered()
        self.assertFalse(answered.called)
        held.commit_all()
        self.assertTrue(answered.called)
        self.assertEqual(self.irc.in_flight.count, 0)

    def test_a_line_answered_at_once_is_not_counted(self):
        self.alice.write("PING :x")
        self.assertEqual(self.irc.in_flight.count, 0)
        self.assertTrue(self.irc.all_answered().called)


class LoginSweepTests(unittest.TestCase):
    """One periodic sweep times out every connection that does not log in."""

    def setUp(self):
        self.world = ChatWorld(dataclasses.replace(RELAXED, login_timeout=40))
        self.clock = self.world.clock

    def test_one_timer_for_every_connection_and_none_of_their_own(self):
        clients = [self.world.connect(port=40000 + i) for i in range(3)]
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        for client in clients:
            self.assertIsNone(client.protocol._timer)

    def test_a_later_connection_times_out_within_a_quarter_more(self):
        self.world.connect(port=40000)
        self.clock.advance(5)
        late = self.world.connect(port=40001)
        late.take()
        # Opened at 5 s: due at 45 s, found by the sweep at 50 s.
        self.clock.advance(39.9)
        self.assertFalse(late.closing)
        self.clock.advance(5)
        self.assertFalse(late.closing)
        self.clock.advance(0.1)
        self.assertEqual(late.take(), ["* login timed out after 40 s"])
        self.assertTrue(late.closing)

    def test_logging_in_leaves_the_sweep_and_the_last_one_stops_it(self):
        waiting = self.world.connect(port=40000)
        alice = self.world.user("alice")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        waiting.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(3600)
        self.assertFalse(alice.closing)

    def test_the_sweep_starts_again_for_a_new_connection(self):
        self.world.connect(port=40000).close()
        client = self.world.connect(port=40001)
        self.clock.advance(40)
        self.assertTrue(client.closing)

    def test_a_timed_out_close_that_finishes_leaves_no_timer(self):
        client = self.world.connect()
        self.clock.advance(40)
        client.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(client.transport.aborted)

    def test_a_connection_whose_timeout_fails_does_not_stop_the_sweep(self):
        broken = self.world.connect(port=40000)
        due = self.world.connect(port=40001)
        self.clock.advance(5)
        late = self.world.connect(port=40002)

        def fail() -> None:
            raise RuntimeError("broken")

        broken.protocol.login_timed_out = fail
        self.clock.advance(35)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(due.closing)
        self.clock.advance(10)
        self.assertTrue(late.closing)

    def irc_client(self, buffer_size: int | None = None) -> MemoryClient:
        limits = dataclasses.replace(RELAXED, login_timeout=40)
        irc = IRCFactory(self.world.factory.admission, limits, guests=True)
        return MemoryClient(irc, "10.0.0.2", buffer_size=buffer_size)

    def test_an_irc_connection_that_does_not_register_is_closed(self):
        client = self.irc_client()
        client.write("NICK alice")
        self.assertIsNone(client.protocol._timer)
        self.clock.advance(39)
        self.assertFalse(client.closing)
        self.clock.advance(1)
        self.assertEqual(
            client.take()[-1],
            "ERROR :Closing link: chatroom.irc (Registration timed out after 40 s)",
        )
        self.assertTrue(client.closing)

    def test_an_irc_timed_out_close_that_does_not_finish_is_aborted(self):
        # As under a TLS handshake the peer never finishes (the line
        # protocol's: test_hardening_limits.LoginTimeoutTests).
        client = self.irc_client(buffer_size=SOCKET_BUFFER)
        self.clock.advance(40)
        self.assertTrue(client.closing)
        self.clock.advance(TIMEOUT_GRACE / 2)
        self.assertFalse(client.transport.aborted)
        self.clock.advance(TIMEOUT_GRACE / 2)
        self.assertTrue(client.transport.aborted)

    def test_an_irc_connection_that_registers_is_kept(self):
        client = self.irc_client()
        client.write("NICK alice")
        client.write("USER alice 0 * :Alice")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(3600)
        self.assertFalse(client.closing)


class BuiltWhenNeededTests(unittest.TestCase):
    """A connection gets its limits' objects only once it needs them."""

    def setUp(self):
        limits = dataclasses.replace(
            RELAXED, rate=20.0, byte_rate=65536, output_soft=4096, output_hard=16384
        )
        self.world = ChatWorld(limits)

    def connect(self, kernel_takes: int = 0) -> SocketTransport:
        """A connection on a TCP transport whose kernel takes C{kernel_takes}."""
        address = IPv4Address("TCP", "10.0.0.2", 40000)
        transport = SocketTransport(address)
        transport.protocol = self.world.factory.buildProtocol(address)
        transport.protocol.makeConnection(transport)
        transport._window = kernel_takes
        self.world.factory.flush_output()
        return transport

    def test_a_connection_that_sends_nothing_has_no_gate_rate_or_pipeline(self):
        protocol = self.connect(kernel_takes=1 << 20).protocol
        self.assertIsNone(protocol._gate)
        self.assertIsNone(protocol._bytes)
        self.assertIsNone(protocol._pipeline)

    def test_the_first_line_builds_them(self):
        transport = self.connect(kernel_takes=1 << 20)
        protocol = transport.protocol
        protocol.dataReceived(b"/ping\n")
        self.assertIsInstance(protocol._gate, FloodGate)
        self.assertIsInstance(protocol._bytes, ByteRate)
        # A pipeline answered it; a command, so it went once it had.
        self.world.factory.flush_output()
        self.assertIn(b"+OK pong", bytes(transport.received))
        self.assertIsNone(protocol._pipeline)

    def test_a_connection_the_kernel_keeps_up_with_has_no_output_queue(self):
        transport = self.connect(kernel_takes=1 << 20)
        self.assertIn(b"welcome to chatroom", bytes(transport.received))
        self.assertIsNone(transport.protocol._output)
        self.assertIsNone(transport.producer)

    def test_bytes_left_in_the_buffer_get_the_queue_and_it_backs_up(self):
        transport = self.connect(kernel_takes=10)
        protocol = transport.protocol
        self.assertIsInstance(transport.producer, OutputQueue)
        self.assertIs(protocol._output, transport.producer)
        self.assertEqual(transport.bufferSize, 4096)
        protocol.write(b"x" * 5000)
        self.world.factory.flush_output()
        self.assertTrue(protocol._output.backed_up)
        self.assertEqual(transport.producerPaused, True)
        # The peer reads it all: the transport resumes the queue.
        transport.take(1 << 20)
        self.assertFalse(protocol._output.backed_up)

    def test_one_flush_past_the_soft_limit_backs_up_at_once(self):
        transport = self.connect(kernel_takes=1 << 20)
        protocol = transport.protocol
        transport._window = 0  # the kernel has no room now
        protocol.write(b"x" * 5000)
        self.world.factory.flush_output()
        self.assertIsInstance(protocol._output, OutputQueue)
        self.assertTrue(protocol._output.backed_up)

    def test_no_queue_once_closing(self):
        transport = self.connect(kernel_takes=1 << 20)
        protocol = transport.protocol
        protocol.disconnect("bye")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(protocol._output)
        self.assertIsNone(transport.producer)

    def test_no_queue_with_output_accounting_off(self):
        self.world = ChatWorld(dataclasses.replace(RELAXED, output_hard=0))
        transport = self.connect(kernel_takes=0)
        self.assertIsNone(transport.protocol._output)
        self.assertIsNone(transport.producer)


class AtRestTests(unittest.TestCase):
    """An idle logged-in connection gives back what refills, at the idle check."""

    def setUp(self):
        limits = dataclasses.replace(
            RELAXED, rate=20.0, burst=200, byte_rate=65536, ping_interval=60
        )
        self.world = ChatWorld(limits)
        self.alice = self.world.user("alice")

    def test_full_buckets_and_an_empty_pipeline_go_at_the_idle_check(self):
        protocol = self.alice.protocol
        self.assertEqual(self.alice.command("hello"), "+OK")
        self.assertIsNotNone(protocol._gate)
        # Messages come in runs: the pipeline stays for the next one.
        self.assertIsInstance(protocol._pipeline, ReplyPipeline)
        self.world.clock.advance(60)
        self.assertIsNone(protocol._gate)
        self.assertIsNone(protocol._bytes)
        self.assertIsNone(protocol._pipeline)
        # Made again at the next line, as at the first.
        self.assertEqual(self.alice.command("/ping"), "+OK pong")
        self.assertIsInstance(protocol._gate, FloodGate)

    def test_the_pipeline_goes_once_a_command_is_answered(self):
        protocol = self.alice.protocol
        self.assertEqual(self.alice.command("/ping"), "+OK pong")
        self.assertIsNone(protocol._pipeline)
        # The next line makes one again; replies keep their order.
        self.alice.write_bytes(b"/ping\nhello\n/ping\n")
        self.assertEqual(self.alice.take(), ["+OK pong", "+OK", "+OK pong"])
        self.assertIsNone(protocol._pipeline)

    def test_a_pipeline_with_a_line_waiting_is_kept(self):
        protocol = self.alice.protocol
        held = HeldWrites(self.world)
        self.alice.write("/c dev")
        self.alice.write("hello")
        pipeline = protocol._pipeline
        # The room is stored: its reply, then the message that waited starts.
        held.commit()
        self.assertIs(protocol._pipeline, pipeline)
        self.assertFalse(pipeline.at_rest())
        held.commit_all()
        self.assertEqual(self.alice.take(), ["+OK created #dev", "+OK"])

    def test_a_gate_still_refilling_is_kept(self):
        protocol = self.alice.protocol
        self.world.clock.advance(55)
        # 199 of 200 spent, 20 back a second: 10 s to refill, half done at 5.
        for _ in range(199):
            self.alice.command("/ping")
        self.world.clock.advance(5)
        self.assertIsNotNone(protocol._gate)
        self.world.clock.advance(60)
        self.assertIsNone(protocol._gate)

    def test_a_paced_reader_keeps_its_byte_rate(self):
        protocol = self.alice.protocol
        protocol._bytes = rate = ByteRate(1.0, 10, self.world.clock, protocol)
        rate.received(100)
        self.world.clock.advance(60)
        self.assertIs(protocol._bytes, rate)


class LogoutTests(unittest.TestCase):
    """A session ends at the close, through its avatar unless Cred said otherwise."""

    def setUp(self):
        self.world = ChatWorld()

    def test_the_close_logs_out_through_the_avatar_keeping_no_logout(self):
        alice = self.world.user("alice")
        protocol = alice.protocol
        self.assertIsNone(protocol._logout)
        account = protocol.avatar.account
        alice.disconnect()
        self.assertNotIn(account.id, self.world.factory.chat.online)
        self.assertEqual(account.sessions, ())

    def test_a_logout_that_is_not_the_avatars_is_the_one_called(self):
        alice = self.world.user("alice")
        protocol, avatar, reasons = alice.protocol, alice.protocol.avatar, []
        protocol._become(Admitted(avatar, reasons.append))
        alice.disconnect()
        self.assertEqual(reasons, [None])
        avatar.logout()
