"""
Floods, connection caps, the login timeout and the idle ping: every limit
with the clock under the test's control.
"""

import socket

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.trial import unittest

from chatroom.protocol.address import set_user_timeout
from chatroom.protocol.connection import TIMEOUT_GRACE
from chatroom.protocol.limits import Limits
from chatroom.service.throttle import TokenBucket
from chatroom.tap import limits_from
from tests.clients import final_replies
from tests.helpers import RELAXED, ChatWorld, parse_options


def limits(**changes) -> Limits:
    return Limits(**{**RELAXED.__dict__, **changes})


class TokenBucketTests(unittest.TestCase):
    def test_burst_then_rate(self):
        clock = task.Clock()
        bucket = TokenBucket(2.0, 3, clock)
        self.assertEqual([bucket.take() for _ in range(4)], [True] * 3 + [False])
        clock.advance(0.5)
        self.assertEqual([bucket.take(), bucket.take()], [True, False])
        clock.advance(100)
        self.assertEqual(sum(bucket.take() for _ in range(10)), 3)

    def test_spending_goes_into_debt_and_says_when_it_is_paid_back(self):
        clock = task.Clock()
        bucket = TokenBucket(2.0, 3, clock)
        self.assertEqual(bucket.spend(3), 0.0)
        self.assertEqual(bucket.spend(4), 2.0)
        clock.advance(1.5)
        self.assertFalse(bucket.take())
        clock.advance(1)
        self.assertTrue(bucket.take())
        clock.advance(100)
        self.assertEqual(bucket.spend(1), 0.0)
        self.assertEqual(bucket.tokens, 2.0)


class FloodTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(limits(rate=5, burst=10, flood_strikes=5))
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.world.clock.advance(10)  # the buckets refill after registering

    def test_lines_over_the_rate_get_rate_limited_and_are_dropped(self):
        self.alice.write_bytes(b"".join(b"msg %d\n" % i for i in range(12)))
        replies = final_replies(self.alice.take())
        self.assertEqual(replies[:10], ["+OK"] * 10)
        self.assertEqual(
            [r.split()[:2] for r in replies[10:]], [["-ERR", "rate-limited"]] * 2
        )
        received = self.bob.take()
        self.assertEqual(len(received), 10)
        self.assertNotIn("[lobby] alice: msg 10", received)
        self.assertFalse(self.alice.closing)

    def test_the_rate_recovers_with_time(self):
        self.alice.write_bytes(b"/ping\n" * 10)
        self.assertTrue(self.alice.command("/ping").startswith("-ERR rate-limited"))
        self.world.clock.advance(1)
        self.assertEqual(self.alice.command("/ping"), "+OK pong")

    def test_sustained_abuse_disconnects(self):
        self.alice.write_bytes(b"/ping\n" * 100)
        lines = self.alice.take()
        # Every line read got its one reply, then a notice, then the close.
        self.assertEqual(
            final_replies(lines),
            ["+OK pong"] * 10 + ["-ERR rate-limited slow down"] * 5,
        )
        self.assertEqual(lines[-1], "* disconnected: too many lines too fast")
        self.assertTrue(self.alice.closing)

    def test_a_steady_client_under_the_rate_is_never_refused(self):
        for _ in range(100):
            self.assertEqual(self.alice.command("/ping"), "+OK pong")
            self.world.clock.advance(0.2)

    def test_rate_zero_turns_the_limit_off(self):
        world = ChatWorld(limits(rate=0))
        client = world.user("carol")
        client.write_bytes(b"/ping\n" * 1000)
        self.assertEqual(final_replies(client.take()), ["+OK pong"] * 1000)


