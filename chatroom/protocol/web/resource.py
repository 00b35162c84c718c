"""
The web port's HTTP side: the page at C{/}, its files under C{/static/},
the WebSocket at C{/ws}; the security headers on every response, and the
Origin check before a socket opens.
"""

from __future__ import annotations

from pathlib import Path

from autobahn.twisted.resource import WebSocketResource
from twisted.web import server
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.static import File

from chatroom.protocol.web.origin import origin_allowed

STATIC = Path(__file__).parent / "static"

# The page runs only its own scripts and styles, talks only to its own
# server, and is framed by nobody; no response is sniffed for another type.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    b"Content-Security-Policy": CONTENT_SECURITY_POLICY.encode(),
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
}


class WebRequest(server.Request):
    """A request whose every response carries the security headers."""

    def process(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.setHeader(name, value)
        super().process()


class StaticFiles(File):
    """
    The page's files: no directory listing, no scripts run, and a fixed
    type per extension (a module script must be served as JavaScript, and
    nosniff forbids the browser to guess).
    """

    contentTypes = {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".json": "application/json",
        ".webmanifest": "application/manifest+json",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
        ".txt": "text/plain; charset=utf-8",
        ".woff2": "font/woff2",
    }
    # A directory is never a page: the page is at /, not /static/.
    indexNames: list[str] = []
    processors: dict = {}

    def __init__(self, path: str | Path) -> None:
        super().__init__(str(path), defaultType="application/octet-stream")

    def getChild(self, path: bytes, request: server.Request) -> IResource:
        # A NUL byte (%00) makes the file system call raise: not a file.
        if b"\0" in path:
            return notFound()
        return super().getChild(path, request)

    def createSimilarFile(self, path: str) -> StaticFiles:
        return StaticFiles(path)

    def directoryListing(self) -> IResource:
        return notFound()


def wants_websocket(request: server.Request) -> bool:
    upgrade = request.getHeader("upgrade") or ""
    return request.method == b"GET" and "websocket" in upgrade.lower()


class WebSocketEntry(Resource):
    """
    Where a socket opens: a request from a page of a foreign origin is
    refused (403) before autobahn sees it; one with no Origin (not a
    browser) or from the page's own origin (or a C{--web-origin}) opens.
    """

    isLeaf = True

    def __init__(self, socket: WebSocketResource, origins: frozenset[str]) -> None:
        super().__init__()
        self.socket = socket
        self.origins = origins

    def render(self, request: server.Request):
        if not wants_websocket(request):
            request.setResponseCode(426, b"Upgrade Required")
            request.setHeader(b"Upgrade", b"websocket")
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"This is the chat's WebSocket: open it with a WebSocket client.\n"
        origin = request.getHeader("origin")
        if origin is not None and not origin_allowed(
            origin, request.getHeader("host"), request.isSecure(), self.origins
        ):
            request.setResponseCode(403)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"A page of this origin may not open the chat's WebSocket.\n"
        return self.socket.render(request)


class Root(Resource):
    """
    C{/} is the page; an upgrade asked at C{/} opens the WebSocket too, as
    IRC web clients (and irctest) connect to a bare C{ws://host:port}.
    """

    def __init__(self, static: Path, websocket: WebSocketEntry) -> None:
        super().__init__()
        self.index = StaticFiles(static / "index.html")
        self.websocket = websocket
        self.putChild(b"static", StaticFiles(static))
        self.putChild(b"ws", websocket)

    def getChild(self, name: bytes, request: server.Request) -> IResource:
        if name == b"" and not request.postpath:
            return self.websocket if wants_websocket(request) else self.index
        return notFound()
