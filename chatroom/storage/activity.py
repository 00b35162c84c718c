"""The activity log: what each user did, and the entry it returns."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.storage.database import Cursor

# Appended (see Database.append): nothing in a batch reads an entry back.
INSERT_ACTIVITY = (
    "INSERT INTO activity (at, user_id, actor, event, detail) VALUES (?, ?, ?, ?, ?)"
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
