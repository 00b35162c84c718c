"""
End-to-end encrypted private messages, the server's side (docs/e2e.md).

A device (a bundled client on one machine) publishes its public keys; a
session that has published is that device.  A sender stores one ciphertext
per recipient device; the server checks its size and who may send it, and
hands it to the sessions that are that device, at once or when the device
next publishes.  It never has a key to read one.  The recipient's other
sessions (telnet, IRC) get a placeholder, once per message, as a private
message of kind L{E2E_PLACEHOLDER}.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey
from twisted.internet import defer
from twisted.logger import LogLevel

from chatroom.errors import (
    BadArguments,
    BadCiphertext,
    BadKey,
    NoDevice,
    NoSuchDevice,
    NoSuchUser,
    PermissionDenied,
)
from chatroom.names import check_name, name_key
from chatroom.service.events import E2E_PLACEHOLDER, E2EMessage, PrivateMessage
from chatroom.storage.store import DeviceKeys, StoredE2E

DEVICE = re.compile(r"[A-Za-z0-9_.-]{1,32}\Z")
MSGID = re.compile(r"[A-Za-z0-9_-]{8,64}\Z")
# Devices one account may have, at most.
MAX_DEVICES = 8
# Bytes of a ciphertext, decoded: an ephemeral key, a box and a signature
# around at most 2000 bytes of message (docs/e2e.md).
CIPHERTEXT_MIN = 72
CIPHERTEXT_MAX = 2800
# What the identity key signs, before the device's name and its prekey.
PREKEY_CONTEXT = b"chatroom-e2e-prekey-v1\0"
IDENTITY_BYTES = PREKEY_BYTES = 32
SIGNATURE_BYTES = 64
PLACEHOLDER_TEXT = "[end-to-end encrypted message: read it in the bundled client]"
# Waiting ciphertexts read, written and marked delivered at a time.
WAITING_PAGE = 100


def check_device(device: str) -> str:
    if not DEVICE.match(device):
        raise BadArguments(
            "a device's name is 1 to 32 letters, digits, '_', '.' or '-'"
        )
    return device


def _decoded(text: str, most: int) -> bytes | None:
    """The bytes of standard, padded base64 C{text}, or None if it is not that."""
    # Checked before decoding: what cannot be short enough is not decoded.
    if len(text) > (most + 2) // 3 * 4:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _key(text: str, size: int, what: str) -> bytes:
    raw = _decoded(text, size)
    if raw is None or len(raw) != size:
        raise BadKey(f"the {what} must be {size} bytes in standard base64")
    return raw


def verified_keys(
    device: str, identity: str, prekey: str, signature: str, at: int
) -> DeviceKeys:
    """
    The device's keys, each its exact base64, once the signature is the
    identity's over the prekey; else L{BadKey}.  The server cannot vouch for
    keys (docs/e2e.md) but need not keep garbage.
    """
    identity_raw = _key(identity, IDENTITY_BYTES, "identity")
    prekey_raw = _key(prekey, PREKEY_BYTES, "prekey")
    signature_raw = _key(signature, SIGNATURE_BYTES, "signature")
    signed = PREKEY_CONTEXT + device.encode() + b"\0" + prekey_raw
    try:
        VerifyKey(identity_raw).verify(signed, signature_raw)
    except (CryptoError, ValueError, TypeError):
        raise BadKey(
            f"that signature is not the identity's over device {device}'s prekey"
        ) from None
    encode = base64.b64encode
    return DeviceKeys(
        device,
        encode(identity_raw).decode(),
        encode(prekey_raw).decode(),
        encode(signature_raw).decode(),
        at,
    )


def checked_ciphertext(text: str) -> str:
    """C{text}, exact base64 of a ciphertext's size; else L{BadCiphertext}."""
    raw = _decoded(text, CIPHERTEXT_MAX)
    if raw is None:
        raise BadCiphertext("a ciphertext is standard base64, with its padding")
    if not CIPHERTEXT_MIN <= len(raw) <= CIPHERTEXT_MAX:
        raise BadCiphertext(
            f"a ciphertext is {CIPHERTEXT_MIN} to {CIPHERTEXT_MAX} bytes,"
            f" not {len(raw)}"
        )
    return base64.b64encode(raw).decode()


