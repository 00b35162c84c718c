"""The web port's listening factory: an HTTP site with the bridge at C{/ws}."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from autobahn.twisted.resource import WebSocketResource
from twisted.web import server

from chatroom.protocol.factory import ChatFactory
from chatroom.protocol.web.resource import STATIC, Root, WebRequest, WebSocketEntry
from chatroom.protocol.web.websocket import bridge_factory

# Seconds an HTTP connection may stay idle between requests.
HTTP_IDLE = 60


def web_site(
    line: ChatFactory,
    irc: ChatFactory | None = None,
    origins: Iterable[str] = (),
    static: Path = STATIC,
) -> server.Site:
    """
    The site of C{--web-port}: the page from C{static}, and WebSockets
    carrying connections of C{line} (and of C{irc}, if given), which count
    them, limit them and say goodbye to them as their own.  C{origins} are
    the browser origins allowed besides the page's own (normalised).
    """
    bridge = bridge_factory(line, irc)
    entry = WebSocketEntry(WebSocketResource(bridge), frozenset(origins))
    site = server.Site(Root(static, entry), timeout=HTTP_IDLE)
    site.requestFactory = WebRequest
    return site
