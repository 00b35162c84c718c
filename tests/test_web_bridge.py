"""
The bridge's transport adapter on its own, with a stand-in for autobahn's
protocol over a StringTransport: frames to lines and back, pauses, closes.
"""

from __future__ import annotations

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.trial import unittest

from chatroom.errors import BinaryFrame
from chatroom.protocol.web.websocket import FrameTransport, FrontEnd


class FakeSocket:
    """What FrameTransport uses of autobahn's protocol: its state, sends, close."""

    def __init__(self) -> None:
        self.transport = StringTransport()
        self.state = WebSocketProtocol.STATE_OPEN
        self.sent: list[tuple[bytes, bool]] = []
        self.closes: list[int] = []

    def sendMessage(self, payload: bytes, isBinary: bool = False) -> None:
        self.sent.append((payload, isBinary))

    def sendClose(self, code: int) -> None:
        self.closes.append(code)
        self.state = WebSocketProtocol.STATE_CLOSING


class Lines(LineReceiver):
    """An inner connection that keeps its lines, and refusals, in order."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def lineRefused(self, error) -> None:
        self.lines.append(f"refused {error.code}".encode())


class FrameTransportTests(unittest.TestCase):
    def setUp(self) -> None:
        self.socket = FakeSocket()
        front = FrontEnd(None, binary=False, refuses_binary=True, max_frame=5000)
        self.frames = FrameTransport(self.socket, front)
        self.inner = Lines()
        self.frames.connect(self.inner)

    def test_each_line_written_is_one_frame_without_its_line_end(self):
        self.frames.write(b"+OK one\r\n= two\r\n+OK th")
        self.frames.write(b"ree\r\n")
        self.assertEqual(
            self.socket.sent,
            [(b"+OK one", False), (b"= two", False), (b"+OK three", False)],
        )

    def test_a_binary_front_end_sends_binary_frames(self):
        front = FrontEnd(None, binary=True, refuses_binary=False, max_frame=5000)
        frames = FrameTransport(self.socket, front)
        frames.write(b"PING x\r\n")
        self.assertEqual(self.socket.sent, [(b"PING x", True)])

    def test_a_frame_is_a_line_with_its_crlf_and_binary_is_refused(self):
        self.frames.frame_received(b"/ping", False)
        self.frames.frame_received(b"/rooms", True)
        self.assertEqual(self.inner.lines, [b"/ping\r", b"refused bad-encoding"])
        self.assertEqual(BinaryFrame.code, "bad-encoding")

    def test_frames_wait_while_the_inner_connection_does_not_read(self):
        self.inner.pauseProducing()
        self.assertEqual(self.socket.transport.producerState, "paused")
        self.frames.frame_received(b"one", False)
        self.frames.frame_received(b"two", True)
        self.frames.frame_received(b"three", False)
        self.assertEqual(self.inner.lines, [])
        self.inner.resumeProducing()
        self.assertEqual(self.socket.transport.producerState, "producing")
        self.assertEqual(
            self.inner.lines, [b"one\r", b"refused bad-encoding", b"three\r"]
        )

    def test_close_is_the_websocket_close_once_and_then_nothing_is_sent(self):
        self.frames.loseConnection()
        self.frames.loseConnection()
        self.assertEqual(self.socket.closes, [1000])
        self.assertTrue(self.frames.disconnecting)
        self.frames.write(b"late\r\n")
        self.frames.frame_received(b"late", False)
        self.assertEqual((self.socket.sent, self.inner.lines), ([], []))

    def test_abort_aborts_the_socket(self):
        self.frames.abortConnection()
        self.assertTrue(self.frames.disconnecting)
        self.assertTrue(self.socket.transport.disconnecting)

    def test_the_peer_is_the_socket_s(self):
        self.assertEqual(self.frames.getPeer(), self.socket.transport.getPeer())
