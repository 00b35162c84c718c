"""
Accounts: the transactions on users, and the records they return.

A name an account gave up by renaming stays its own (C{former_names}) until
an admin releases it: nobody else may register or take it, so a name in the
history and the logs always means one account.  Logging in goes by the
current name only.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.errors import AuthFailed, NameTaken
from chatroom.storage.database import Cursor
from chatroom.storage.rooms import LOBBY, add_member


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    password_hash: str
    is_admin: bool
    default_room_id: int | None
    # Suspended by an admin: the account cannot log in.
    suspended: bool = False


_USER_COLUMNS = "id, name, password_hash, is_admin, default_room_id, suspended"


def _user(row: tuple | None) -> UserRecord | None:
    if row is None:
        return None
    return UserRecord(row[0], row[1], row[2], bool(row[3]), row[4], bool(row[5]))


def find_user_by_key(cursor: Cursor, key: str) -> UserRecord | None:
    cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name_key = ?", (key,))
    return _user(cursor.fetchone())


@dataclass(frozen=True, slots=True)
class NameHolder:
    """The account that has a name now, or had it and keeps it (C{former})."""

    user_id: int
    former: bool


def find_name_holder(cursor: Cursor, key: str) -> NameHolder | None:
    """Who has or had the name C{key}, if anyone."""
    row = cursor.execute("SELECT id FROM users WHERE name_key = ?", (key,)).fetchone()
    if row is not None:
        return NameHolder(row[0], former=False)
    row = cursor.execute(
        "SELECT user_id FROM former_names WHERE name_key = ?", (key,)
    ).fetchone()
    return None if row is None else NameHolder(row[0], former=True)


def check_name_free(holder: NameHolder | None, name: str, user_id: int | None) -> None:
    """
    Raise L{NameTaken} unless C{name}, held by C{holder}, may go to the account
    C{user_id} (None: a new one).  The admission gate asks this before a
    registration, and the write asks it again in its transaction.
    """
    if holder is None or holder.user_id == user_id:
        return
    if holder.former:
        raise NameTaken(f"{name} was another account's name and is kept for it")
    raise NameTaken()


def find_user_by_id(cursor: Cursor, user_id: int) -> UserRecord | None:
    cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return _user(cursor.fetchone())


def insert_user(
    cursor: Cursor, name: str, key: str, password_hash: str, at: int, is_admin: bool
) -> UserRecord:
    """A new account, a member of the lobby with the lobby as default."""
    check_name_free(find_name_holder(cursor, key), name, None)
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
    """Rename; the name given up stays the account's, one taken back is freed."""
    check_name_free(find_name_holder(cursor, key), name, user_id)
    old_name, old_key = cursor.execute(
        "SELECT name, name_key FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    cursor.execute(
        "UPDATE users SET name = ?, name_key = ? WHERE id = ?", (name, key, user_id)
    )
    if old_key == key:
        return
    cursor.execute("DELETE FROM former_names WHERE name_key = ?", (key,))
    cursor.execute(
        "INSERT INTO former_names (name_key, name, user_id) VALUES (?, ?, ?)",
        (old_key, old_name, user_id),
    )


def delete_former_name(cursor: Cursor, key: str) -> int | None:
    """Free a former name; the id of the account that kept it, if one did."""
    row = cursor.execute(
        "DELETE FROM former_names WHERE name_key = ? RETURNING user_id", (key,)
    ).fetchone()
    return None if row is None else row[0]


def update_password_hash(cursor: Cursor, user_id: int, password_hash: str) -> None:
    cursor.execute(
        "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
    )


def replace_password_hash(
    cursor: Cursor, user_id: int, verified_hash: str, new_hash: str
) -> None:
    """
    A compare-and-set: the new hash replaces the one the old password was
    checked against, only if that is still the stored one.
    """
    cursor.execute(
        "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
        (new_hash, user_id, verified_hash),
    )
    if cursor.rowcount != 1:
        raise AuthFailed("the password was changed meanwhile: try again")


def update_default_room(cursor: Cursor, user_id: int, room_id: int | None) -> None:
    cursor.execute(
        "UPDATE users SET default_room_id = ? WHERE id = ?", (room_id, user_id)
    )


def all_users(cursor: Cursor) -> list[tuple[int, str, bool]]:
    """Every (id, name, is admin), by name."""
    cursor.execute("SELECT id, name, is_admin FROM users ORDER BY name_key")
    return [(row[0], row[1], bool(row[2])) for row in cursor.fetchall()]


def update_suspended(cursor: Cursor, user_id: int, suspended: bool) -> bool:
    """Suspend or restore an account; whether that changed it."""
    cursor.execute(
        "UPDATE users SET suspended = ? WHERE id = ? AND suspended <> ?",
        (int(suspended), user_id, int(suspended)),
    )
    return cursor.rowcount == 1


@dataclass(frozen=True, slots=True)
class UserOverview:
    """An account as the admin's listing shows it."""

    id: int
    name: str
    is_admin: bool
    suspended: bool
    created_at: int


def user_overviews(cursor: Cursor) -> list[UserOverview]:
    """Every account, by name, with what an admin looks at."""
    cursor.execute(
        "SELECT id, name, is_admin, suspended, created_at FROM users ORDER BY name_key"
    )
    return [
        UserOverview(row[0], row[1], bool(row[2]), bool(row[3]), row[4])
        for row in cursor.fetchall()
    ]


def update_last_seen(cursor: Cursor, user_id: int, at: int) -> None:
    cursor.execute("UPDATE users SET last_seen_at = ? WHERE id = ?", (at, user_id))


def last_seen_of(cursor: Cursor, user_id: int) -> int | None:
    """When the account was last seen online (ms), or None if not since kept."""
    row = cursor.execute(
        "SELECT last_seen_at FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    return None if row is None else row[0]
