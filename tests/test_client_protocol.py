"""Tests for chatroom.client.protocol: pairing requests with replies."""

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chatroom.client.lines import Data, Err, Notice, Ok, RoomMessage, ServerLine
from chatroom.client.protocol import ChatClientProtocol, Reply


class ChatClientProtocolTests(TestCase):
    def setUp(self) -> None:
        self.transport = StringTransport()
        self.protocol = ChatClientProtocol()
        self.protocol.makeConnection(self.transport)
        self.events: list[ServerLine] = []
        self.protocol.deliver_events_to(self.events.append)

    def receive(self, *lines: bytes) -> None:
        self.protocol.dataReceived(b"".join(line + b"\r\n" for line in lines))

    def test_plain_tcp_is_ready_on_connection(self) -> None:
        self.assertIsNone(self.successResultOf(self.protocol.ready))

    def test_requests_are_sent_as_crlf_terminated_utf8(self) -> None:
        self.protocol.request("héllo")
        self.assertEqual(self.transport.value(), "héllo\r\n".encode())

    def test_replies_pair_with_requests_in_order_with_their_data(self) -> None:
        first = self.protocol.request("/rooms")
        second = self.protocol.request("/j nowhere")
        self.receive(b"= lobby (default)", b"= dev", b"+OK", b"-ERR no-such-room x")
        self.assertEqual(
            self.successResultOf(first),
            Reply(Ok(""), (Data("lobby (default)"), Data("dev"))),
        )
        self.assertEqual(self.successResultOf(second), Reply(Err("no-such-room", "x")))

    def test_messages_and_notices_between_replies_are_events(self) -> None:
        reply = self.protocol.request("hello")
        self.receive(b"[lobby] bob: hi", b"* carol joined lobby", b"+OK")
        self.assertEqual(self.successResultOf(reply), Reply(Ok("")))
        self.assertEqual(
            self.events,
            [RoomMessage("lobby", "bob", "hi"), Notice("carol joined lobby")],
        )

    def test_a_reply_to_no_request_is_an_event(self) -> None:
        self.receive(b"-ERR rate-limited slow down", b"= stray")
        self.assertEqual(self.events, [Err("rate-limited", "slow down"), Data("stray")])

    def test_lf_alone_and_invalid_utf8_are_tolerated(self) -> None:
        self.protocol.dataReceived(b"* caf\xff\n")
        self.assertEqual(self.events, [Notice("caf\ufffd")])

    def test_lost_connection_fails_waiting_requests_and_fires_closed(self) -> None:
        reply = self.protocol.request("/ping")
        self.protocol.connectionLost(Failure(ConnectionLost()))
        self.failureResultOf(reply, ConnectionLost)
        self.assertIsInstance(
            self.successResultOf(self.protocol.closed), ConnectionLost
        )

    def test_events_before_a_sink_are_held_back(self) -> None:
        protocol = ChatClientProtocol()
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"* hello\r\n")
        events: list[ServerLine] = []
        protocol.deliver_events_to(events.append)
        self.assertEqual(events, [Notice("hello")])
        protocol.connectionLost(Failure(ConnectionDone()))