class E2EActions:
    """The session's actions for devices and ciphertexts (mixed into Session)."""

    __slots__ = ()

    async def publish_keys(
        self, device: str, identity: str, prekey: str, signature: str
    ) -> DeviceKeys:
        """
        Add or replace this account's device and make this session that
        device.  What waits for it is delivered by L{deliver_waiting_e2e},
        which the front end calls once it has said so.
        """
        account, chat = self.account, self.chat
        if account.is_guest:
            raise PermissionDenied("a guest has no devices: log in to an account")
        keys = verified_keys(
            check_device(device), identity, prekey, signature, chat.now()
        )
        await chat.store.publish_device(account.id, keys, MAX_DEVICES)
        self.device = device
        chat.record(account.id, account.name, "device-published", device)
        return keys

    async def device_keys(self, user: str | None) -> list[DeviceKeys]:
        """The devices of C{user} (None: our own), the first published first."""
        if user is None:
            return await self.chat.store.devices(self.account.id)
        return await self.chat.store.devices(await self._account_id(user))

    async def remove_device(self, device: str) -> str:
        """
        Remove this account's device and drop what waits for it; the
        sessions here that were it are no longer.
        """
        account, chat = self.account, self.chat
        check_device(device)
        if account.is_guest or not await chat.store.remove_device(account.id, device):
            raise NoSuchDevice(f"you have no device {device}")
        for session in account.sessions:
            if session.device == device:
                session.device = None
        chat.record(account.id, account.name, "device-removed", device)
        return device

    async def send_e2e(
        self, user: str, device: str, msgid: str, ciphertext: str
    ) -> E2EMessage:
        """
        Store one ciphertext for C{user}'s C{device}, then hand it to the
        sessions that are that device and, with a message's first
        ciphertext to another account, its placeholder to the others.
        Returns once stored: what was acknowledged survives a crash.
        """
        check_name(user)
        check_device(device)
        if not MSGID.match(msgid):
            raise BadArguments("a message id is 8 to 64 letters, digits, '_' or '-'")
        ciphertext = checked_ciphertext(ciphertext)
        sender_device = self.device
        if sender_device is None:
            raise NoDevice()
        chat, account = self.chat, self.account
        account.last_active = chat.clock.seconds()
        recipient_id = await self._account_id(user)
        at = chat.now()
        record = StoredE2E(
            0, account.name, sender_device, user, device, msgid, at, ciphertext
        )
        try:
            stored = await chat.store.store_e2e(
                record,
                account.id,
                recipient_id,
                chat.mailbox_size,
                chat.mailbox_per_sender,
                PLACEHOLDER_TEXT,
            )
        except NoDevice:
            # Removed by another session of the account, maybe elsewhere.
            if self.device == sender_device:
                self.device = None
            raise
        chat.record(
            account.id, account.name, "e2e", f"to {user} {device}", LogLevel.debug
        )
        message = E2EMessage.from_stored(replace(record, id=stored.id))
        await chat.hand_e2e(recipient_id, message)
        if stored.placeholder_id is not None:
            await chat.hand_private(
                recipient_id,
                PrivateMessage(
                    account.name,
                    PLACEHOLDER_TEXT,
                    at,
                    stored.placeholder_id,
                    E2E_PLACEHOLDER,
                ),
            )
        return message

    async def _account_id(self, user: str) -> int:
        key = name_key(check_name(user))
        online = self.chat.online_by_key.get(key)
        if online is not None and not online.is_guest:
            return online.id
        record = await self.chat.store.find_user(key)
        if record is None:
            raise NoSuchUser(f"there is no user called {user}")
        return record.id

    # Delivery to the sessions that are a device

    def take_e2e(self, message: E2EMessage) -> None:
        """
        Show a ciphertext if this session is its device, and mark it
        delivered once the client has drained it: a connection lost with it
        still queued leaves it for the device's next publish.
        """
        take = getattr(self.mind, "e2e_message", None)
        if take is None or self.device != message.device:
            return
        if not self._first_showing(("e2e", message.id)):
            return
        take(message)
        defer.ensureDeferred(self._mark_e2e_once_drained(message.id)).addErrback(
            lambda f: self.log.failure(
                "marking ciphertext {id} delivered", f, id=message.id
            )
        )

    async def _mark_e2e_once_drained(self, message_id: int) -> None:
        if await self.mind.drained():
            await self.chat.store.mark_e2e_delivered([message_id], self.chat.now())

    async def deliver_waiting_e2e(self) -> None:
        """
        Deliver the ciphertexts waiting for this session's device, oldest
        first, a page at a time as the client reads them (as kept private
        messages are: L{deliver_kept_private}).
        """
        await self._one_delivery_at_a_time(self._deliver_waiting_pages)

    async def _deliver_waiting_pages(self) -> None:
        store, mind, device = self.chat.store, self.mind, self.device
        take = getattr(mind, "e2e_message", None)
        if device is None or take is None:
            return
        while not self.ended and self.device == device:
            page = await store.waiting_e2e(self.account.id, device, WAITING_PAGE)
            if not page:
                return
            for stored in page:
                if self.ended or self.device != device or not await mind.drained():
                    return
                if self._first_showing(("e2e", stored.id)):
                    take(E2EMessage.from_stored(stored))
            if self.ended or not await mind.drained():
                return
            await store.mark_e2e_delivered([m.id for m in page], self.chat.now())
            if len(page) < WAITING_PAGE:
                return
