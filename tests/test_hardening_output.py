"""
Slow readers: what is queued for each client is bounded.  Past the soft limit
its commands are not read; over the hard limit, or after taking nothing for
the stall time, it is dropped, with a log line, while everyone else keeps
receiving.  A client that keeps reading is never dropped.
"""

import dataclasses
import socket

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial import unittest

from chatroom.protocol.limits import Limits
from chatroom.protocol.output import OutputQueue, transport_buffered
from chatroom.service.events import RoomMessage
from tests.helpers import RELAXED, ChatWorld, capture_log, fired

SOFT, HARD = 4096, 16384
LIMITS = dataclasses.replace(RELAXED, output_soft=SOFT, output_hard=HARD)
STALL = 30.0


class OutputQueueTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(LIMITS)
        self.alice = self.world.user("alice")
        self.slow = self.world.user("slow")
        self.fast = self.world.user("fast")
        for client in (self.alice, self.slow, self.fast):
            client.transport.bufferSize = SOFT
            client.transport.drain()

    def say(self, count: int, size: int = 500) -> None:
        for i in range(count):
            self.alice.write(f"{i:05d} " + "m" * size)
            self.alice.transport.drain()
            self.fast.transport.drain()

    def test_soft_limit_is_the_transports_buffer_size(self):
        self.assertEqual(self.slow.transport.bufferSize, SOFT)
        self.assertIsInstance(self.slow.transport.producer, OutputQueue)

    def test_past_the_soft_limit_commands_are_not_read(self):
        self.say(10)
        self.assertEqual(self.slow.transport.producerState, "paused")
        self.slow.take()
        self.slow.write("/ping")
        self.assertEqual(self.slow.take(), [])
        # Once the client has read what was queued, the command runs.
        self.slow.transport.drain()
        self.assertEqual(self.slow.transport.producerState, "producing")
        self.assertEqual(self.slow.take(), ["+OK pong"])

    def test_reading_resumes_only_when_the_command_and_the_queue_allow(self):
        self.say(10)
        # A command in flight (say, a login checking a password) also stops
        # reading; draining the queue alone must not resume it.
        self.slow.protocol.stop_reading("command")
        self.slow.transport.drain()
        self.assertEqual(self.slow.transport.producerState, "paused")
        self.slow.protocol.resume_reading("command")
        self.assertEqual(self.slow.transport.producerState, "producing")

    def test_hard_limit_disconnects_the_slow_reader_with_a_log_line(self):
        events = capture_log(self)
        self.say(40)
        self.assertTrue(self.slow.transport.aborted)
        # What was written for it before it went stays near the hard limit.
        self.assertLess(len(self.slow.transport.value()), HARD + SOFT + 1024)
        logged = [e for e in events if "not reading" in e.get("log_format", "")]
        self.assertEqual(len(logged), 1)
        self.assertEqual(logged[0]["user"], "slow")
        self.assertGreater(logged[0]["queued"], HARD)

    def test_others_keep_receiving_while_and_after_the_slow_one_is_dropped(self):
        self.fast.take()
        self.say(40)
        self.slow.close()
        self.say(5)
        received = [line for line in self.fast.take() if line.startswith("[lobby]")]
        self.assertEqual(len(received), 45)
        self.assertEqual(self.alice.command("/who lobby").split()[0], "+OK")

    def test_no_accounting_while_the_client_keeps_up(self):
        self.say(40)
        self.assertFalse(self.fast.transport.aborted)
        self.assertEqual(self.fast.protocol._output.queued, 0)

    def test_logout_while_backed_up_closes_after_a_grace_period(self):
        self.say(10)
        self.slow.protocol.disconnect("bye")
        self.assertTrue(self.slow.closing)
        self.assertIsNone(self.slow.transport.producer)
        self.world.clock.advance(10)
        self.assertTrue(self.slow.transport.aborted)

    def test_hard_limit_zero_turns_accounting_off(self):
        world = ChatWorld(Limits(**{**RELAXED.__dict__, "output_hard": 0}))
        client = world.user("alice")
        self.assertIsNone(client.transport.producer)


class SocketTransport(FileDescriptor):
    """
    A TCP transport without a socket: Twisted's own buffering and producer
    signals (FileDescriptor.write and doWrite), the peer played by the test
    with L{take}.
    """

    def __init__(self, peer: IPv4Address) -> None:
        super().__init__(MemoryReactor())
        self.connected = 1
        self.peer = peer
        self.received = bytearray()
        self.aborted = False
        self.protocol = None
        self._window = 0

    def take(self, size: int) -> None:
        """
        The peer reads up to C{size} bytes of what is queued, once the
        server's turn has ended (its coalesced output flushed); the kernel
        takes nothing more until the next call.
        """
        if self.protocol is not None:
            self.protocol.factory.flush_output()
        self._window = size
        self.doWrite()
        self._window = 0

    def writeSomeData(self, data) -> int:
        sent = min(len(data), self._window)
        self._window -= sent
        self.received += data[:sent]
        return sent

    def lines(self) -> list[str]:
        return self.received.decode().split("\r\n")[:-1]

    def abortConnection(self) -> None:
        self.aborted = True
        self.connected = 0

    def getPeer(self) -> IPv4Address:
        return self.peer

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 5000)


