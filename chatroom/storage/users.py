"""Accounts: the transactions on users, and the record they return."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.errors import NameTaken
from chatroom.storage.database import Cursor
from chatroom.storage.rooms import LOBBY, add_member


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    password_hash: str
    is_admin: bool
    default_room_id: int | None


_USER_COLUMNS = "id, name, password_hash, is_admin, default_room_id"


def _user(row: tuple | None) -> UserRecord | None:
    if row is None:
        return None
    return UserRecord(row[0], row[1], row[2], bool(row[3]), row[4])


def find_user_by_key(cursor: Cursor, key: str) -> UserRecord | None:
    cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name_key = ?", (key,))
    return _user(cursor.fetchone())


def find_user_by_id(cursor: Cursor, user_id: int) -> UserRecord | None:
    cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return _user(cursor.fetchone())


def insert_user(
    cursor: Cursor, name: str, key: str, password_hash: str, at: int, is_admin: bool
) -> UserRecord:
    """A new account, a member of the lobby with the lobby as default."""
    if cursor.execute("SELECT 1 FROM users WHERE name_key = ?", (key,)).fetchone():
        raise NameTaken()
    (lobby_id,) = cursor.execute(
        "SELECT id FROM rooms WHERE name_key = ?", (LOBBY,)
    ).fetchone()
    (user_id,) = cursor.execute(
        "INSERT INTO users (name, name_key, password_hash, is_admin,"
        " default_room_id, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (name, key, password_hash, int(is_admin), lobby_id, at),
    ).fetchone()
    add_member(cursor, lobby_id, user_id, at)
    return UserRecord(user_id, name, password_hash, is_admin, lobby_id)


def update_user_name(cursor: Cursor, user_id: int, name: str, key: str) -> None:
    clash = cursor.execute("SELECT id FROM users WHERE name_key = ?", (key,)).fetchone()
    if clash and clash[0] != user_id:
        raise NameTaken()
    cursor.execute(
        "UPDATE users SET name = ?, name_key = ? WHERE id = ?", (name, key, user_id)
    )


def update_password_hash(cursor: Cursor, user_id: int, password_hash: str) -> None:
    cursor.execute(
        "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
    )


def update_default_room(cursor: Cursor, user_id: int, room_id: int | None) -> None:
    cursor.execute(
        "UPDATE users SET default_room_id = ? WHERE id = ?", (room_id, user_id)
    )


def all_users(cursor: Cursor) -> list[tuple[int, str, bool]]:
    """Every (id, name, is admin), by name."""
    cursor.execute("SELECT id, name, is_admin FROM users ORDER BY name_key")
    return [(row[0], row[1], bool(row[2])) for row in cursor.fetchall()]
