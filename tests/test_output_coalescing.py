"""
Write coalescing: what the server writes to a connection in one reactor turn
goes out in one transport write at the turn's end, in order; whatever closes
the connection sends it first, and it counts as queued for the slow-reader
limits.
"""

import dataclasses

from twisted.internet import main
from twisted.internet.abstract import FileDescriptor
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial import unittest

from chatroom.protocol.output import CoalescedWrites, RoomFan, write_now
from chatroom.service.events import RoomMessage
from tests.helpers import RELAXED, ChatWorld, capture_log

SOFT, HARD = 4096, 16384
LIMITS = dataclasses.replace(RELAXED, output_soft=SOFT, output_hard=HARD)


class CoalescingTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(LIMITS)
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.channel = ("room", self.world.chat.rooms.lobby.id)
        self.sent = 0

    def publish(self, *texts: str) -> list[str]:
        """Deliver room messages from carol now, inside this turn."""
        for text in texts:
            self.sent += 1
            message = RoomMessage("lobby", self.sent, "carol", text, 0)
            self.world.chat.fanout.publish(self.channel, message)
        return [f"[lobby] carol: {text}" for text in texts]

    def end_turn(self) -> None:
        self.world.clock.advance(0)

    def test_a_turns_deliveries_go_out_in_one_write_at_its_end(self):
        before = self.bob.transport.writes
        expected = self.publish("one", "two", "three")
        self.assertEqual(self.bob.transport.writes, before)
        self.end_turn()
        self.assertEqual(self.bob.transport.writes, before + 1)
        self.assertEqual(self.alice.transport.writes, before + 1)
        self.assertEqual(self.bob.take(), expected)

    def test_one_call_per_turn_flushes_every_connection(self):
        self.publish("one", "two")
        self.assertEqual(len(self.world.clock.getDelayedCalls()), 1)
        self.end_turn()
        self.assertEqual(self.world.clock.getDelayedCalls(), [])
        self.assertIsNone(self.bob.protocol._pending)

    def test_the_order_of_lines_is_kept(self):
        [one] = self.publish("one")
        self.bob.protocol.notice("news")
        [two] = self.publish("two")
        # A command answered inline, within the same turn.
        self.bob.protocol.dataReceived(b"/ping\n")
        [three] = self.publish("three")
        self.end_turn()
        self.assertEqual(self.bob.take(), [one, "* news", two, "+OK pong", three])

    def test_a_reply_that_closes_is_sent_before_the_close(self):
        self.bob.write("/quit")
        self.assertIn(b"+OK bye\r\n", self.bob.transport.written_at_close)

    def test_a_disconnect_notice_is_sent_before_the_close(self):
        [one] = self.publish("one")
        self.bob.protocol.disconnect("server shutting down")
        written = self.bob.transport.written_at_close.decode()
        self.assertEqual(
            written.split("\r\n")[-3:], [one, "* server shutting down", ""]
        )

    def test_shutdown_sends_every_connection_its_goodbye(self):
        self.publish("one")
        self.world.factory.disconnect_all("server shutting down")
        for client in (self.alice, self.bob):
            self.assertIn(
                b"* server shutting down\r\n", client.transport.written_at_close
            )

    def test_the_hard_limit_counts_what_is_not_flushed_yet(self):
        self.publish(*["m" * 500] * 10)
        self.end_turn()
        self.alice.transport.drain()
        self.assertTrue(self.bob.protocol._output.backed_up)
        # One turn's deliveries past the hard limit: cut before the turn ends,
        # not held in memory until the flush.
        self.publish(*["m" * 500] * 30)
        self.assertTrue(self.bob.transport.aborted)
        self.assertFalse(self.bob.protocol._pending)
        self.end_turn()
        self.assertFalse(self.alice.transport.aborted)

    def test_drained_counts_what_is_not_flushed_yet(self):
        self.publish(*["m" * 500] * 10)
        drained = []
        self.bob.protocol.drained().addCallback(drained.append)
        self.assertEqual(drained, [])
        self.bob.transport.drain()
        self.assertEqual(drained, [True])

    def test_a_connection_lost_with_output_pending_drops_it(self):
        events = capture_log(self)
        self.publish("one")
        written = self.bob.transport.value()
        self.bob.disconnect()
        self.assertFalse(self.bob.protocol._pending)
        self.end_turn()
        self.assertEqual(self.bob.transport.value(), written)
        self.assertEqual([e for e in events if e.get("log_failure")], [])
        self.assertEqual(self.world.factory._to_flush, [])
        self.assertNotIn(self.bob.protocol, self.world.factory.clients)


