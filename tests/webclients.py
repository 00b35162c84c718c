"""
Clients of the web port for the suite: L{WebClient}, a L{NetClient} whose
lines are WebSocket frames (autobahn's client), and L{http_get} for the
page, its files and refused upgrades.
"""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor, ssl
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from tests.clients import TIMEOUT, NetClient, count_of

# What a browser sends to open a socket, without its Origin.
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


class WebClient(NetClient):
    """
    A scripted user over a WebSocket: each line it sends is a text frame,
    each text frame received a line; L{frames} keeps every frame as it
    came (payload, binary), and L{close_code} the code the socket closed with.
    """

    def __init__(self) -> None:
        super().__init__()
        self.socket: _Socket | None = None
        self.frames: list[tuple[bytes, bool]] = []
        self.close_code: int | None = None
        self.subprotocol: str | None = None

    def sendLine(self, line: bytes) -> None:
        self.socket.sendMessage(line)

    def send_frame(
        self,
        payload: bytes,
        binary: bool = False,
        replies: int = 0,
        fragment: int | None = None,
    ) -> defer.Deferred[list[tuple[str, list[str]]]]:
        """
        Send C{payload} as one message, as is (in fragments of C{fragment}
        bytes if given); fires with the C{replies} final replies (and their
        data lines) it gets.
        """
        waiting: list[defer.Deferred] = [defer.Deferred() for _ in range(replies)]
        self._replies.extend(waiting)
        self.socket.sendMessage(payload, isBinary=binary, fragmentSize=fragment)
        return defer.gatherResults(waiting).addTimeout(TIMEOUT, reactor)


class _Socket(WebSocketClientProtocol):
    client: WebClient

    def onConnect(self, response) -> None:
        self.client.subprotocol = response.protocol

    def onOpen(self) -> None:
        self.client.socket = self
        self.client.transport = self.transport
        self.factory.opened.callback(self.client)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.client.frames.append((payload, isBinary))
        self.client.lineReceived(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.client.close_code = code
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"refused: {code} {reason}"))
        else:
            self.client.connectionLost(Failure(ConnectionDone()))


class _Factory(WebSocketClientFactory):
    def __init__(self, client: WebClient, **kwargs) -> None:
        super().__init__(**kwargs)
        self.client = client
        self.opened: defer.Deferred[WebClient] = defer.Deferred()

    def buildProtocol(self, addr) -> _Socket:
        socket = super().buildProtocol(addr)
        socket.client = self.client
        return socket


async def open_web(
    port: int,
    protocols: list[str] | None = None,
    origin: str | None = None,
    path: str = "/ws",
    ca_pem: bytes | None = None,
) -> WebClient:
    """
    A WebSocket to 127.0.0.1:C{port}, open (nothing awaited on it yet);
    with C{ca_pem}, over TLS to a server it verifies as C{localhost}.
    """
    client = WebClient()
    scheme, host = ("wss", "localhost") if ca_pem else ("ws", "127.0.0.1")
    factory = _Factory(
        client,
        url=f"{scheme}://{host}:{port}{path}",
        protocols=protocols,
        origin=origin,
    )
    factory.protocol = _Socket
    if ca_pem is None:
        reactor.connectTCP("127.0.0.1", port, factory)
    else:
        options = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(ca_pem))
        reactor.connectSSL("127.0.0.1", port, factory, options)
    return await factory.opened.addTimeout(TIMEOUT, reactor)


async def connect_web(port: int, **kwargs) -> WebClient:
    """A line-protocol client over a WebSocket, its greeting received."""
    client = await open_web(port, **kwargs)
    await client.until(count_of(1, "* welcome"), TIMEOUT)
    return client


async def http_get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Headers, bytes]:
    """GET C{path} on 127.0.0.1:C{port}: the status, the headers, the body."""
    agent = Agent(reactor)
    request_headers = Headers({k: [v] for k, v in (headers or {}).items()})
    response = await agent.request(
        b"GET", f"http://127.0.0.1:{port}{path}".encode(), request_headers
    )
    body = await readBody(response)
    return response.code, response.headers, body
