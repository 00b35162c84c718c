"""
End-to-end encryption's storage: each account's devices and their public
keys, and the ciphertexts sent to each device.  The server keeps what it is
given as base64 text and reads none of it: it has no key to read it with.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.errors import MailboxFull, NoDevice, NoSuchDevice, TooManyDevices
from chatroom.storage.database import Cursor
from chatroom.storage.messages import PLACEHOLDER, insert_private


@dataclass(frozen=True, slots=True)
class DeviceKeys:
    """One device's public keys as published: base64, as the client sent them."""

    device: str
    identity: str
    prekey: str
    signature: str
    published_at: int


@dataclass(frozen=True, slots=True)
class StoredE2E:
    """A ciphertext for one device, as the mailbox returns it."""

    id: int
    sender: str
    sender_device: str
    recipient: str
    device: str
    msgid: str
    created_at: int
    ciphertext: str


@dataclass(frozen=True, slots=True)
class E2EStored:
    """
    What storing a ciphertext made: its id, and the id of the placeholder
    stored with it if it is the message's first ciphertext to another
    account (None otherwise).
    """

    id: int
    placeholder_id: int | None


def devices_of(cursor: Cursor, user_id: int) -> list[DeviceKeys]:
    """An account's devices, the first published first."""
    cursor.execute(
        "SELECT device, identity_key, prekey, signature, published_at FROM devices"
        " WHERE user_id = ? ORDER BY published_at, device",
        (user_id,),
    )
    return [DeviceKeys(*row) for row in cursor.fetchall()]


def publish_device(cursor: Cursor, user_id: int, keys: DeviceKeys, most: int) -> None:
    """
    Add the account's device C{keys.device}, or replace its keys; a new one
    raises L{TooManyDevices} if the account has C{most} already.  Run
    guarded: a refusal changes nothing.
    """
    (others,) = cursor.execute(
        "SELECT COUNT(*) FROM devices WHERE user_id = ? AND device <> ?",
        (user_id, keys.device),
    ).fetchone()
    if others >= most:
        raise TooManyDevices(
            f"your account has {others} devices, the most it may:"
            " /keys remove one first"
        )
    cursor.execute(
        "INSERT INTO devices (user_id, device, identity_key, prekey, signature,"
        " published_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id, device) DO UPDATE SET"
        " identity_key = excluded.identity_key, prekey = excluded.prekey,"
        " signature = excluded.signature, published_at = excluded.published_at",
        (
            user_id,
            keys.device,
            keys.identity,
            keys.prekey,
            keys.signature,
            keys.published_at,
        ),
    )


def delete_device(cursor: Cursor, user_id: int, device: str) -> bool:
    """
    Remove the account's device and drop what waits for it; whether it was
    there.  What it was delivered stays, as the account's ciphertext history.
    """
    cursor.execute(
        "DELETE FROM devices WHERE user_id = ? AND device = ?", (user_id, device)
    )
    if cursor.rowcount == 0:
        return False
    cursor.execute(
        "DELETE FROM e2e_messages WHERE recipient_id = ? AND device = ?"
        " AND delivered_at IS NULL",
        (user_id, device),
    )
    return True


def _has_device(cursor: Cursor, user_id: int, device: str) -> bool:
    return (
        cursor.execute(
            "SELECT 1 FROM devices WHERE user_id = ? AND device = ?",
            (user_id, device),
        ).fetchone()
        is not None
    )


