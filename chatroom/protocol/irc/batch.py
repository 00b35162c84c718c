"""
IRCv3 batches: C{start} opens one and gives its reference for the lines
inside to tag (C{batch=REF}), C{end} closes it.  A client that has not
negotiated C{batch} gets the same lines, unframed: both return or take
None for it.
"""

from __future__ import annotations

from itertools import count

from chatroom.protocol.irc import wire

# References need only differ on one connection; one count serves them all.
_references = count(1)


def start(conn, kind: str, *params: str, tags: dict | None = None) -> str | None:
    """Open a batch of C{kind} on C{conn}; its reference, or None without batch."""
    if "batch" not in conn.caps:
        return None
    ref = f"b{next(_references)}"
    conn.write(
        wire.line("BATCH", f"+{ref}", kind, *params, source=conn.server, tags=tags)
    )
    return ref


def end(conn, ref: str | None) -> None:
    """Close the batch C{ref} that L{start} opened (nothing if it opened none)."""
    if ref is not None:
        conn.write(wire.line("BATCH", f"-{ref}", source=conn.server))
