"""
Read markers (IRCv3 read-marker): per account and target, the time up to
which the account has read, which only ever moves forward.
"""

from __future__ import annotations

from chatroom.storage.database import Cursor


def read_marker_of(cursor: Cursor, user_id: int, target_key: str) -> int | None:
    """The time (ms) the account has read C{target_key} up to, or None."""
    row = cursor.execute(
        "SELECT read_at FROM read_markers WHERE user_id = ? AND target_key = ?",
        (user_id, target_key),
    ).fetchone()
    return None if row is None else row[0]


def advance_read_marker(cursor: Cursor, user_id: int, target_key: str, at: int) -> int:
    """
    Move the marker to C{at} unless it is there or later already; the
    stored time, in the one transaction, so two clients racing agree.
    """
    cursor.execute(
        "INSERT INTO read_markers (user_id, target_key, read_at) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, target_key) DO UPDATE SET read_at = excluded.read_at"
        " WHERE excluded.read_at > read_markers.read_at",
        (user_id, target_key, at),
    )
    return read_marker_of(cursor, user_id, target_key)
