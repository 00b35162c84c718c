"""
A line client for tests over real sockets: sends a line, waits for its final
reply, and keeps the lines that arrive in between (messages, notices).
"""

from __future__ import annotations

from twisted.internet import defer, endpoints, reactor, ssl
from twisted.protocols.basic import LineReceiver

TIMEOUT = 10.0


class LineClient(LineReceiver):
    delimiter = b"\r\n"

    def __init__(self) -> None:
        self.pushed: list[str] = []  # messages and notices, in arrival order
        self._data: list[str] = []
        self._waiting: list[defer.Deferred] = []
        self._pushed_waiters: list[tuple[str, defer.Deferred]] = []
        self.closed: defer.Deferred = defer.Deferred()

    def lineReceived(self, raw: bytes) -> None:
        line = raw.decode("utf-8")
        if line.startswith(("+OK", "-ERR")):
            d = self._waiting.pop(0)
            data, self._data = self._data, []
            d.callback((line, data))
        elif line.startswith("= "):
            self._data.append(line[2:])
        else:
            self.pushed.append(line)
            for waiter in list(self._pushed_waiters):
                if waiter[0] in line:
                    self._pushed_waiters.remove(waiter)
                    waiter[1].callback(line)

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)
        for d in self._waiting:
            d.errback(reason)

    def send(self, line: str) -> defer.Deferred:
        """Send C{line}; fires with (final reply line, data lines)."""
        d: defer.Deferred = defer.Deferred()
        self._waiting.append(d)
        self.sendLine(line.encode("utf-8"))
        return d.addTimeout(TIMEOUT, reactor)

    async def ok(self, line: str) -> list[str]:
        """Send C{line}, insist on +OK, return the data lines."""
        reply, data = await self.send(line)
        if not reply.startswith("+OK"):
            raise AssertionError(f"{line!r} got {reply!r}")
        return data

    def wait_for(self, fragment: str) -> defer.Deferred:
        """The first pushed line, arrived or to come, containing C{fragment}."""
        for line in self.pushed:
            if fragment in line:
                return defer.succeed(line)
        d: defer.Deferred = defer.Deferred()
        self._pushed_waiters.append((fragment, d))
        return d.addTimeout(TIMEOUT, reactor)


async def connect(port: int) -> LineClient:
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    return await endpoints.connectProtocol(endpoint, LineClient())


async def connect_tls(port: int, ca_pem: bytes, hostname: str = "localhost"):
    """Connect over TLS, verifying the server against C{ca_pem} for C{hostname}."""
    options = ssl.optionsForClientTLS(hostname, ssl.Certificate.loadPEM(ca_pem))
    endpoint = endpoints.wrapClientTLS(
        options, endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    )
    return await endpoints.connectProtocol(endpoint, LineClient())
