"""
Slow readers: what is queued for each client is bounded.  Past the soft limit
its commands are not read; at the hard limit it is dropped, with a log line,
while everyone else keeps receiving.
"""

import socket

from twisted.internet import defer, protocol, reactor, task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from chatroom.protocol.limits import Limits
from chatroom.protocol.output import OutputQueue
from chatroom.service.events import RoomMessage
from tests.helpers import RELAXED, ChatWorld, fired

SOFT, HARD = 4096, 16384
LIMITS = Limits(
    rate=0,
    login_timeout=0,
    ping_interval=0,
    max_connections=0,
    max_per_address=0,
    output_soft=SOFT,
    output_hard=HARD,
)


def capture_log(test: unittest.TestCase) -> list[dict]:
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


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
