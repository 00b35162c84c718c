"""
The WebSocket bridge: a browser's socket carries a real front end's
connection.  Each text frame in is one line for an inner L{LineProtocol}
(or L{IRCProtocol}), built by the real line (or IRC) factory and read
through its own framing, so its limits, UTF-8 rules, flood gate and reply
pipeline apply unchanged; each line it writes goes out as one frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from chatroom.errors import BinaryFrame
from chatroom.protocol.connection import CLOSE_GRACE
from chatroom.protocol.factory import ChatFactory
from chatroom.protocol.output import write_now
from chatroom.protocol.web import wire

# What a frame may hold beyond its front end's line limit and still reach
# the front end, which refuses it in its own words (-ERR line-too-long,
# 417) and keeps the connection; a longer frame closes it (1009).
FRAME_SLACK = 1024

LINE = "chatroom.line"
IRC_TEXT = "text.ircv3.net"
IRC_BINARY = "binary.ircv3.net"


@dataclass(frozen=True)
class FrontEnd:
    """
    What a subprotocol carries: the factory whose connection it wraps,
    whether its frames out are binary, whether binary frames in are
    refused (not lines), and the largest frame it reads.
    """

    factory: ChatFactory
    binary: bool
    refuses_binary: bool
    max_frame: int


@implementer(ITransport, IPushProducer)
class FrameTransport:
    """
    The transport of the inner connection: its writes become frames, its
    close the WebSocket close, its pauses the socket's.

    What is unsent is what the socket under autobahn buffers (frames are
    written to it at once): C{transport} and C{wrappedProtocol}
    let the inner connection's output queue look through to it, as it
    looks through TLS, and register there as the producer.
    """

    # The output queue: bytes written here are in the socket's buffer at
    # once (TLS below still hands them on a turn later).
    writes_at_once = True

    def __init__(self, socket: WebSocketBridge, front: FrontEnd) -> None:
        self.socket = socket
        self.transport = socket.transport
        self.front = front
        self.wrappedProtocol: Protocol | None = None
        self._partial = b""
        self._closing = False
        # Frames read while the inner connection does not read.
        self._frames: deque[tuple[bytes, bool]] = deque()
        self._delivering = False

    @property
    def disconnecting(self) -> bool:
        return self._closing or self.socket.state != WebSocketProtocol.STATE_OPEN

    def connect(self, inner: Protocol) -> None:
        self.wrappedProtocol = inner
        inner.makeConnection(self)

    def connection_lost(self, reason: Failure) -> None:
        self._frames.clear()
        self.wrappedProtocol.connectionLost(reason)

    # Frames in

    def frame_received(self, payload: bytes, binary: bool) -> None:
        self._frames.append((payload, binary))
        self._deliver()

    def _deliver(self) -> None:
        # One frame at a time, and none while the inner connection stops
        # reading (a command in flight, output backed up, the byte rate):
        # the frames wait, in order, and the socket is paused meanwhile.
        if self._delivering:
            return
        self._delivering = True
        inner = self.wrappedProtocol
        try:
            while self._frames and not getattr(inner, "paused", False):
                if self.disconnecting:
                    self._frames.clear()
                    break
                payload, binary = self._frames.popleft()
                if binary and self.front.refuses_binary:
                    inner.lineRefused(BinaryFrame())
                else:
                    inner.dataReceived(payload + b"\r\n")
        finally:
            self._delivering = False

    # Lines out

    def write(self, data: bytes) -> None:
        # Framed here, in one write to the socket, rather than one
        # sendMessage per line: a room message goes to every member, and
        # autobahn's costs ten times a write.  Autobahn writes its own
        # frames (pong, close) straight to the socket too, so the order holds.
        if self.disconnecting:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        if lines:
            binary = self.front.binary
            frames = [wire.frame(line.removesuffix(b"\r"), binary) for line in lines]
            write_now(self.transport, b"".join(frames))

    def writeSequence(self, data) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if self.disconnecting:
            return
        self._closing = True
        self.socket.sendClose(WebSocketProtocol.CLOSE_STATUS_CODE_NORMAL)

    def abortConnection(self) -> None:
        self._closing = True
        self.transport.abortConnection()

    def getPeer(self):
        return self.transport.getPeer()

    def getHost(self):
        return self.transport.getHost()

    # The socket's producer and consumer, passed through

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()
        self._deliver()

    def stopProducing(self) -> None:
        self.transport.stopProducing()

    def registerProducer(self, producer, streaming: bool) -> None:
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.transport.unregisterProducer()


class WebSocketBridge(WebSocketServerProtocol):
    """One browser socket: the subprotocol chosen, then the inner connection."""

    def __init__(self) -> None:
        super().__init__()
        self.front: FrontEnd | None = None
        self.frames: FrameTransport | None = None

    def onConnect(self, request) -> str | None:
        name, front = self.factory.choose(request.protocols)
        self.front = front
        # Autobahn reads its limits from the protocol while it parses.
        self.maxFramePayloadSize = self.maxMessagePayloadSize = front.max_frame
        return name

    def onOpen(self) -> None:
        # The HTTP channel that read the upgrade is still the socket's
        # producer: the inner connection's output queue registers there.
        self.transport.unregisterProducer()
        self.frames = FrameTransport(self, self.front)
        self.frames.connect(self.front.factory.buildProtocol(self.transport.getPeer()))

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.frames.frame_received(payload, isBinary)

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        # Autobahn leaves the timer of a close the peer never answered
        # armed, holding this connection for the grace period.
        timer, self.closeHandshakeTimeoutCall = self.closeHandshakeTimeoutCall, None
        if timer is not None:
            timer.cancel()
        frames, self.frames = self.frames, None
        if frames is not None:
            frames.connection_lost(reason)


class BridgeFactory(WebSocketServerFactory):
    """
    The WebSocket side of the web port: which front end each subprotocol
    carries.  A client offering none gets the line protocol; one offering
    several gets the first it names that we speak (the IRCv3 rule).
    """

    protocol = WebSocketBridge

    def __init__(self, fronts: dict[str, FrontEnd], default: str = LINE) -> None:
        super().__init__(server=None)
        self.fronts = fronts
        self.default = default
        self.setProtocolOptions(
            # A refusal says why in a close frame, rather than a dropped socket.
            failByDrop=False,
            # A closing connection sends what is queued first (Connection's grace).
            closeHandshakeTimeout=CLOSE_GRACE,
            # The inner connection pings, as on its own port.
            autoPingInterval=0,
        )

    def choose(self, offered: list[str]) -> tuple[str | None, FrontEnd]:
        """The subprotocol to answer with (None: none named) and its front end."""
        for name in offered:
            if name in self.fronts:
                return name, self.fronts[name]
        return None, self.fronts[self.default]


def bridge_factory(line: ChatFactory, irc: ChatFactory | None) -> BridgeFactory:
    """The subprotocols: the line protocol's, and IRC's two if IRC is given."""
    fronts = {
        LINE: FrontEnd(
            line,
            binary=False,
            refuses_binary=True,
            max_frame=line.protocol.max_line + FRAME_SLACK,
        )
    }
    if irc is not None:
        irc_frame = irc.protocol.max_line + FRAME_SLACK
        for name, binary in ((IRC_TEXT, False), (IRC_BINARY, True)):
            fronts[name] = FrontEnd(
                irc, binary=binary, refuses_binary=False, max_frame=irc_frame
            )
    return BridgeFactory(fronts)
