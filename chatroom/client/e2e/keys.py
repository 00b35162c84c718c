"""
A device's keys: an Ed25519 identity that never changes, and X25519 prekeys
it signs. A new prekey every week; a replaced one is kept two more weeks for
messages sealed to it while its owner was away, then deleted, so a stolen
device file opens only what was sealed to the prekeys it still holds.
"""

import base64
import binascii
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

DAY = 24 * 60 * 60
ROTATE_AFTER = 7 * DAY
KEEP_REPLACED = 14 * DAY
KEY_SIZE = 32
SIGNATURE_SIZE = 64
PREKEY_CONTEXT = b"chatroom-e2e-prekey-v1\0"


def b64(raw: bytes) -> str:
    """Standard base64 with padding, as the wire has it."""
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str, size: int | None = None) -> bytes:
    """
    Decode standard base64 strictly, of C{size} bytes if given.

    @raise ValueError: not base64, or the wrong size.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError(f"not base64: {error}") from None
    if size is not None and len(raw) != size:
        raise ValueError(f"{len(raw)} bytes, not {size}")
    return raw


def prekey_statement(device: str, prekey: bytes) -> bytes:
    """What an identity signs to vouch for C{prekey} as C{device}'s."""
    return PREKEY_CONTEXT + device.encode() + b"\0" + prekey


def prekey_signed(
    identity: bytes, device: str, prekey: bytes, signature: bytes
) -> bool:
    """Whether C{signature} is C{identity}'s over C{device}'s C{prekey}."""
    try:
        VerifyKey(identity).verify(prekey_statement(device, prekey), signature)
    except (BadSignatureError, ValueError):
        return False
    return True


@dataclass
class Prekey:
    """One X25519 key pair; C{replaced} is when a newer one took over."""

    secret: PrivateKey
    created: float
    replaced: float | None = None

    @property
    def public(self) -> bytes:
        return bytes(self.secret.public_key)


@dataclass
class DeviceKeys:
    """This device's name, identity and prekeys (the newest last)."""

    device: str
    identity: SigningKey
    prekeys: list[Prekey]

    @classmethod
    def create(cls, device: str, now: float) -> "DeviceKeys":
        return cls(device, SigningKey.generate(), [Prekey(PrivateKey.generate(), now)])

    @property
    def identity_public(self) -> bytes:
        return bytes(self.identity.verify_key)

    @property
    def current(self) -> Prekey:
        """The prekey others seal new messages to."""
        return self.prekeys[-1]

    def secrets(self) -> list[PrivateKey]:
        """Every prekey still held, newest first: the ones a message may use."""
        return [prekey.secret for prekey in reversed(self.prekeys)]

    def rotate(self, now: float) -> bool:
        """
        Start a new prekey if the current one is a week old, and delete those
        replaced two weeks ago; return whether anything changed.
        """
        changed = False
        if now - self.current.created >= ROTATE_AFTER:
            self.current.replaced = now
            self.prekeys.append(Prekey(PrivateKey.generate(), now))
            changed = True
        kept = [
            prekey
            for prekey in self.prekeys
            if prekey.replaced is None or now - prekey.replaced < KEEP_REPLACED
        ]
        changed = changed or len(kept) != len(self.prekeys)
        self.prekeys = kept
        return changed

    def next_change(self, now: float) -> float:
        """Seconds until L{rotate} would change something."""
        due = [self.current.created + ROTATE_AFTER]
        due += [p.replaced + KEEP_REPLACED for p in self.prekeys if p.replaced]
        return max(0.0, min(due) - now)

    def publish_command(self) -> str:
        """The C{/keys publish} line that makes a session this device."""
        prekey = self.current.public
        signature = self.identity.sign(prekey_statement(self.device, prekey)).signature
        return (
            f"/keys publish {self.device} {b64(self.identity_public)} "
            f"{b64(prekey)} {b64(signature)}"
        )

    def to_json(self) -> dict:
        return {
            "v": 1,
            "device": self.device,
            "identity": b64(bytes(self.identity)),
            "prekeys": [
                {
                    "secret": b64(bytes(prekey.secret)),
                    "created": prekey.created,
                    "replaced": prekey.replaced,
                }
                for prekey in self.prekeys
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> "DeviceKeys":
        """
        @raise ValueError: not a device key file this client wrote.
        """
        try:
            if data["v"] != 1 or not data["prekeys"]:
                raise ValueError("unknown version or no prekeys")
            prekeys = [
                Prekey(
                    PrivateKey(unb64(entry["secret"], KEY_SIZE)),
                    float(entry["created"]),
                    None if entry["replaced"] is None else float(entry["replaced"]),
                )
                for entry in data["prekeys"]
            ]
            identity = SigningKey(unb64(data["identity"], KEY_SIZE))
            return cls(str(data["device"]), identity, prekeys)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed device key file: {error!r}") from None
