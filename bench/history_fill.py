"""Pre-filling the real server's SQLite database with a big history (scenario 6).

All knowledge of the server's schema used here sits in this module: the table
and column names below, as chatroom/storage/schema.py defines them (schema
version 1; created_at in milliseconds, names looked up by their lowercase key).
They are checked against the live database before any row is written, so a
schema change fails loudly instead of filling the wrong thing.
"""

from __future__ import annotations

import sqlite3
import time

MESSAGES_TABLE = "messages"
MESSAGE_COLUMNS = ("room_id", "seq", "sender_id", "sender", "text", "created_at")
ROOM_ID_QUERY = "SELECT id FROM rooms WHERE name_key = ?"
USER_ID_QUERY = "SELECT id FROM users WHERE name_key = ?"
BATCH = 50_000


def fill_history(db_path: str, room: str, sender: str, count: int) -> float:
    """Append ``count`` messages to ``room``'s history; returns seconds taken.
    The server must be stopped (it created the schema and the room)."""
    started = time.monotonic()
    db = sqlite3.connect(db_path)
    try:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({MESSAGES_TABLE})")}
        if not set(MESSAGE_COLUMNS) <= columns:
            raise RuntimeError(
                f"{db_path}: {MESSAGES_TABLE} has {sorted(columns)}, "
                f"the bench expects {MESSAGE_COLUMNS}"
            )
        (room_id,) = db.execute(ROOM_ID_QUERY, (room.lower(),)).fetchone()
        (sender_id,) = db.execute(USER_ID_QUERY, (sender.lower(),)).fetchone()
        (last_seq,) = db.execute(
            f"SELECT COALESCE(MAX(seq), 0) FROM {MESSAGES_TABLE} WHERE room_id = ?",
            (room_id,),
        ).fetchone()
        now_ms = int(time.time() * 1000)
        insert = (
            f"INSERT INTO {MESSAGES_TABLE} ({', '.join(MESSAGE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})"
        )
        for first in range(0, count, BATCH):
            rows = [
                (
                    room_id,
                    last_seq + n + 1,
                    sender_id,
                    sender,
                    f"stored message {n}",
                    now_ms - count + n,
                )
                for n in range(first, min(count, first + BATCH))
            ]
            with db:  # one transaction per batch
                db.executemany(insert, rows)
    finally:
        db.close()
    return time.monotonic() - started