class TransportBufferedTests(unittest.TestCase):
    def test_counts_what_the_kernel_has_not_taken(self):
        transport = SocketTransport(IPv4Address("TCP", "10.0.0.2", 1))
        transport.write(b"a" * 300)
        transport.write(b"b" * 200)
        self.assertEqual(transport_buffered(transport), 500)
        transport.take(120)
        self.assertEqual(transport_buffered(transport), 380)
        transport.write(b"c" * 50)
        self.assertEqual(transport_buffered(transport), 430)
        transport.take(1000)
        self.assertEqual(transport_buffered(transport), 0)

    def test_a_transport_that_does_not_say_is_none(self):
        self.assertIsNone(transport_buffered(StringTransport()))


class ProgressTests(unittest.TestCase):
    """
    On Twisted's own TCP buffering: a client is judged by what is really
    queued for it and whether it takes any of it.
    """

    def setUp(self):
        limits = Limits(**{**LIMITS.__dict__, "output_stall": STALL})
        self.world = ChatWorld(limits)
        self.events = capture_log(self)
        self.alice = self.world.user("alice")
        self.reader = self.connect("reader")
        self.sent: list[str] = []

    def connect(self, name: str, host: str = "10.0.0.2") -> SocketTransport:
        address = IPv4Address("TCP", host, 40000)
        transport = SocketTransport(address)
        transport.protocol = self.world.factory.buildProtocol(address)
        transport.protocol.makeConnection(transport)
        transport.protocol.dataReceived(f"/register {name} pw\n".encode())
        transport.take(SOFT)
        self.assertEqual(transport.lines()[-1], f"+OK welcome, {name}")
        return transport

    def say(self, count: int = 1) -> int:
        """Bytes of the last of C{count} messages, as the reader gets it."""
        for _ in range(count):
            text = f"{len(self.sent):05d} " + "m" * 500
            self.alice.write(text)
            self.alice.transport.drain()
            self.sent.append(f"[lobby] alice: {text}")
        return len(self.sent[-1]) + 2

    def wait(self, seconds: float) -> None:
        """Time passes in steps, as it does for a real reactor."""
        self.world.clock.pump([0.5] * round(seconds * 2))

    def cuts(self) -> list[dict]:
        return [e for e in self.events if "not reading" in e.get("log_format", "")]

    def test_a_reader_that_keeps_taking_is_never_cut_under_steady_traffic(self):
        self.say(12)
        self.assertTrue(self.reader.protocol._output.backed_up)
        self.reader.protocol.dataReceived(b"/ping\n")
        # Three minutes of one message a tenth of a second, the reader taking
        # as much as comes: its buffer never empties, and 1.5 MB (a hundred
        # times the hard limit) goes through it.
        for _ in range(1800):
            self.reader.take(self.say())
            self.world.clock.advance(0.1)
        self.assertFalse(self.reader.aborted)
        self.assertEqual(self.cuts(), [])
        self.assertGreater(transport_buffered(self.reader), SOFT)
        # Back-pressure still holds: its command waits until it has caught up.
        self.assertNotIn("+OK pong", self.reader.lines())
        self.reader.take(HARD)
        # Emptied, it resumes reading; the reply goes out at the next write.
        self.reader.take(SOFT)
        lines = self.reader.lines()
        self.assertEqual([x for x in lines if x.startswith("[lobby]")], self.sent)
        self.assertEqual(lines[-1], "+OK pong")
        # Nothing backed up: no check left running.
        self.assertEqual(self.world.clock.getDelayedCalls(), [])

    def test_a_reader_that_takes_nothing_is_cut_after_the_stall_time(self):
        self.say(12)
        self.wait(STALL - 0.5)
        self.assertFalse(self.reader.aborted)
        self.wait(STALL / 4 + 0.5)
        self.assertTrue(self.reader.aborted)
        [cut] = self.cuts()
        self.assertIn("took nothing", cut["log_format"])
        self.assertEqual(cut["user"], "reader")
        self.assertLess(cut["queued"], HARD)

    def test_taking_something_puts_the_stall_off(self):
        self.say(12)
        self.wait(20)
        self.reader.take(100)
        self.wait(STALL - 1)
        self.assertFalse(self.reader.aborted)
        self.wait(STALL / 4 + 1)
        self.assertTrue(self.reader.aborted)

    def test_one_check_for_every_backed_up_connection(self):
        other = self.connect("other", "10.0.0.3")
        self.say(12)
        self.assertEqual(len(self.world.clock.getDelayedCalls()), 1)
        self.wait(STALL * 1.25)
        self.assertTrue(self.reader.aborted)
        self.assertTrue(other.aborted)

    def test_over_the_hard_limit_it_is_cut_at_once_whatever_its_progress(self):
        self.say(12)
        # Two messages come for each one it takes: it reads, but too slowly.
        for _ in range(100):
            self.say(2)
            if self.reader.aborted:
                break
            self.reader.take(600)
        self.assertTrue(self.reader.aborted)
        [cut] = self.cuts()
        self.assertIn("passed the limit", cut["log_format"])
        self.assertGreater(cut["queued"], HARD)
        self.assertLess(cut["queued"], HARD + 600)


