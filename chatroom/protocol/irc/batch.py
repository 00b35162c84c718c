"""
IRCv3 batches: C{BATCH +ref type params...}, the lines of the batch tagged
C{batch=ref}, then C{BATCH -ref}.  A connection numbers its own references;
callers send a batch only to a client with the C{batch} capability
(L{enabled}).
"""

from __future__ import annotations

from chatroom.protocol.irc import wire
from chatroom.protocol.irc.message import with_tags


def enabled(conn) -> bool:
    return "batch" in conn.caps


def new_ref(conn) -> str:
    """A reference unique on C{conn}: letters and digits, as the spec asks."""
    conn.batch_refs += 1
    return f"b{conn.batch_refs}"


def start(conn, kind: str, *params: str, tags: dict | None = None) -> str:
    """Open a batch of C{kind} on C{conn}; its reference, for L{tag} and L{end}."""
    ref = new_ref(conn)
    conn.write(
        wire.line("BATCH", f"+{ref}", kind, *params, source=conn.server, tags=tags)
    )
    return ref


def end(conn, ref: str, tags: dict | None = None) -> None:
    conn.write(wire.line("BATCH", f"-{ref}", source=conn.server, tags=tags))


def tag(ref: str) -> dict[str, str]:
    """The tags a line inside batch C{ref} carries."""
    return {"batch": ref}


def within(ref: str, lines: bytes) -> bytes:
    """Encoded C{lines} put inside batch C{ref}; a line already in a batch stays
    in it (a nested batch's own lines)."""
    tagged = ("batch=" + ref).encode("ascii")
    return b"".join(
        line + b"\r\n" if _in_a_batch(line) else with_tags(line + b"\r\n", tagged)
        for line in lines.split(b"\r\n")
        if line
    )


def _in_a_batch(line: bytes) -> bool:
    if not line.startswith(b"@"):
        return False
    tags = line[1:].split(b" ", 1)[0]
    return any(item.startswith(b"batch=") for item in tags.split(b";"))
