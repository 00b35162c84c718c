"""
Every SQL statement the chat service runs, behind methods named for what they
do or return.  Interaction functions run in a pool thread and return plain
data; nothing above this module sees a cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer

from chatroom.errors import (
    AlreadyMember,
    MailboxFull,
    NameTaken,
    RoomExists,
    TooManyRooms,
)
from chatroom.storage.database import Cursor, Database, Operation

LOBBY = "lobby"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    password_hash: str
    is_admin: bool
    default_room_id: int | None


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: int
    name: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A room message as history returns it."""

    seq: int
    sender: str
    text: str
    created_at: int


@dataclass(frozen=True, slots=True)
class StoredPrivate:
    id: int
    sender: str
    text: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    at: int
    actor: str
    event: str
    detail: str


_USER_COLUMNS = "id, name, password_hash, is_admin, default_room_id"


def _user(row: tuple | None) -> UserRecord | None:
    if row is None:
        return None
    return UserRecord(row[0], row[1], row[2], bool(row[3]), row[4])


class ChatStore:
    """The chat service's view of the database."""

    def __init__(self, database: Database) -> None:
        self.db = database

    # Users

    def find_user(self, key: str) -> defer.Deferred[UserRecord | None]:
        def find(cursor: Cursor) -> UserRecord | None:
            cursor.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE name_key = ?", (key,)
            )
            return _user(cursor.fetchone())

        return self.db.read(find)

    def get_user(self, user_id: int) -> defer.Deferred[UserRecord | None]:
        def get(cursor: Cursor) -> UserRecord | None:
            cursor.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
            )
            return _user(cursor.fetchone())

        return self.db.read(get)

    def create_user(
        self, name: str, key: str, password_hash: str, at: int, is_admin: bool = False
    ) -> defer.Deferred[UserRecord]:
        """Create an account, a member of the lobby with the lobby as default."""

        def create(cursor: Cursor) -> UserRecord:
            if cursor.execute(
                "SELECT 1 FROM users WHERE name_key = ?", (key,)
            ).fetchone():
                raise NameTaken()
            (lobby_id,) = cursor.execute(
                "SELECT id FROM rooms WHERE name_key = ?", (LOBBY,)
            ).fetchone()
            (user_id,) = cursor.execute(
                "INSERT INTO users (name, name_key, password_hash, is_admin,"
                " default_room_id, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (name, key, password_hash, int(is_admin), lobby_id, at),
            ).fetchone()
            _add_member(cursor, lobby_id, user_id, at)
            return UserRecord(user_id, name, password_hash, is_admin, lobby_id)

        return self._guarded(create, NameTaken)

    def rename_user(self, user_id: int, name: str, key: str) -> defer.Deferred[None]:
        def rename(cursor: Cursor) -> None:
            clash = cursor.execute(
                "SELECT id FROM users WHERE name_key = ?", (key,)
            ).fetchone()
            if clash and clash[0] != user_id:
                raise NameTaken()
            cursor.execute(
                "UPDATE users SET name = ?, name_key = ? WHERE id = ?",
                (name, key, user_id),
            )

        return self._guarded(rename, NameTaken)

    def set_password_hash(self, user_id: int, password_hash: str) -> defer.Deferred:
        return self.db.write(
            _run(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (password_hash, user_id),
            )
        )

    def set_default_room(self, user_id: int, room_id: int | None) -> defer.Deferred:
        return self.db.write(
            _run(
                "UPDATE users SET default_room_id = ? WHERE id = ?", (room_id, user_id)
            )
        )

    def list_users(self) -> defer.Deferred[list[tuple[int, str, bool]]]:
        def users(cursor: Cursor) -> list[tuple[int, str, bool]]:
            cursor.execute("SELECT id, name, is_admin FROM users ORDER BY name_key")
            return [(row[0], row[1], bool(row[2])) for row in cursor.fetchall()]

        return self.db.read(users)

    # Rooms and membership

    def load_rooms(self) -> defer.Deferred[list[RoomRecord]]:
        def rooms(cursor: Cursor) -> list[RoomRecord]:
            cursor.execute(
                "SELECT r.id, r.name, (SELECT MAX(seq) FROM messages m"
                " WHERE m.room_id = r.id) FROM rooms r ORDER BY r.id"
            )
            return [
                RoomRecord(row[0], row[1], row[2] or 0) for row in cursor.fetchall()
            ]

        return self.db.read(rooms)

    def load_memberships(self) -> defer.Deferred[list[tuple[int, int, str]]]:
        """Every (room id, user id, user name)."""

        def memberships(cursor: Cursor) -> list[tuple[int, int, str]]:
            cursor.execute(
                "SELECT m.room_id, u.id, u.name FROM memberships m"
                " JOIN users u ON u.id = m.user_id"
            )
            return [tuple(row) for row in cursor.fetchall()]

        return self.db.read(memberships)

    def create_room(
        self, name: str, key: str, creator_id: int, at: int, max_rooms: int = 0
    ):
        """
        Create a room with its creator as the first member; fires with its id.
        Fails with L{TooManyRooms} if the creator is in C{max_rooms} rooms
        already (0: no limit).
        """

        def create(cursor: Cursor) -> int:
            if cursor.execute(
                "SELECT 1 FROM rooms WHERE name_key = ?", (key,)
            ).fetchone():
                raise RoomExists()
            _check_room_count(cursor, creator_id, max_rooms)
            (room_id,) = cursor.execute(
                "INSERT INTO rooms (name, name_key, created_by, created_at)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                (name, key, creator_id, at),
            ).fetchone()
            _add_member(cursor, room_id, creator_id, at)
            return room_id

        return self._guarded(create, RoomExists)

    def add_member(
        self, room_id: int, user_id: int, at: int, max_rooms: int = 0
    ) -> defer.Deferred:
        """
        Fails with L{AlreadyMember} if the user is in the room already, with
        L{TooManyRooms} if in C{max_rooms} rooms already (0: no limit).
        """

        def add(cursor: Cursor) -> None:
            _check_room_count(cursor, user_id, max_rooms)
            _add_member(cursor, room_id, user_id, at)

        return self._guarded(add, AlreadyMember)

    def remove_member(self, room_id: int, user_id: int) -> defer.Deferred:
        return self.db.write(
            _run(
                "DELETE FROM memberships WHERE room_id = ? AND user_id = ?",
                (room_id, user_id),
            )
        )

    # Messages

    def store_room_message(
        self, room_id: int, seq: int, sender_id: int, sender: str, text: str, at: int
    ) -> defer.Deferred:
        return self.db.append(
            "INSERT INTO messages (room_id, seq, sender_id, sender, text,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (room_id, seq, sender_id, sender, text, at),
        )

    def room_history(self, room_id: int, limit: int):
        """The last C{limit} messages of a room, oldest first."""

        def history(cursor: Cursor) -> list[StoredMessage]:
            cursor.execute(
                "SELECT seq, sender, text, created_at FROM messages"
                " WHERE room_id = ? ORDER BY seq DESC LIMIT ?",
                (room_id, limit),
            )
            return [StoredMessage(*row) for row in reversed(cursor.fetchall())]

        return self.db.read(history)

    def store_private(
        self,
        sender_id: int,
        sender: str,
        recipient_id: int,
        text: str,
        at: int,
        delivered: bool,
        mailbox_size: int = 0,
    ) -> defer.Deferred[int]:
        """
        Store a private message; fires with its id.  One kept for later (not
        C{delivered}) fails with L{MailboxFull} if C{mailbox_size} are kept
        already (0: no limit).
        """
        capped = not delivered and mailbox_size > 0

        def store(cursor: Cursor) -> int:
            if capped:
                (kept,) = cursor.execute(
                    "SELECT COUNT(*) FROM private_messages"
                    " WHERE recipient_id = ? AND delivered_at IS NULL",
                    (recipient_id,),
                ).fetchone()
                if kept >= mailbox_size:
                    raise MailboxFull()
            (message_id,) = cursor.execute(
                "INSERT INTO private_messages (sender_id, sender, recipient_id, text,"
                " created_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (sender_id, sender, recipient_id, text, at, at if delivered else None),
            ).fetchone()
            return message_id

        return self.db.write(store, guarded=capped)

    def undelivered_private(self, recipient_id: int, limit: int):
        """The first C{limit} private messages kept for a user, oldest first."""

        def undelivered(cursor: Cursor) -> list[StoredPrivate]:
            cursor.execute(
                "SELECT id, sender, text, created_at FROM private_messages"
                " WHERE recipient_id = ? AND delivered_at IS NULL ORDER BY id"
                " LIMIT ?",
                (recipient_id, limit),
            )
            return [StoredPrivate(*row) for row in cursor.fetchall()]

        return self.db.read(undelivered)

    def mark_delivered(self, message_ids: list[int], at: int) -> defer.Deferred:
        # Several nodes may hand the same message to sessions: the first time stays.
        return self.db.write(
            lambda cursor: cursor.executemany(
                "UPDATE private_messages SET delivered_at = ?"
                " WHERE id = ? AND delivered_at IS NULL",
                [(at, message_id) for message_id in message_ids],
            )
        )

    # Activity

    def record_activity(
        self, at: int, user_id: int | None, actor: str, event: str, detail: str
    ) -> defer.Deferred:
        return self.db.append(
            "INSERT INTO activity (at, user_id, actor, event, detail)"
            " VALUES (?, ?, ?, ?, ?)",
            (at, user_id, actor, event, detail),
        )

    def activity_of(self, user_id: int, limit: int):
        """
        The last C{limit} entries of a user's activity, oldest first,
        including any still queued: activity is recorded without waiting for
        its commit, and a user's log must show what they have just done.
        """

        def activity(cursor: Cursor) -> list[ActivityEntry]:
            cursor.execute(
                "SELECT at, actor, event, detail FROM activity WHERE user_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (user_id, limit),
            )
            return [ActivityEntry(*row) for row in reversed(cursor.fetchall())]

        # A failed batch was logged where it failed; read what did commit.
        return self.db.flushed().addBoth(lambda _: self.db.read(activity))

    def _guarded(self, operation, conflict: type[Exception]) -> defer.Deferred:
        """
        Run a write that checks a uniqueness rule; a concurrent writer that
        slips past the check trips the UNIQUE index and gets the same error.
        """

        def translate(failure):
            if self.db.engine.is_integrity_error(failure.value):
                raise conflict()
            return failure

        return self.db.write(operation, guarded=True).addErrback(translate)


def _run(statement: str, params: tuple) -> Operation[None]:
    """A write of one statement whose result nobody needs."""

    def operation(cursor: Cursor) -> None:
        cursor.execute(statement, params)

    return operation


def _check_room_count(cursor: Cursor, user_id: int, max_rooms: int) -> None:
    """Counted in the transaction that adds: racing joins cannot pass it."""
    if not max_rooms:
        return
    (rooms,) = cursor.execute(
        "SELECT COUNT(*) FROM memberships WHERE user_id = ?", (user_id,)
    ).fetchone()
    if rooms >= max_rooms:
        raise TooManyRooms(f"you are in {rooms} rooms, the most one may be in")


def _add_member(cursor: Cursor, room_id: int, user_id: int, at: int) -> None:
    cursor.execute(
        "INSERT INTO memberships (room_id, user_id, joined_at) VALUES (?, ?, ?)",
        (room_id, user_id, at),
    )