class Socket(FileDescriptor):
    """
    Twisted's own buffering over a kernel that takes C{window} bytes per
    send (L{take} lets the reactor's write pass run), or reports the
    connection lost.
    """

    def __init__(self, window: int) -> None:
        self.reactor = MemoryReactor()
        super().__init__(self.reactor)
        self.connected = 1
        self.window = window
        self.lost = False
        self.sends = 0
        self.received = b""

    def writeSomeData(self, data):
        if self.lost:
            return main.CONNECTION_LOST
        self.sends += 1
        sent = min(len(data), self.window)
        self.received += bytes(data[:sent])
        return sent

    def take(self):
        """The reactor finds the socket writable, as it would if it watched."""
        self.window = 1 << 20
        return self.doWrite()

    def watched(self) -> bool:
        return self in self.reactor.getWriters()


class WriteNowTests(unittest.TestCase):
    def test_an_idle_socket_is_sent_to_at_once_and_not_watched(self):
        socket = Socket(window=1000)
        write_now(socket, b"one\r\n")
        self.assertEqual((socket.received, socket.sends), (b"one\r\n", 1))
        self.assertFalse(socket.watched())

    def test_what_the_kernel_does_not_take_is_written_as_usual_after_it(self):
        socket = Socket(window=3)
        write_now(socket, b"abcdef")
        self.assertEqual(socket.received, b"abc")
        self.assertTrue(socket.watched())
        # Something buffered already: nothing jumps the queue.
        write_now(socket, b"gh")
        self.assertEqual(socket.sends, 1)
        socket.take()
        self.assertEqual(socket.received, b"abcdefgh")
        self.assertFalse(socket.watched())

    def test_nothing_taken_is_written_as_usual(self):
        socket = Socket(window=0)
        write_now(socket, b"abc")
        self.assertTrue(socket.watched())
        socket.take()
        self.assertEqual(socket.received, b"abc")

    def test_a_lost_connection_is_found_by_the_transport_as_usual(self):
        socket = Socket(window=1000)
        socket.lost = True
        write_now(socket, b"abc")
        self.assertTrue(socket.watched())
        self.assertIs(socket.take(), main.CONNECTION_LOST)

    def test_a_closing_socket_is_written_as_usual(self):
        socket = Socket(window=1000)
        socket.loseConnection()
        write_now(socket, b"bye")
        self.assertEqual(socket.sends, 0)
        socket.take()
        self.assertEqual(socket.received, b"bye")

    def test_a_transport_not_a_file_descriptor_is_written_as_usual(self):
        transport = StringTransport()
        write_now(transport, b"abc")
        self.assertEqual(transport.value(), b"abc")


class _Member(CoalescedWrites):
    """Just enough of a connection for a RoomFan: what it was written."""

    __slots__ = ("name", "factory", "connected", "shares", "on_message", "out")

    def __init__(self, name: str, shares: bool = True) -> None:
        self.name, self.shares, self.connected = name, shares, True
        self._pending = self._output = self._run = None
        self.factory = self
        self.on_message = None
        self.out: list[bytes] = []

    def flush_soon(self, client) -> None:
        pass

    def room_fan_key(self):
        return 0 if self.shares and self._may_share() else None

    def room_encoding(self, message, key) -> bytes:
        return message.text.encode()

    def room_message(self, message) -> None:
        self.write(self.room_encoding(message, 0))
        if self.on_message is not None:
            self.on_message()

    def received(self) -> list[bytes]:
        self.flush()
        return self.out

    def flush(self) -> None:
        if self._run is not None:
            self._leave_run()
        pending, self._pending = self._pending, None
        self.out.extend(pending or ())


class RoomFanTests(unittest.TestCase):
    def test_a_member_pushed_out_of_its_run_by_a_delivery_gets_it_once(self):
        ann, bob, cy = _Member("ann"), _Member("bob"), _Member("cy", shares=False)
        fan = RoomFan((ann, bob, cy))
        failed = []
        fan.deliver(RoomMessage("den", 1, "di", "one", 0), None, failed.append)
        # cy takes each message itself, and its delivery has ann written to.
        cy.on_message = lambda: ann.write(b"aside")
        fan.deliver(RoomMessage("den", 2, "di", "two", 0), None, failed.append)
        self.assertEqual(failed, [])
        self.assertEqual(b"".join(ann.received()), b"onetwoaside")
        self.assertEqual(b"".join(bob.received()), b"onetwo")
        self.assertEqual(b"".join(cy.received()), b"onetwo")
