"""
The suite's two line clients, speaking the wire of docs/protocol.md: every
command line gets one final reply (C{+OK}/C{-ERR}), after any C{= } data
lines; everything else (messages, notices) arrives unasked.

L{MemoryClient} talks to a factory in the same process over a
L{StringTransport}; L{NetClient} talks to a real listening port.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer, endpoints, reactor, ssl
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

# Every reply over a real socket comes within this, or the test fails.
TIMEOUT = 10.0


def is_final(line: str) -> bool:
    return line.startswith(("+OK", "-ERR"))


def final_replies(lines: list[str]) -> list[str]:
    return [line for line in lines if is_final(line)]


def data_lines(reply: list[str]) -> list[str]:
    """The C{= } data lines of C{reply}, prefix removed."""
    return [line[2:] for line in reply if line.startswith("= ")]


def count_of(n: int, prefix: str = "[") -> Callable[[list[str]], bool]:
    """A predicate for L{NetClient.until}: C{n} lines starting with C{prefix}."""
    return lambda lines: sum(line.startswith(prefix) for line in lines) >= n


class MemoryTransport(StringTransport):
    """
    A StringTransport that tells its client when bytes arrive or the server
    closes.  With a C{bufferSize} it also keeps a send buffer as TCP does:
    past it the streaming producer is paused until L{drain}, as
    FileDescriptor.doWrite would.
    """

    def __init__(self, client: MemoryClient, address: IPv4Address) -> None:
        super().__init__(peerAddress=address)
        self._client = client
        self.bufferSize: int | None = None
        self.pending = 0
        self.aborted = False
        # Calls to write, and what had been written when the server closed.
        self.writes = 0
        self.written_at_close: bytes | None = None

    def write(self, data: bytes) -> None:
        if self.aborted:
            return
        super().write(data)
        self.writes += 1
        self.pending += len(data)
        if self.bufferSize is not None and self.producer is not None:
            if self.streaming and self.pending > self.bufferSize:
                self.producer.pauseProducing()
        self._client._arrived()

    def writeSequence(self, seq) -> None:
        self.write(b"".join(seq))

    def drain(self) -> None:
        """The peer read everything: the buffer empties, the producer resumes."""
        self.pending = 0
        if self.producer is not None:
            self.producer.resumeProducing()

    def loseConnection(self) -> None:
        if self.written_at_close is None:
            self.written_at_close = self.value()
        super().loseConnection()
        self._client._closing()

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()

    # A real transport lets a producer be paused or resumed while closing.
    def pauseProducing(self) -> None:
        if not self.disconnecting:
            super().pauseProducing()

    def resumeProducing(self) -> None:
        if not self.disconnecting:
            super().resumeProducing()


class MemoryClient:
    """
    One connection to a factory in this process, driven in one of two ways.

    Awaiting: L{send} writes a line and fires with the lines received up to
    and including its final reply, once the server (storage and bcrypt in
    threads) has answered; the server's close is a lost connection a turn
    later, as on a network.

    Scripting, for a server that answers inline: L{write} hands the server
    a line, L{command} returns its final reply at once.  With
    C{buffer_size} the test plays the network: output past it pauses the
    server's producer until C{transport.drain()}, and a connection the
    server closes is lost only when the test calls L{close}.

    Either way L{take} returns what arrived since the last read, and the
    greeting is read on connecting (L{greeting}).  Each read the server gets
    is a turn of the reactor: the server's output of that turn (coalesced,
    one write per connection) is flushed as it returns, and reading what
    arrived flushes whatever else is pending, as the turn's end would.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        host: str = "127.0.0.1",
        port: int = 40000,
        buffer_size: int | None = None,
    ) -> None:
        address = IPv4Address("TCP", host, port)
        self.transport = MemoryTransport(self, address)
        self.transport.bufferSize = buffer_size
        self._held = buffer_size is not None
        self._factory = factory
        self.protocol = factory.buildProtocol(address)
        self._read = 0
        # Final replies asked for so far: the contract gives one per line.
        self._expected = 0
        self._waiting: list[tuple[int, defer.Deferred]] = []
        self._receiving = False
        self._scheduled = None
        self.protocol.makeConnection(self.transport)
        self.greeting = self.take()

    def end_turn(self) -> None:
        """Do what the reactor does at the end of a turn: flush the output."""
        flush = getattr(self._factory, "flush_output", None)
        if flush is not None:
            flush()

    def lines(self) -> list[str]:
        """Every complete line received, CRLF removed."""
        self.end_turn()
        *complete, _partial = self.transport.value().split(b"\r\n")
        return [line.decode("utf-8") for line in complete]

    def take(self) -> list[str]:
        """The lines received since the last read."""
        lines = self.lines()
        new, self._read = lines[self._read :], len(lines)
        return new

    def write(self, line: str) -> None:
        """Hand the server one line (CRLF added), expecting nothing."""
        self.write_bytes(line.encode("utf-8") + b"\r\n")

    def write_bytes(self, data: bytes) -> None:
        """Hand the server C{data} as one read, expecting nothing."""
        self._receive(data)

    def command(self, line: str) -> str:
        """Send a line and return the last final reply received by then."""
        self.write(line)
        return final_replies(self.take())[-1]

    def send(self, line: str) -> defer.Deferred[list[str]]:
        """Send one line (LF added); fire with what came back up to its reply."""
        return self.send_bytes(line.encode("utf-8") + b"\n")

    def send_bytes(self, data: bytes, replies: int = 1) -> defer.Deferred[list[str]]:
        """
        Hand C{data} to the protocol as one read; fire once C{replies} more
        final replies have arrived, with every line up to the last of them.
        """
        self._expected += replies
        d: defer.Deferred[list[str]] = defer.Deferred()
        self._waiting.append((self._expected, d))
        self._receive(data)
        self._hand_over()
        return d

    def _receive(self, data: bytes) -> None:
        # Replies to what the protocol can answer at once are handed over
        # after it returns, as the network would, not from inside its write.
        self._receiving = True
        try:
            self.protocol.dataReceived(data)
            self.end_turn()
        finally:
            self._receiving = False
        if self.transport.disconnecting and not self._held:
            self._lost()

    @property
    def closed(self) -> bool:
        return not self.protocol.connected

    @property
    def closing(self) -> bool:
        """The server has closed (or aborted) the connection."""
        return self.transport.disconnecting

    def disconnect(self) -> None:
        """The client goes away."""
        self.transport.loseConnection()
        self._lost()

    def close(self) -> None:
        """The connection is lost, whoever closed it."""
        self._lost()

    def _closing(self) -> None:
        if not self._receiving and not self._held:
            self._lost()

    def _lost(self) -> None:
        if self.protocol.connected:
            self.protocol.connectionLost(Failure(ConnectionDone()))

    def _arrived(self) -> None:
        # Bytes written from a callback reach the client on a later turn of
        # the reactor, once the server has finished what it was doing.
        if self._receiving or not self._waiting or self._scheduled is not None:
            return
        self._scheduled = reactor.callLater(0, self._hand_over)

    def _hand_over(self) -> None:
        if self._scheduled is not None:
            if self._scheduled.active():
                self._scheduled.cancel()
            self._scheduled = None
        lines = self.lines()
        finals = [i for i, line in enumerate(lines) if is_final(line)]
        ready = [(n, d) for n, d in self._waiting if len(finals) >= n]
        for entry in ready:
            self._waiting.remove(entry)
        for wanted, d in ready:
            end = finals[wanted - 1] + 1
            reply, self._read = lines[self._read : end], max(self._read, end)
            d.callback(reply)


