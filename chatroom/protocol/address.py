"""
The connection under a protocol: who is at the other end, its TCP socket
(looking through TLS), the socket options every front end sets, and a sniff
of the first bytes for a client that speaks the wrong protocol.
"""

from __future__ import annotations

import socket


def address_of(addr) -> str:
    """What connections are counted by: the IP address, whatever the port."""
    return getattr(addr, "host", None) or str(addr)


def tcp_socket(transport) -> socket.socket | None:
    """The TCP socket under C{transport}, looking through TLS; else None."""
    while transport is not None:
        handle = getattr(transport, "getHandle", lambda: None)()
        if isinstance(handle, socket.socket):
            if handle.family in (socket.AF_INET, socket.AF_INET6):
                return handle
            return None
        transport = getattr(transport, "transport", None)
    return None


def set_user_timeout(transport, seconds: float) -> bool:
    """
    Ask the kernel to drop the connection once sent data stays unacknowledged
    for C{seconds} (Linux C{TCP_USER_TIMEOUT}): how a ping finds a dead peer.
    Returns whether it could.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    handle = tcp_socket(transport)
    if option is None or handle is None:
        return False
    handle.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))
    return True


def set_no_delay(transport) -> bool:
    """
    Send small writes at once (C{TCP_NODELAY}), each its own segment.
    Without it (Nagle's algorithm), a small write waits while an earlier
    one is unacknowledged, and leaves with whatever joined it: far fewer
    segments to a client that falls behind, for a wait of up to a round
    trip, longer if the client delays its ACKs.  Returns whether it could.
    """
    handle = tcp_socket(transport)
    if handle is None:
        return False
    handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


# The first bytes of something that is not a telnet user.
_HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ")
_HTTP_METHODS += (b"CONNECT ", b"PATCH ", b"TRACE ", b"PRI ")


def looks_like_tls(prefix: bytes) -> bool:
    """A TLS record: handshake type 0x16, then major version 3."""
    return prefix[:2] == b"\x16\x03"


def looks_like_http(line: bytes) -> bool:
    """An HTTP request line: METHOD TARGET HTTP/x."""
    return line.startswith(_HTTP_METHODS) and b" HTTP/" in line
