"""
The sealed envelope of E2E-PROTOCOL.md: signed JSON inside a box from a
fresh ephemeral key to the recipient device's prekey,

    ciphertext = eph_pk(32) || Box(eph_sk, prekey).encrypt(sig(64) || json)

Who wrote it, to whom and which message it is are inside, under the
signature, so a server that re-addresses or replays a ciphertext is caught
by comparing them with the delivery line.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from chatroom.names import name_key

VERSION = 1
MAX_TEXT_BYTES = 2000
# The server refuses ciphertexts outside these sizes (E2E-PROTOCOL.md).
MIN_CIPHERTEXT, MAX_CIPHERTEXT = 72, 2800
_EPHEMERAL, _SIGNATURE = 32, 64
_BOX_OVERHEAD = Box.NONCE_SIZE + 16


@dataclass(frozen=True)
class Address:
    """Who sent a message to which device, and its id: what the server sees."""

    sender: str
    sender_device: str
    recipient: str
    recipient_device: str
    msgid: str

    def same(self, other: "Address") -> bool:
        """Equal, names compared as the server compares them."""
        return (
            name_key(self.sender) == name_key(other.sender)
            and self.sender_device == other.sender_device
            and name_key(self.recipient) == name_key(other.recipient)
            and self.recipient_device == other.recipient_device
            and self.msgid == other.msgid
        )


@dataclass(frozen=True)
class Envelope:
    """
    One message as its sender wrote it: C{peer} is whom they wrote to (the
    recipient, or for a copy to their own device, the other party).
    """

    address: Address
    peer: str
    ts: int
    text: str


class TooLong(Exception):
    """The text does not fit in one envelope."""


class Refused(Exception):
    """A ciphertext that must not be shown: the reason, in words."""


def seal(envelope: Envelope, identity: SigningKey, prekey: bytes) -> bytes:
    """
    The ciphertext of C{envelope}, signed by C{identity}, for C{prekey}.

    @raise TooLong: the text is over L{MAX_TEXT_BYTES}, or the envelope
        would be over the server's limit.
    """
    if len(envelope.text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise TooLong(f"over {MAX_TEXT_BYTES} bytes")
    a = envelope.address
    body = json.dumps(
        {
            "v": VERSION,
            "from": a.sender,
            "from_device": a.sender_device,
            "to": a.recipient,
            "to_device": a.recipient_device,
            "peer": envelope.peer,
            "msgid": a.msgid,
            "ts": envelope.ts,
            "text": envelope.text,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    ephemeral = PrivateKey.generate()
    boxed = Box(ephemeral, PublicKey(prekey)).encrypt(bytes(identity.sign(body)))
    ciphertext = bytes(ephemeral.public_key) + bytes(boxed)
    if len(ciphertext) > MAX_CIPHERTEXT:
        raise TooLong(f"over {MAX_CIPHERTEXT} bytes once sealed")
    return ciphertext


def decrypt(ciphertext: bytes, prekeys: Sequence[PrivateKey]) -> bytes:
    """
    The signed message inside C{ciphertext}, opened with whichever of
    C{prekeys} it was sealed to.

    @raise Refused: it opens with none of them.
    """
    if len(ciphertext) < _EPHEMERAL + _BOX_OVERHEAD + _SIGNATURE:
        raise Refused("it is too short to be a sealed message")
    ephemeral = PublicKey(ciphertext[:_EPHEMERAL])
    for secret in prekeys:
        try:
            return Box(secret, ephemeral).decrypt(ciphertext[_EPHEMERAL:])
        except CryptoError:
            continue
    raise Refused(
        "it does not decrypt: altered on the way, sealed for another device, "
        "or to a prekey this device has deleted"
    )


def verify(signed: bytes, identity: bytes, delivered: Address) -> Envelope:
    """
    The envelope in C{signed}, once its signature is C{identity}'s and its
    addresses are the ones it was C{delivered} with.

    @raise Refused: any of that is not so.
    """
    try:
        body = VerifyKey(identity).verify(signed)
    except (BadSignatureError, ValueError):
        raise Refused("its signature is not the sending device's key") from None
    try:
        fields = json.loads(body.decode("utf-8"))
        address = Address(
            _string(fields, "from"),
            _string(fields, "from_device"),
            _string(fields, "to"),
            _string(fields, "to_device"),
            _string(fields, "msgid"),
        )
        envelope = Envelope(
            address, _string(fields, "peer"), fields["ts"], _string(fields, "text")
        )
        if fields["v"] != VERSION or type(envelope.ts) is not int:
            raise ValueError("unknown version or bad time")
    except (ValueError, KeyError, TypeError):
        # Signed by the sender, yet not what this client writes.
        raise Refused("it is signed but malformed") from None
    if not address.same(delivered):
        raise Refused(
            f"it was written by {address.sender} ({address.sender_device}) for "
            f"{address.recipient} ({address.recipient_device}) as message "
            f"{address.msgid}, but delivered as another: re-addressed"
        )
    if len(envelope.text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise Refused("its text is longer than any client sends")
    return envelope


def _string(fields: dict, key: str) -> str:
    value = fields[key]
    if not isinstance(value, str):
        raise TypeError(key)
    return value
