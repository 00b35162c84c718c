"""Room and private messages: the transactions, and the records they return."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.errors import MailboxFull
from chatroom.storage.database import Cursor, ManyRows

# Appended (see Database.append): nothing in a batch reads a message back.
# A row is (seq, sender_id, sender, text, created_at, kind, room_id), kept
# only while its room exists: a batch runs its rows after its operations, so
# a message queued as its room was deleted (delete_room) would otherwise
# break the foreign key and fail every write of the batch with it.
INSERT_ROOM_MESSAGE = ManyRows(
    "INSERT INTO messages (room_id, seq, sender_id, sender, text, created_at, kind)"
    # Cast: PostgreSQL types a VALUES column of NULLs (a guest's sender_id) text.
    " SELECT CAST(v.column7 AS BIGINT), CAST(v.column1 AS BIGINT),"
    " CAST(v.column2 AS BIGINT), v.column3, v.column4, CAST(v.column5 AS BIGINT),"
    " v.column6 FROM (VALUES {rows}) AS v"
    " WHERE CAST(v.column7 AS BIGINT) IN (SELECT id FROM rooms)",
    width=7,
)
# The kind of a plain message (chatroom.service.events.MESSAGE); the other
# is a notice.
PLAIN = "message"
# The kind of a private message that stands for an end-to-end encrypted one
# (chatroom.service.events.E2E_PLACEHOLDER; chatroom.storage.devices): it
# counts in no private mailbox, as the ciphertexts it stands for count in
# their device's.
PLACEHOLDER = "e2e"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A room message as history returns it."""

    seq: int
    sender: str
    text: str
    created_at: int
    kind: str = PLAIN


@dataclass(frozen=True, slots=True)
class StoredPrivate:
    id: int
    sender: str
    text: str
    created_at: int
    kind: str = PLAIN


def last_room_messages(cursor: Cursor, room_id: int, limit: int) -> list[StoredMessage]:
    """The last C{limit} messages of a room, oldest first."""
    cursor.execute(
        "SELECT seq, sender, text, created_at, kind FROM messages"
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
    kind: str = PLAIN,
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
        " created_at, delivered_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (sender_id, sender, recipient_id, text, at, at if delivered else None, kind),
    ).fetchone()
    return message_id