class ConnectionCapTests(unittest.TestCase):
    def test_connections_per_address_are_capped(self):
        world = ChatWorld(limits(max_per_address=3))
        clients = [world.connect("10.0.0.7", 1000 + i) for i in range(3)]
        refused = world.connect("10.0.0.7", 2000)
        self.assertEqual(refused.greeting, ["* too many connections from your address"])
        self.assertTrue(refused.closing)
        # Other addresses are not affected; a closed connection frees its place.
        self.assertFalse(world.connect("10.0.0.8").closing)
        clients[0].close()
        self.assertFalse(world.connect("10.0.0.7", 3000).closing)

    def test_ipv4_addresses_are_counted_by_host_not_by_port(self):
        world = ChatWorld(limits(max_per_address=1))
        factory = world.factory
        first = IPv4Address("TCP", "10.0.0.9", 1)
        factory.buildProtocol(first).makeConnection(StringTransport(peerAddress=first))
        refusal = factory.buildProtocol(IPv4Address("TCP", "10.0.0.9", 2))
        self.assertEqual(type(refusal).__name__, "Refusal")
        self.assertNotEqual(
            type(factory.buildProtocol(IPv6Address("TCP", "::1", 2))).__name__,
            "Refusal",
        )

    def test_a_refusal_whose_close_does_not_finish_is_aborted(self):
        # As under a TLS handshake the peer never finishes: a refused
        # connection is not counted, so nothing else would ever close it.
        world = ChatWorld(limits(max_per_address=1))
        world.connect("10.0.0.7")
        refused = world.connect("10.0.0.7", 2000)
        self.assertTrue(refused.closing)
        world.clock.advance(TIMEOUT_GRACE / 2)
        self.assertFalse(refused.transport.aborted)
        world.clock.advance(TIMEOUT_GRACE / 2)
        self.assertTrue(refused.transport.aborted)

    def test_a_refusal_closed_in_time_leaves_no_timer(self):
        world = ChatWorld(limits(max_per_address=1))
        world.connect("10.0.0.7")
        timers = len(world.clock.getDelayedCalls())
        refused = world.connect("10.0.0.7", 2000)
        self.assertEqual(len(world.clock.getDelayedCalls()), timers + 1)
        refused.close()
        self.assertEqual(len(world.clock.getDelayedCalls()), timers)
        self.assertFalse(refused.transport.aborted)

    def test_total_connections_are_capped(self):
        world = ChatWorld(limits(max_connections=4))
        for i in range(4):
            world.connect(f"10.0.1.{i}")
        refused = world.connect("10.0.2.1")
        self.assertEqual(refused.greeting, ["* the server is full: try again later"])
        self.assertTrue(refused.closing)
        self.assertEqual(len(world.factory.clients), 4)


class ByteRateTests(unittest.TestCase):
    """
    A sender past the byte rate is read more slowly: nothing refused, nothing
    lost, every line its one reply.
    """

    RATE, BURST = 1000, 2000

    def setUp(self):
        self.world = ChatWorld(limits(byte_rate=self.RATE, byte_burst=self.BURST))
        self.paster = self.world.user("paster")
        self.bob = self.world.user("bob")
        self.world.clock.advance(10)  # the buckets refill after registering
        self.texts = [f"{n:02d} " + "p" * 497 for n in range(20)]

    def paste(self, texts: list[str]) -> int:
        data = b"".join(text.encode() + b"\n" for text in texts)
        self.paster.write_bytes(data)
        return len(data)

    def test_a_paste_past_the_burst_is_read_later_and_loses_no_line(self):
        first = self.paste(self.texts[:10])
        # What came in one read is read: ten lines, ten replies.
        self.assertEqual(final_replies(self.paster.take()), ["+OK"] * 10)
        self.assertEqual(self.paster.transport.producerState, "paused")
        # More arriving meanwhile (as TLS hands over a whole record) waits.
        second = self.paste(self.texts[10:])
        self.assertEqual(self.paster.take(), [])
        debt = first + second - self.BURST
        self.world.clock.advance(debt / self.RATE - 0.01)
        self.assertEqual(self.paster.transport.producerState, "paused")
        self.assertEqual(self.paster.take(), [])
        self.world.clock.advance(0.01)
        self.assertEqual(self.paster.transport.producerState, "producing")
        self.assertEqual(final_replies(self.paster.take()), ["+OK"] * 10)
        received = [line.removeprefix("[lobby] paster: ") for line in self.bob.take()]
        self.assertEqual(received, self.texts)
        self.assertFalse(self.paster.closing)

    def test_a_paste_within_the_burst_is_read_at_once(self):
        self.paste(self.texts[:3])
        self.assertEqual(final_replies(self.paster.take()), ["+OK"] * 3)
        self.assertEqual(self.paster.transport.producerState, "producing")

    def test_reading_resumes_only_when_the_byte_rate_and_the_command_allow(self):
        self.paste(self.texts[:10])
        self.paster.protocol.stop_reading("command")
        self.world.clock.advance(10)
        self.assertEqual(self.paster.transport.producerState, "paused")
        self.paster.protocol.resume_reading("command")
        self.assertEqual(self.paster.transport.producerState, "producing")

    def test_no_call_is_left_when_a_paced_client_goes(self):
        self.paste(self.texts)
        self.assertEqual(len(self.world.clock.getDelayedCalls()), 1)
        self.paster.disconnect()
        self.assertEqual(self.world.clock.getDelayedCalls(), [])

    def test_byte_rate_zero_turns_it_off(self):
        world = ChatWorld(limits(byte_rate=0, byte_burst=1))
        client = world.user("paster")
        client.write_bytes(b"".join(text.encode() + b"\n" for text in self.texts))
        self.assertEqual(final_replies(client.take()), ["+OK"] * 20)
        self.assertEqual(client.transport.producerState, "producing")


