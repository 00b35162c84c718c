"""
IRCv3 batches: C{start} opens one and gives its reference, which the
lines inside carry as a C{batch} tag; C{end} closes it.  Callers open one
only for a client that has negotiated C{batch} (L{enabled}).
"""

from __future__ import annotations

from itertools import count

from chatroom.protocol.irc import wire

# References need only differ on one connection; one count serves them all.
_references = count(1)


def enabled(conn) -> bool:
    return "batch" in conn.caps


def start(conn, kind: str, *params: str, tags: dict | None = None) -> str:
    """Open a batch of C{kind} on C{conn}; its reference, for L{end}."""
    ref = f"b{next(_references)}"
    conn.write(
        wire.line("BATCH", f"+{ref}", kind, *params, source=conn.server, tags=tags)
    )
    return ref


def end(conn, ref: str) -> None:
    conn.write(wire.line("BATCH", f"-{ref}", source=conn.server))
