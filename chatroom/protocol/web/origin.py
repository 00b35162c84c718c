"""
Which browser origins may open the web port's WebSocket: the page's own
(the scheme and the Host header of the request) and the C{--web-origin}s.
A page of any other origin is refused, so no other site can borrow a
visitor's browser to talk to this server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(origin: str) -> str | None:
    """
    C{scheme://host[:port]} as a browser sends it in Origin: lowercase, the
    scheme's default port left out; None if it is not an http(s) origin.
    """
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_allowed(
    origin: str, host: str | None, secure: bool, others: frozenset[str]
) -> bool:
    """
    Whether a page of C{origin} may open the socket of a request for
    C{host} (its Host header) over TLS or not: its own origin, or one of
    C{others} (normalised).
    """
    normal = normal_origin(origin)
    if normal is None:
        return False
    if normal in others:
        return True
    if host is None:
        return False
    scheme = "https" if secure else "http"
    return normal == normal_origin(f"{scheme}://{host}")
