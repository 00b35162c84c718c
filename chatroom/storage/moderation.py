"""Room moderation kept: topics, modes, members' roles and bans."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.storage.database import Cursor


@dataclass(frozen=True, slots=True)
class RoomSettings:
    room_id: int
    created_by: int | None
    created_at: int
    topic: str
    topic_by: str
    topic_at: int
    modes: str
    key: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class ModerationRecords:
    """Everything moderation keeps, read at start-up."""

    settings: list[RoomSettings]
    # (room id, user id, role bits), roles other than none.
    roles: list[tuple[int, int, int]]
    # (room id, mask, set by, set at).
    bans: list[tuple[int, str, str, int]]


def all_moderation(cursor: Cursor) -> ModerationRecords:
    settings = [
        RoomSettings(*row)
        for row in cursor.execute(
            "SELECT id, created_by, created_at, topic, topic_by, topic_at, modes,"
            " room_key, member_limit FROM rooms ORDER BY id"
        ).fetchall()
    ]
    roles = [
        tuple(row)
        for row in cursor.execute(
            "SELECT room_id, user_id, role FROM memberships WHERE role <> 0"
        ).fetchall()
    ]
    bans = [
        tuple(row)
        for row in cursor.execute(
            "SELECT room_id, mask, set_by, set_at FROM room_bans"
            " ORDER BY room_id, set_at"
        ).fetchall()
    ]
    return ModerationRecords(settings, roles, bans)


@dataclass(frozen=True, slots=True)
class ModeWrite:
    """What one MODE change stores, in one transaction."""

    room_id: int
    modes: str
    key: str | None
    limit: int
    # (user id, role bits); only accounts' (guests are not stored).
    roles: tuple[tuple[int, int], ...] = ()
    bans_added: tuple[tuple[str, str, int], ...] = ()
    bans_removed: tuple[str, ...] = ()


def write_modes(cursor: Cursor, change: ModeWrite) -> None:
    cursor.execute(
        "UPDATE rooms SET modes = ?, room_key = ?, member_limit = ? WHERE id = ?",
        (change.modes, change.key, change.limit, change.room_id),
    )
    for user_id, role in change.roles:
        cursor.execute(
            "UPDATE memberships SET role = ? WHERE room_id = ? AND user_id = ?",
            (role, change.room_id, user_id),
        )
    for mask in change.bans_removed:
        cursor.execute(
            "DELETE FROM room_bans WHERE room_id = ? AND mask = ?",
            (change.room_id, mask),
        )
    for mask, set_by, set_at in change.bans_added:
        # Not into a room deleted meanwhile: the foreign key would fail the batch.
        cursor.execute(
            "INSERT INTO room_bans (room_id, mask, set_by, set_at)"
            " SELECT id, ?, ?, ? FROM rooms WHERE id = ?",
            (mask, set_by, set_at, change.room_id),
        )


def write_topic(cursor: Cursor, room_id: int, topic: str, by: str, at: int) -> None:
    cursor.execute(
        "UPDATE rooms SET topic = ?, topic_by = ?, topic_at = ? WHERE id = ?",
        (topic, by, at, room_id),
    )


def delete_kicked(cursor: Cursor, room_id: int, user_id: int) -> None:
    """A member removed by an operator: gone, and no longer its default room."""
    cursor.execute(
        "DELETE FROM memberships WHERE room_id = ? AND user_id = ?", (room_id, user_id)
    )
    cursor.execute(
        "UPDATE users SET default_room_id = NULL WHERE id = ? AND default_room_id = ?",
        (user_id, room_id),
    )


def delete_room(cursor: Cursor, room_id: int, marker_key: str) -> int:
    """
    A room and everything of it: its messages, members, bans and read
    markers (C{marker_key}, C{#name}), and the accounts' default pointing at
    it.  The messages it had.
    """
    (count,) = cursor.execute(
        "SELECT COUNT(*) FROM messages WHERE room_id = ?", (room_id,)
    ).fetchone()
    for table in ("messages", "memberships", "room_bans"):
        cursor.execute(f"DELETE FROM {table} WHERE room_id = ?", (room_id,))
    cursor.execute("DELETE FROM read_markers WHERE target_key = ?", (marker_key,))
    cursor.execute(
        "UPDATE users SET default_room_id = NULL WHERE default_room_id = ?",
        (room_id,),
    )
    cursor.execute("DELETE FROM rooms WHERE id = ?", (room_id,))
    return count