class DeferringLayer:
    """
    Stands in for TLS above a TCP transport: what is written reaches TCP on
    the next turn, as one record a little larger than what went in.
    """

    RECORD_OVERHEAD = 29

    def __init__(self, below: SocketTransport, clock: task.Clock) -> None:
        self.transport = below
        self.wrappedProtocol = None
        self._clock = clock
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._clock.callLater(0, self._pass_on)
        self._held.append(data)

    def _pass_on(self) -> None:
        data, self._held = b"".join(self._held), []
        self.transport.write(b"r" * self.RECORD_OVERHEAD + data)


class ProgressThroughTLSTests(unittest.TestCase):
    """
    Under TLS what we flush reaches TCP a turn later: a flush must not look
    like progress, and a reader that keeps taking must not look stalled.
    """

    MESSAGE = 500

    def setUp(self):
        self.clock = task.Clock()
        self.cuts: list[str] = []
        self.tcp = SocketTransport(IPv4Address("TCP", "10.0.0.2", 1))
        self.queue = OutputQueue(
            SOFT, 1024 * 1024, STALL, self.clock, lambda _: None, self.cuts.append
        )
        self.tls = DeferringLayer(self.tcp, self.clock)
        self.queue.attach(self.tls)
        self.turns = 0
        # Ten messages at once pass the soft limit.
        for _ in range(10):
            self.tls.write(b"m" * self.MESSAGE)
        self.clock.advance(0)
        self.assertTrue(self.queue.backed_up)

    def turn(self, taken: int = 0, size: int = MESSAGE) -> None:
        """A tenth of a second: the reader takes, TLS passes on, we flush."""
        self.tcp.take(taken)
        self.clock.advance(0.1)
        self.queue.buffered(size)
        self.tls.write(b"m" * size)
        self.queue.flushed(size)
        self.turns += 1
        if self.turns % round(STALL / 4 / 0.1) == 0:
            self.queue.check()

    def test_a_silent_reader_is_cut_after_the_stall_time(self):
        # Traffic that varies: a flush larger than the one before, which is
        # in TCP's buffer by now, is no sign the reader took anything.
        while not self.cuts and self.turns < 1000:
            self.turn(size=200 if self.turns % 2 else 800)
        self.assertEqual(self.cuts, ["stall"])
        self.assertLess(self.queue.queued, self.queue.hard)
        self.assertLessEqual(self.turns / 10, STALL * 1.25)

    def test_a_reader_that_keeps_taking_is_never_cut(self):
        # Three minutes; it takes what comes, a record a turn, so its TCP
        # buffer stays where it was.
        for _ in range(1800):
            self.turn(self.MESSAGE + DeferringLayer.RECORD_OVERHEAD)
        self.assertEqual(self.cuts, [])
        self.assertTrue(self.queue.backed_up)


class Recorder(protocol.Protocol):
    def __init__(self):
        self.received = 0
        self.ready = defer.Deferred()

    def connectionMade(self):
        self.ready.callback(self)

    def dataReceived(self, data):
        self.received += data.count(b"\n")


class SlowReaderOverTCPTests(unittest.TestCase):
    """The same promise with real sockets on the loopback interface."""

    @defer.inlineCallbacks
    def test_a_socket_that_never_reads_is_dropped_and_others_get_everything(self):
        limits = Limits(
            **{**LIMITS.__dict__, "output_soft": 65536, "output_hard": 262144}
        )
        world = ChatWorld(limits)
        world.chat.clock = world.factory.clock = reactor
        events = capture_log(self)
        port = reactor.listenTCP(0, world.factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        address = port.getHost()

        # The slow reader: a small receive buffer, and it never reads.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        self.addCleanup(slow.close)
        try:
            slow.connect((address.host, address.port))
        except BlockingIOError:
            pass
        creator = protocol.ClientCreator(reactor, Recorder)
        good = yield creator.connectTCP(address.host, address.port)
        yield good.ready
        self.addCleanup(good.transport.loseConnection)
        yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(len(world.factory.clients), 2)
        channel = ("room", world.chat.rooms.lobby.id)
        for client in world.factory.clients:
            world.chat.fanout.subscribe(channel, client)

        text = "x" * 1000
        sent = 0
        deadline = reactor.seconds() + 10
        while len(world.factory.clients) == 2 and reactor.seconds() < deadline:
            for _ in range(20):
                world.chat.fanout.publish(
                    channel, RoomMessage("lobby", 1, "a", text, 0)
                )
                sent += 1
            yield task.deferLater(reactor, 0.001, lambda: None)
        self.assertEqual(len(world.factory.clients), 1, "the slow reader was kept")
        self.assertLess(sent, 100_000)
        # Everything published reaches the reader that reads.
        while good.received < sent + 1 and reactor.seconds() < deadline:
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(good.received, sent + 1)  # and the greeting
        self.assertTrue(any("not reading" in e.get("log_format", "") for e in events))
        fired(world.database.flushed())