def insert_e2e(
    cursor: Cursor,
    message: StoredE2E,
    sender_id: int,
    recipient_id: int,
    mailbox_size: int,
    per_sender: int,
    placeholder: str,
) -> E2EStored:
    """
    Store a ciphertext for the recipient's device (C{message.id} is unused).
    Raises L{NoDevice} if the sender's device is gone, L{NoSuchDevice} if
    the recipient has no such device, L{MailboxFull} if C{mailbox_size}
    wait for that device already, or C{per_sender} from this sender (0: no
    limit).  The message's first ciphertext to another account stores the
    C{placeholder} text, as a private message to that account, with it.
    Run guarded: a refusal changes nothing.
    """
    if not _has_device(cursor, sender_id, message.sender_device):
        raise NoDevice(
            f"your device {message.sender_device} was removed:"
            " /keys publish DEVICE IDENTITY PREKEY SIGNATURE"
        )
    if not _has_device(cursor, recipient_id, message.device):
        raise NoSuchDevice(f"{message.recipient} has no device {message.device}")
    _check_mailbox(cursor, sender_id, recipient_id, message, mailbox_size, per_sender)
    placeholder_id, earlier = None, None
    if recipient_id != sender_id:
        earlier = cursor.execute(
            "SELECT placeholder_id FROM e2e_messages"
            " WHERE sender_id = ? AND recipient_id = ? AND msgid = ? LIMIT 1",
            (sender_id, recipient_id, message.msgid),
        ).fetchone()
        if earlier is None:
            placeholder_id = insert_private(
                cursor,
                sender_id,
                message.sender,
                recipient_id,
                placeholder,
                message.created_at,
                delivered=False,
                mailbox_size=0,
                per_sender=0,
                kind=PLACEHOLDER,
            )
        else:
            (placeholder_id,) = earlier
    (message_id,) = cursor.execute(
        "INSERT INTO e2e_messages (sender_id, sender, sender_device, recipient_id,"
        " recipient, device, msgid, ciphertext, created_at, placeholder_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            sender_id,
            message.sender,
            message.sender_device,
            recipient_id,
            message.recipient,
            message.device,
            message.msgid,
            message.ciphertext,
            message.created_at,
            placeholder_id,
        ),
    ).fetchone()
    return E2EStored(message_id, placeholder_id if earlier is None else None)


def _check_mailbox(
    cursor: Cursor,
    sender_id: int,
    recipient_id: int,
    message: StoredE2E,
    size: int,
    per_sender: int,
) -> None:
    """Counted in the transaction that stores, as a private message's mailbox."""
    if size > 0:
        (kept,) = cursor.execute(
            "SELECT COUNT(*) FROM e2e_messages WHERE recipient_id = ?"
            " AND device = ? AND delivered_at IS NULL",
            (recipient_id, message.device),
        ).fetchone()
        if kept >= size:
            raise MailboxFull(
                f"{kept} messages wait for device {message.device} of"
                f" {message.recipient}, the most one device may have waiting:"
                " try again once it has been online"
            )
    if per_sender > 0:
        (yours,) = cursor.execute(
            "SELECT COUNT(*) FROM e2e_messages WHERE recipient_id = ?"
            " AND device = ? AND sender_id = ? AND delivered_at IS NULL",
            (recipient_id, message.device, sender_id),
        ).fetchone()
        if yours >= per_sender:
            raise MailboxFull(
                f"you have {yours} messages waiting for device {message.device}"
                f" of {message.recipient}, the most one sender may leave:"
                " try again once it has been online"
            )


def first_waiting_e2e(
    cursor: Cursor, user_id: int, device: str, limit: int
) -> list[StoredE2E]:
    """The first C{limit} ciphertexts waiting for the account's device, oldest first."""
    cursor.execute(
        "SELECT id, sender, sender_device, recipient, device, msgid, created_at,"
        " ciphertext FROM e2e_messages"
        " WHERE recipient_id = ? AND device = ? AND delivered_at IS NULL"
        " ORDER BY id LIMIT ?",
        (user_id, device, limit),
    )
    return [StoredE2E(*row) for row in cursor.fetchall()]


def mark_e2e_delivered(cursor: Cursor, message_ids: list[int], at: int) -> None:
    """
    A device has the ciphertexts: they wait no more, and nor do their
    placeholders, since the account has read the message where it can.
    """
    rows = [(at, message_id) for message_id in message_ids]
    cursor.executemany(
        "UPDATE private_messages SET delivered_at = ? WHERE delivered_at IS NULL"
        " AND id = (SELECT placeholder_id FROM e2e_messages WHERE id = ?)",
        rows,
    )
    # Several sessions of a device may take the same one: the first time stays.
    cursor.executemany(
        "UPDATE e2e_messages SET delivered_at = ?"
        " WHERE id = ? AND delivered_at IS NULL",
        rows,
    )
