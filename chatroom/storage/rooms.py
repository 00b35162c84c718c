"""Rooms and their members: the transactions, and the record they return."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.errors import RoomExists, TooManyRooms, TooManyRoomsCreated
from chatroom.storage.database import Cursor

LOBBY = "lobby"


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: int
    name: str
    last_seq: int


def all_rooms(cursor: Cursor) -> list[RoomRecord]:
    """Every room, with the sequence number of its last message."""
    cursor.execute(
        "SELECT r.id, r.name, (SELECT MAX(seq) FROM messages m"
        " WHERE m.room_id = r.id) FROM rooms r ORDER BY r.id"
    )
    return [RoomRecord(row[0], row[1], row[2] or 0) for row in cursor.fetchall()]


def room_by_key(
    cursor: Cursor, key: str
) -> tuple[RoomRecord, list[tuple[int, str]]] | None:
    """The room whose name key is C{key} and its (user id, user name) members."""
    rows = cursor.execute(
        "SELECT r.id, r.name, (SELECT MAX(seq) FROM messages s"
        " WHERE s.room_id = r.id), u.id, u.name FROM rooms r"
        " LEFT JOIN memberships m ON m.room_id = r.id"
        " LEFT JOIN users u ON u.id = m.user_id WHERE r.name_key = ?",
        (key,),
    ).fetchall()
    if not rows:
        return None
    room_id, name, last_seq = rows[0][:3]
    members = [(row[3], row[4]) for row in rows if row[3] is not None]
    return RoomRecord(room_id, name, last_seq or 0), members


def all_memberships(cursor: Cursor) -> list[tuple[int, int, str]]:
    """Every (room id, user id, user name)."""
    cursor.execute(
        "SELECT m.room_id, u.id, u.name FROM memberships m"
        " JOIN users u ON u.id = m.user_id"
    )
    return [tuple(row) for row in cursor.fetchall()]


def insert_room(
    cursor: Cursor,
    name: str,
    key: str,
    creator_id: int | None,
    at: int,
    max_rooms: int,
    max_created: int,
    creator_role: int = 0,
) -> int:
    """
    A new room with its creator as the first member; its id.  A guest's room
    (C{creator_id} None) starts with no stored member: guests are not stored.
    """
    if cursor.execute("SELECT 1 FROM rooms WHERE name_key = ?", (key,)).fetchone():
        raise RoomExists()
    if creator_id is not None:
        check_room_count(cursor, creator_id, max_rooms)
        check_rooms_created(cursor, creator_id, max_created)
    (room_id,) = cursor.execute(
        "INSERT INTO rooms (name, name_key, created_by, created_at)"
        " VALUES (?, ?, ?, ?) RETURNING id",
        (name, key, creator_id, at),
    ).fetchone()
    if creator_id is not None:
        add_member(cursor, room_id, creator_id, at, creator_role)
    return room_id


def insert_member(
    cursor: Cursor, room_id: int, user_id: int, at: int, max_rooms: int
) -> None:
    check_room_count(cursor, user_id, max_rooms)
    add_member(cursor, room_id, user_id, at)


def delete_member(cursor: Cursor, room_id: int, user_id: int) -> None:
    cursor.execute(
        "DELETE FROM memberships WHERE room_id = ? AND user_id = ?",
        (room_id, user_id),
    )


def check_room_count(cursor: Cursor, user_id: int, max_rooms: int) -> None:
    """Counted in the transaction that adds: racing joins cannot pass it."""
    if not max_rooms:
        return
    (rooms,) = cursor.execute(
        "SELECT COUNT(*) FROM memberships WHERE user_id = ?", (user_id,)
    ).fetchone()
    if rooms >= max_rooms:
        raise TooManyRooms(f"you are in {rooms} rooms, the most one may be in")


def check_rooms_created(cursor: Cursor, user_id: int, max_created: int) -> None:
    """Rooms are not removed yet: uncounted, one account could make any number."""
    if not max_created:
        return
    (created,) = cursor.execute(
        "SELECT COUNT(*) FROM rooms WHERE created_by = ?", (user_id,)
    ).fetchone()
    if created >= max_created:
        raise TooManyRoomsCreated(
            f"you have created {created} rooms, the most one account may create"
        )


def add_member(
    cursor: Cursor, room_id: int, user_id: int, at: int, role: int = 0
) -> None:
    cursor.execute(
        "INSERT INTO memberships (room_id, user_id, joined_at, role)"
        " VALUES (?, ?, ?, ?)",
        (room_id, user_id, at, role),
    )


@dataclass(frozen=True, slots=True)
class RoomOverview:
    """A room as the admin's listing shows it."""

    id: int
    name: str
    members: int
    messages: int
    created_at: int


def room_overviews(cursor: Cursor) -> list[RoomOverview]:
    """Every room, by name, with its member and message counts."""
    cursor.execute(
        "SELECT r.id, r.name,"
        " (SELECT COUNT(*) FROM memberships m WHERE m.room_id = r.id),"
        " (SELECT COUNT(*) FROM messages s WHERE s.room_id = r.id),"
        " r.created_at FROM rooms r ORDER BY r.name_key"
    )
    return [RoomOverview(*row) for row in cursor.fetchall()]
