"""Room and private messages: the transactions, and the records they return."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.errors import MailboxFull
from chatroom.storage.database import Cursor

# Appended (see Database.append): nothing in a batch reads a message back.
INSERT_ROOM_MESSAGE = (
    "INSERT INTO messages (room_id, seq, sender_id, sender, text, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


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


def last_room_messages(cursor: Cursor, room_id: int, limit: int) -> list[StoredMessage]:
    """The last C{limit} messages of a room, oldest first."""
    cursor.execute(
        "SELECT seq, sender, text, created_at FROM messages"
        " WHERE room_id = ? ORDER BY seq DESC LIMIT ?",
        (room_id, limit),
    )
    return [StoredMessage(*row) for row in reversed(cursor.fetchall())]


def insert_private(
    cursor: Cursor,
    sender_id: int,
    sender: str,
    recipient_id: int,
    text: str,
    at: int,
    delivered: bool,
    mailbox_size: int,
    per_sender: int,
) -> int:
    """
    A private message stored; its id.  One kept for later (not C{delivered})
    raises L{MailboxFull} if C{mailbox_size} are kept already, or
    C{per_sender} from this sender (0: no limit), so one sender cannot fill
    another's whole mailbox.
    """
    if not delivered:
        _check_mailbox(cursor, sender_id, recipient_id, mailbox_size, per_sender)
    (message_id,) = cursor.execute(
        "INSERT INTO private_messages (sender_id, sender, recipient_id, text,"
        " created_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (sender_id, sender, recipient_id, text, at, at if delivered else None),
    ).fetchone()
    return message_id


def _check_mailbox(
    cursor: Cursor, sender_id: int, recipient_id: int, size: int, per_sender: int
) -> None:
    """Counted in the transaction that stores: racing senders cannot pass it."""
    if size > 0:
        (kept,) = cursor.execute(
            "SELECT COUNT(*) FROM private_messages"
            " WHERE recipient_id = ? AND delivered_at IS NULL",
            (recipient_id,),
        ).fetchone()
        if kept >= size:
            raise MailboxFull()
    if per_sender > 0:
        (yours,) = cursor.execute(
            "SELECT COUNT(*) FROM private_messages"
            " WHERE recipient_id = ? AND sender_id = ? AND delivered_at IS NULL",
            (recipient_id, sender_id),
        ).fetchone()
        if yours >= per_sender:
            raise MailboxFull(
                f"you have {yours} messages waiting for that user, the most one"
                " sender may leave: try again once they have logged in"
            )


def first_undelivered_private(
    cursor: Cursor, recipient_id: int, limit: int
) -> list[StoredPrivate]:
    """The first C{limit} private messages kept for a user, oldest first."""
    cursor.execute(
        "SELECT id, sender, text, created_at FROM private_messages"
        " WHERE recipient_id = ? AND delivered_at IS NULL ORDER BY id LIMIT ?",
        (recipient_id, limit),
    )
    return [StoredPrivate(*row) for row in cursor.fetchall()]


def mark_private_delivered(cursor: Cursor, message_ids: list[int], at: int) -> None:
    # Several nodes may hand the same message to sessions: the first time stays.
    cursor.executemany(
        "UPDATE private_messages SET delivered_at = ?"
        " WHERE id = ? AND delivered_at IS NULL",
        [(at, message_id) for message_id in message_ids],
    )
