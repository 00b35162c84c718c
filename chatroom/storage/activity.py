"""
The activity log: what each account did, and the entry it returns.  Events
that come with every TCP connection, logged in or not, are not a row each
but a count per day (C{activity_counts}); entries older than the retention
are deleted a batch at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chatroom.storage.database import Cursor, ManyRows

# Appended (see Database.append): nothing in a batch reads an entry back.
INSERT_ACTIVITY = ManyRows(
    "INSERT INTO activity (at, user_id, actor, event, detail) VALUES {rows}", width=5
)
# Counted, not logged: a login is logged, with its address, on its own.
COUNTED_EVENTS = frozenset({"connect"})
# Appended too: each row adds one to its day's count of its event.  Not
# ManyRows: PostgreSQL refuses one statement updating a row twice.
COUNT_ACTIVITY = (
    "INSERT INTO activity_counts (day, event, count) VALUES (?, ?, 1)"
    " ON CONFLICT (day, event) DO UPDATE SET count = activity_counts.count + 1"
)


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    at: int
    actor: str
    event: str
    detail: str


def last_activity_of(cursor: Cursor, user_id: int, limit: int) -> list[ActivityEntry]:
    """The last C{limit} entries of a user's activity, oldest first."""
    cursor.execute(
        "SELECT at, actor, event, detail FROM activity WHERE user_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (user_id, limit),
    )
    return [ActivityEntry(*row) for row in reversed(cursor.fetchall())]


def day_of(at: int) -> str:
    """The UTC day of a time in milliseconds, as activity_counts keys it."""
    return time.strftime("%Y-%m-%d", time.gmtime(at // 1000))


def delete_activity_before(cursor: Cursor, before: int, limit: int) -> int:
    """Delete at most C{limit} of the oldest entries from before C{before}."""
    cursor.execute(
        "DELETE FROM activity WHERE id IN (SELECT id FROM activity"
        " WHERE at < ? ORDER BY id LIMIT ?)",
        (before, limit),
    )
    return cursor.rowcount


def activity_since(
    cursor: Cursor, user_id: int, since: int, limit: int
) -> list[ActivityEntry]:
    """At most C{limit} of a user's entries from C{since} on, oldest first."""
    cursor.execute(
        "SELECT at, actor, event, detail FROM activity WHERE user_id = ? AND at >= ?"
        " ORDER BY id LIMIT ?",
        (user_id, since, limit),
    )
    return [ActivityEntry(*row) for row in cursor.fetchall()]
