"""
The bridge's transport adapter on its own, with a stand-in for autobahn's
protocol over a StringTransport: frames to lines and back, pauses, closes.
"""

from __future__ import annotations

import struct

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.trial import unittest

from chatroom.errors import BinaryFrame
from chatroom.protocol.web.websocket import FrameTransport, FrontEnd


def frames_in(data: bytes) -> list[tuple[bytes, bool]]:
    """Server frames (final, unmasked) as (payload, binary), as a browser reads them."""
    frames = []
    while data:
        first, size = data[0], data[1]
        assert first in (0x81, 0x82) and size < 128, data[:2]
        start = 2
        if size == 126:
            size, start = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            size, start = struct.unpack("!Q", data[2:10])[0], 10
        frames.append((data[start : start + size], first == 0x82))
        data = data[start + size :]
    return frames


class CountingTransport(StringTransport):
    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


class FakeSocket:
    """What FrameTransport uses of autobahn's protocol: its state, its close."""

    def __init__(self) -> None:
        self.transport = CountingTransport()
        self.state = WebSocketProtocol.STATE_OPEN
        self.closes: list[int] = []

    @property
    def sent(self) -> list[tuple[bytes, bool]]:
        return frames_in(self.transport.value())

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

    def test_a_turn_s_lines_go_out_in_one_write(self):
        self.frames.write(b"+OK one\r\n+OK two\r\n")
        self.assertEqual(self.socket.transport.writes, 1)
        self.assertEqual(
            self.socket.transport.value(), b"\x81\x07+OK one\x81\x07+OK two"
        )

    def test_each_size_of_line_gets_the_header_its_length_needs(self):
        for size in (0, 125, 126, 65535, 65536):
            with self.subTest(size=size):
                self.socket.transport.clear()
                self.frames.write(b"x" * size + b"\r\n")
                self.assertEqual(self.socket.sent, [(b"x" * size, False)])

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