def _check_mailbox(
    cursor: Cursor, sender_id: int, recipient_id: int, size: int, per_sender: int
) -> None:
    """Counted in the transaction that stores: racing senders cannot pass it."""
    if size > 0:
        (kept,) = cursor.execute(
            "SELECT COUNT(*) FROM private_messages"
            " WHERE recipient_id = ? AND delivered_at IS NULL AND kind <> ?",
            (recipient_id, PLACEHOLDER),
        ).fetchone()
        if kept >= size:
            raise MailboxFull()
    if per_sender > 0:
        (yours,) = cursor.execute(
            "SELECT COUNT(*) FROM private_messages WHERE recipient_id = ?"
            " AND sender_id = ? AND delivered_at IS NULL AND kind <> ?",
            (recipient_id, sender_id, PLACEHOLDER),
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
        "SELECT id, sender, text, created_at, kind FROM private_messages"
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


@dataclass(frozen=True, slots=True)
class HistorySpan:
    """
    A stretch of history between exclusive edges, by number (a room
    message's seq, a private message's id) or by time (ms); None is open.
    """

    after: int | None = None
    before: int | None = None
    after_at: int | None = None
    before_at: int | None = None


@dataclass(frozen=True, slots=True)
class ConversationMessage:
    """A private message between two accounts, as history returns it."""

    id: int
    sender_id: int
    sender: str
    text: str
    created_at: int
    kind: str = PLAIN


def _span_clause(number: str, span: HistorySpan) -> tuple[str, tuple]:
    """The SQL conditions (each starting AND) and values that bound C{span}."""
    edges = (
        (f"{number} > ?", span.after),
        (f"{number} < ?", span.before),
        ("created_at > ?", span.after_at),
        ("created_at < ?", span.before_at),
    )
    kept = [(condition, value) for condition, value in edges if value is not None]
    return "".join(f" AND {c}" for c, _ in kept), tuple(v for _, v in kept)


def room_messages_in(
    cursor: Cursor, room_id: int, span: HistorySpan, limit: int, newest: bool
) -> list[StoredMessage]:
    """
    At most C{limit} messages of a room within C{span}, oldest first: the
    newest of them if C{newest}, else the oldest.
    """
    clause, values = _span_clause("seq", span)
    order = "DESC" if newest else "ASC"
    cursor.execute(
        "SELECT seq, sender, text, created_at, kind FROM messages"
        f" WHERE room_id = ?{clause} ORDER BY seq {order} LIMIT ?",
        (room_id, *values, limit),
    )
    rows = [StoredMessage(*row) for row in cursor.fetchall()]
    return rows[::-1] if newest else rows


def conversation_messages_in(
    cursor: Cursor,
    user_id: int,
    other_id: int,
    span: HistorySpan,
    limit: int,
    newest: bool,
) -> list[ConversationMessage]:
    """
    At most C{limit} private messages between two accounts (either way)
    within C{span}, oldest first: the newest of them if C{newest}.
    """
    clause, values = _span_clause("id", span)
    order = "DESC" if newest else "ASC"
    cursor.execute(
        "SELECT id, sender_id, sender, text, created_at, kind FROM private_messages"
        " WHERE ((sender_id = ? AND recipient_id = ?)"
        f" OR (sender_id = ? AND recipient_id = ?)){clause}"
        f" ORDER BY id {order} LIMIT ?",
        (user_id, other_id, other_id, user_id, *values, limit),
    )
    rows = [ConversationMessage(*row) for row in cursor.fetchall()]
    return rows[::-1] if newest else rows


def latest_room_times(
    cursor: Cursor, room_ids: list[int], after_at: int, before_at: int, limit: int
) -> list[tuple[int, int]]:
    """
    (room id, time of its last message) of the rooms among C{room_ids}
    whose last message is strictly between the times, earliest first.
    """
    if not room_ids:
        return []
    marks = ", ".join("?" * len(room_ids))
    cursor.execute(
        "SELECT room_id, MAX(created_at) FROM messages"
        f" WHERE room_id IN ({marks}) GROUP BY room_id"
        " HAVING MAX(created_at) > ? AND MAX(created_at) < ?"
        " ORDER BY MAX(created_at), room_id LIMIT ?",
        (*room_ids, after_at, before_at, limit),
    )
    return [tuple(row) for row in cursor.fetchall()]


def latest_conversation_times(
    cursor: Cursor, user_id: int, after_at: int, before_at: int, limit: int
) -> list[tuple[str, int]]:
    """
    (other account's name, time of the last message) of each account a
    user has exchanged private messages with whose last one is strictly
    between the times, earliest first.
    """
    cursor.execute(
        "SELECT users.name, MAX(private_messages.created_at) FROM private_messages"
        " JOIN users ON users.id = CASE WHEN sender_id = ?"
        " THEN recipient_id ELSE sender_id END"
        " WHERE sender_id = ? OR recipient_id = ? GROUP BY users.id, users.name"
        " HAVING MAX(private_messages.created_at) > ?"
        " AND MAX(private_messages.created_at) < ?"
        " ORDER BY MAX(private_messages.created_at), users.name LIMIT ?",
        (user_id, user_id, user_id, after_at, before_at, limit),
    )
    return [tuple(row) for row in cursor.fetchall()]


def room_messages_after(
    cursor: Cursor, room_id: int, after_seq: int, limit: int
) -> list[StoredMessage]:
    """At most C{limit} messages of a room after number C{after_seq}, oldest first."""
    cursor.execute(
        "SELECT seq, sender, text, created_at FROM messages"
        " WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (room_id, after_seq, limit),
    )
    return [StoredMessage(*row) for row in cursor.fetchall()]