class PacingOptionTests(unittest.TestCase):
    def test_defaults(self):
        limits = limits_from(
            parse_options(
                self,
            )
        )
        self.assertEqual((limits.byte_rate, limits.byte_burst), (65536, 32768))
        self.assertEqual(limits.output_stall, 30.0)

    def test_the_bench_can_lift_or_turn_them_off(self):
        limits = limits_from(
            parse_options(
                self, "--byte-rate", "0", "--byte-burst", "1", "--output-stall", "0"
            )
        )
        self.assertEqual((limits.byte_rate, limits.byte_burst), (0, 1))
        self.assertEqual(limits.output_stall, 0)

    def test_a_burst_of_nothing_is_refused(self):
        self.assertRaises(usage.UsageError, parse_options, self, "--byte-burst", "0")


class LoginTimeoutTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(limits(login_timeout=30))

    def test_a_connection_that_does_not_log_in_is_closed(self):
        client = self.world.connect()
        client.take()
        self.world.clock.advance(29)
        self.assertFalse(client.closing)
        self.world.clock.advance(1)
        self.assertEqual(client.take(), ["* login timed out after 30 s"])
        self.assertTrue(client.closing)

    def test_a_timed_out_connection_that_does_not_close_is_aborted(self):
        # A TLS handshake left half done never completes a clean close.
        client = self.world.connect()
        self.world.clock.advance(30)
        self.assertTrue(client.closing)
        self.assertFalse(client.transport.aborted)
        self.world.clock.advance(1)
        self.assertTrue(client.transport.aborted)

    def test_commands_before_login_do_not_extend_it(self):
        client = self.world.connect()
        for _ in range(6):
            client.command("/ping")
            self.world.clock.advance(5)
        self.assertTrue(client.closing)

    def test_a_logged_in_connection_is_kept(self):
        client = self.world.user("alice")
        self.world.clock.advance(3600)
        self.assertFalse(client.closing)

    def test_a_closed_connection_leaves_no_timer(self):
        client = self.world.connect()
        client.close()
        self.assertEqual(self.world.clock.getDelayedCalls(), [])


class IdlePingTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(limits(ping_interval=60, ping_timeout=30))
        self.alice = self.world.user("alice")

    def test_a_silent_connection_gets_a_ping_notice_each_interval(self):
        # The login's +OK was traffic: silence is checked interval by interval,
        # so the first ping comes after one to two intervals.
        self.world.clock.advance(60)
        self.assertEqual(self.alice.take(), [])
        self.world.clock.advance(60)
        self.assertEqual(self.alice.take(), ["* ping"])
        self.world.clock.advance(60)
        self.assertEqual(self.alice.take(), ["* ping"])
        self.assertFalse(self.alice.closing)

    def test_traffic_either_way_counts_as_activity(self):
        bob = self.world.user("bob")
        for _ in range(5):
            self.world.clock.advance(30)
            bob.command("hello")  # alice receives, so is not idle
        self.assertNotIn("* ping", self.alice.take())
        self.world.clock.advance(30)
        self.alice.command("/ping")  # alice sends
        self.world.clock.advance(30)
        self.assertNotIn("* ping", self.alice.take())

    def test_not_logged_in_connections_get_no_ping(self):
        client = self.world.connect()
        client.take()
        self.world.clock.advance(600)
        self.assertEqual(client.take(), [])

    def test_logout_stops_the_pings(self):
        self.alice.command("/logout")
        self.alice.close()
        self.assertEqual(self.world.clock.getDelayedCalls(), [])


class Idle(protocol.Protocol):
    pass


class UserTimeoutTests(unittest.TestCase):
    """A dead peer is found by the kernel: the ping stays unacknowledged."""

    @defer.inlineCallbacks
    def test_sockets_ask_the_kernel_to_drop_peers_that_stop_acknowledging(self):
        if not hasattr(socket, "TCP_USER_TIMEOUT"):
            raise unittest.SkipTest("TCP_USER_TIMEOUT is Linux only")
        world = ChatWorld(limits(ping_interval=60, ping_timeout=45))
        accepted = []
        original = world.factory.buildProtocol

        def build(addr):
            proto = original(addr)
            accepted.append(proto)
            return proto

        world.factory.buildProtocol = build
        port = reactor.listenTCP(0, world.factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = yield protocol.ClientCreator(reactor, Idle).connectTCP(
            "127.0.0.1", port.getHost().port
        )
        self.addCleanup(client.transport.loseConnection)
        while not accepted:
            yield task.deferLater(reactor, 0.01, lambda: None)
        handle = accepted[0].transport.getHandle()
        option = handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
        self.assertEqual(option, 45000)
        accepted[0].transport.loseConnection()

    def test_transports_without_a_tcp_socket_are_left_alone(self):
        self.assertFalse(set_user_timeout(StringTransport(), 10))