class NetClient(LineReceiver):
    """
    A scripted user on a real socket: L{send} fires with the final reply
    and its data lines; the lines that arrive unasked are kept in L{pushed}.
    """

    delimiter = b"\r\n"

    def __init__(self) -> None:
        self.pushed: list[str] = []  # messages and notices, in arrival order
        self._data: list[str] = []
        self._replies: list[defer.Deferred] = []
        self._watchers: list[tuple[Callable[[list[str]], bool], defer.Deferred]] = []
        self.closed: defer.Deferred[None] = defer.Deferred()

    def lineReceived(self, raw: bytes) -> None:
        line = raw.decode("utf-8")
        if is_final(line):
            data, self._data = self._data, []
            self._replies.pop(0).callback((line, data))
        elif line.startswith("= "):
            self._data.append(line[2:])
        else:
            self.pushed.append(line)
            for entry in list(self._watchers):
                if entry[0](self.pushed):
                    self._watchers.remove(entry)
                    entry[1].callback(self.pushed)

    def connectionLost(self, reason: Failure) -> None:
        self.closed.callback(None)
        # Nothing more will come: whoever still waits hears why at once.
        waiting = self._replies + [d for _, d in self._watchers]
        self._replies, self._watchers = [], []
        for d in waiting:
            d.errback(reason)

    def send(self, line: str) -> defer.Deferred[tuple[str, list[str]]]:
        """Send C{line}; fires with (final reply line, data lines)."""
        d: defer.Deferred = defer.Deferred()
        self._replies.append(d)
        self.sendLine(line.encode("utf-8"))
        return d.addTimeout(TIMEOUT, reactor)

    def ok(self, line: str) -> defer.Deferred[list[str]]:
        """Send C{line}, insist on +OK, fire with the data lines."""

        def insist(reply: tuple[str, list[str]]) -> list[str]:
            if not reply[0].startswith("+OK"):
                raise AssertionError(f"{line!r} got {reply[0]!r}")
            return reply[1]

        return self.send(line).addCallback(insist)

    def until(
        self, predicate: Callable[[list[str]], bool], timeout: float = 5.0
    ) -> defer.Deferred[list[str]]:
        """Fires with L{pushed} once it satisfies C{predicate}."""
        if predicate(self.pushed):
            return defer.succeed(self.pushed)
        d: defer.Deferred = defer.Deferred()
        self._watchers.append((predicate, d))
        return d.addTimeout(timeout, reactor)

    def wait_for(self, fragment: str) -> defer.Deferred[str]:
        """The first pushed line, arrived or to come, containing C{fragment}."""

        def first(lines: list[str]) -> str:
            return next(line for line in lines if fragment in line)

        seen = self.until(lambda lines: any(fragment in x for x in lines), TIMEOUT)
        return seen.addCallback(first)

    def messages(self) -> list[str]:
        """The room and private messages pushed so far."""
        return [line for line in self.pushed if line.startswith("[")]


async def connect(port: int) -> NetClient:
    """A client on 127.0.0.1:C{port}, its greeting received."""
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    return await _greeted(await endpoints.connectProtocol(endpoint, NetClient()))


async def connect_tls(port: int, ca_pem: bytes, hostname: str = "localhost"):
    """
    Connect over TLS, verifying the server against C{ca_pem} for
    C{hostname}; a failed verification fails the first L{NetClient.send}.
    """
    options = ssl.optionsForClientTLS(hostname, ssl.Certificate.loadPEM(ca_pem))
    endpoint = endpoints.wrapClientTLS(
        options, endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    )
    return await endpoints.connectProtocol(endpoint, NetClient())


async def _greeted(client: NetClient) -> NetClient:
    await client.until(count_of(1, "* welcome"), TIMEOUT)
    return client


async def log_in(client: NetClient, name: str, password: str) -> NetClient:
    """Register C{client} as C{name}, or log it in if the name is taken."""
    reply, _ = await client.send(f"/register {name} {password}")
    if reply.startswith("-ERR name-taken"):
        await client.ok(f"/login {name} {password}")
    elif not reply.startswith("+OK"):
        raise AssertionError(f"/register {name} got {reply!r}")
    return client
