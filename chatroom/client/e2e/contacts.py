"""
Trust on first use of other devices' identity keys, as SSH does for hosts:
the first identity seen for a (user, device) is pinned; a different one
later is held back, and the user is blocked, until /trust. Safety numbers
let two people check, by comparing digits, that they see the same keys.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nacl.encoding import RawEncoder
from nacl.hash import sha512

from chatroom.client.e2e.files import DEVICE_NAME
from chatroom.client.e2e.keys import (
    KEY_SIZE,
    SIGNATURE_SIZE,
    b64,
    prekey_signed,
    unb64,
)
from chatroom.names import name_key

SAFETY_CONTEXT = b"chatroom-e2e-safety-v1\0"
# Iterated as Signal's safety numbers are, so finding keys whose number
# matches someone else's costs that much more.
SAFETY_ITERATIONS = 5200
SAFETY_GROUPS_PER_USER = 6


@dataclass(frozen=True)
class DeviceKey:
    """One device as C{/keys USER} lists it, its signature checked."""

    device: str
    identity: bytes
    prekey: bytes


def parse_listing(lines: Iterable[str]) -> tuple[list[DeviceKey], list[str]]:
    """
    The devices in C{/keys} data lines (C{DEVICE IDENTITY PREKEY SIGNATURE}),
    and the lines that are not valid ones: a prekey must be signed by its
    device's identity, whatever the server says.
    """
    devices: list[DeviceKey] = []
    bad: list[str] = []
    for line in lines:
        fields = line.split(" ")
        try:
            device, identity, prekey, signature = fields
            if not DEVICE_NAME.match(device):
                raise ValueError(device)
            key = DeviceKey(device, unb64(identity, KEY_SIZE), unb64(prekey, KEY_SIZE))
            if not prekey_signed(
                key.identity, device, key.prekey, unb64(signature, SIGNATURE_SIZE)
            ):
                raise ValueError("bad signature")
        except ValueError:
            bad.append(fields[0] if fields else line)
            continue
        devices.append(key)
    return devices, bad


@dataclass
class Review:
    """What one listing of a user's devices told about them."""

    # Devices a message may go to: pinned, and listed with the pinned key.
    usable: list[DeviceKey] = field(default_factory=list)
    # Pinned now: the first time this user was seen at all.
    first: list[str] = field(default_factory=list)
    # Pinned now: a device a known user did not have before.
    added: list[str] = field(default_factory=list)
    # Listed with an identity other than the pinned one, first noticed now:
    # held back (L{Contacts.blocked} lists them all).
    changed: list[str] = field(default_factory=list)


class Contacts:
    """
    Pinned identities by user (name key) and device; L{save_data} is what
    goes to disk. Changed identities are held in memory only: every send
    lists the user's devices again, and finds them again.
    """

    def __init__(self, pinned: dict[str, dict[str, str]] | None = None) -> None:
        self._pinned = {
            user: {device: unb64(key, KEY_SIZE) for device, key in devices.items()}
            for user, devices in (pinned or {}).items()
        }
        self._changed: dict[str, dict[str, bytes]] = {}

    def save_data(self) -> dict[str, dict[str, str]]:
        return {
            user: {device: b64(key) for device, key in devices.items()}
            for user, devices in self._pinned.items()
        }

    def review(self, user: str, listing: Sequence[DeviceKey]) -> Review:
        """Pin what is new in C{listing}; hold back what changed."""
        key = name_key(user)
        pinned = self._pinned.setdefault(key, {})
        changed = self._changed.setdefault(key, {})
        review = Review()
        known_user = bool(pinned)
        for device in listing:
            identity = pinned.get(device.device)
            if identity is None:
                pinned[device.device] = device.identity
                (review.added if known_user else review.first).append(device.device)
                review.usable.append(device)
            elif identity == device.identity:
                changed.pop(device.device, None)
                review.usable.append(device)
            elif changed.get(device.device) != device.identity:
                changed[device.device] = device.identity
                review.changed.append(device.device)
        if not pinned:
            del self._pinned[key]
        return review

    def blocked(self, user: str) -> list[str]:
        """The devices of C{user} whose identity changed, untrusted yet."""
        return sorted(self._changed.get(name_key(user), {}))

    def trust(self, user: str) -> list[str]:
        """Pin the changed identities of C{user}; return their devices."""
        changed = self._changed.pop(name_key(user), {})
        self._pinned.setdefault(name_key(user), {}).update(changed)
        return sorted(changed)

    def identity(self, user: str, device: str) -> bytes | None:
        """The pinned identity of C{user}'s C{device}, if any."""
        return self._pinned.get(name_key(user), {}).get(device)

    def pinned_devices(self, user: str) -> list[str]:
        """The devices of C{user} pinned so far, listed now or not."""
        return sorted(self._pinned.get(name_key(user), {}))

    def changed_identity(self, user: str, device: str) -> bytes | None:
        """The identity C{device} now claims, if it differs from the pinned one."""
        return self._changed.get(name_key(user), {}).get(device)


def safety_number(
    me: str, my_keys: Iterable[bytes], them: str, their_keys: Iterable[bytes]
) -> str:
    """
    Sixty digits in groups of five, the same for both people: thirty from
    each user's name and device identities, the two halves in name order.
    """
    halves = sorted(
        [(name_key(me), sorted(my_keys)), (name_key(them), sorted(their_keys))]
    )
    digits = "".join(_half(name, keys) for name, keys in halves)
    return " ".join(digits[i : i + 5] for i in range(0, len(digits), 5))


def _half(name: str, keys: list[bytes]) -> str:
    data = SAFETY_CONTEXT + name.encode() + b"\0" + b"".join(keys)
    digest = b""
    for _ in range(SAFETY_ITERATIONS):
        digest = sha512(digest + data, encoder=RawEncoder)
    return "".join(
        f"{int.from_bytes(digest[i * 5 : i * 5 + 5], 'big') % 100000:05d}"
        for i in range(SAFETY_GROUPS_PER_USER)
    )
