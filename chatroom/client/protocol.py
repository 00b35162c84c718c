"""
The client's end of the line protocol: requests paired with their replies
by counting, everything else handed on as events.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chatroom.client.lines import Data, Err, Final, Ok, ServerLine, parse_line


@dataclass(frozen=True)
class Reply:
    """The server's answer to one request: its data lines and final line."""

    final: Final
    data: tuple[Data, ...] = ()


@dataclass
class _Waiting:
    reply: Deferred[Reply]
    data: list[Data] = field(default_factory=list)


@implementer(IHandshakeListener)
class ChatClientProtocol(LineReceiver):
    """
    Sends requests and pairs each with its reply: the server answers every
    line with exactly one C{+OK} or C{-ERR}, in order, after any C{=} data
    lines. Messages and notices in between go to the event sink.

    C{ready} fires once requests may be sent: on connection for TCP, after
    the handshake for TLS, so the peer certificate can be checked first.
    C{closed} fires with the exception saying why once the connection is
    gone (C{ConnectionDone} when it was closed cleanly).
    """

    # Lines arrive ending in CRLF, but a bare LF is tolerated; lines are sent
    # with CRLF as telnet would.
    delimiter = b"\n"
    # Room for a 4096-byte message plus its "[room] sender: " prefix.
    MAX_LENGTH = 16384

    def __init__(self) -> None:
        self.ready: Deferred[None] = Deferred()
        self.closed: Deferred[BaseException] = Deferred()
        self._waiting: deque[_Waiting] = deque()
        self._sink: Callable[[ServerLine], None] | None = None
        self._held: list[ServerLine] = []

    def connectionMade(self) -> None:
        if not ISSLTransport.providedBy(self.transport):
            self.ready.callback(None)

    def handshakeCompleted(self) -> None:
        self.ready.callback(None)

    def peer_certificate_pem(self) -> bytes:
        """The server's TLS certificate, once C{ready} has fired."""
        return (
            self.transport.getPeerCertificate()
            .to_cryptography()
            .public_bytes(Encoding.PEM)
        )

    def deliver_events_to(self, sink: Callable[[ServerLine], None]) -> None:
        """
        Hand server lines that answer no request to C{sink}, starting with
        any held back until the caller had checked the connection.
        """
        self._sink = sink
        held, self._held = self._held, []
        for line in held:
            sink(line)

    def request(self, line: str) -> Deferred[Reply]:
        """Send one line; the result is the server's reply to it."""
        waiting = _Waiting(Deferred())
        self._waiting.append(waiting)
        self.sendLine(line.encode("utf-8"))
        return waiting.reply

    def sendLine(self, line: bytes) -> None:
        self.transport.write(line + b"\r\n")

    def lineReceived(self, raw: bytes) -> None:
        line = parse_line(raw.removesuffix(b"\r").decode("utf-8", "replace"))
        if self._waiting and isinstance(line, Data):
            self._waiting[0].data.append(line)
        elif self._waiting and isinstance(line, Ok | Err):
            waiting = self._waiting.popleft()
            waiting.reply.callback(Reply(line, tuple(waiting.data)))
        elif self._sink is None:
            self._held.append(line)
        else:
            self._sink(line)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.ready.called:
            self.ready.errback(reason)
        # Closed first, so whoever awaits a reply can tell its failure is
        # this connection's end.
        self.closed.callback(reason.value)
        waiting, self._waiting = self._waiting, deque()
        for each in waiting:
            each.reply.errback(reason)
