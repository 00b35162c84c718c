"""
End-to-end messages in a session: publishing this device's keys at login,
sealing C{/msg} and C{/private} for every device of the recipient and the
sender's own other devices, opening C{~ e2e} deliveries, and the commands
C{/plain}, C{/fingerprint} and C{/trust}.
"""

import re
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.client.e2e import files
from chatroom.client.e2e.contacts import (
    Contacts,
    DeviceKey,
    parse_listing,
    safety_number,
)
from chatroom.client.e2e.envelope import (
    MAX_TEXT_BYTES,
    Address,
    Envelope,
    Refused,
    TooLong,
    decrypt,
    seal,
    verify,
)
from chatroom.client.e2e.history import History
from chatroom.client.e2e.keys import DeviceKeys, b64, unb64
from chatroom.client.e2e.replay import SeenMessages
from chatroom.client.lines import (
    E2eDelivery,
    Err,
    Ok,
    PrivateMessage,
    ServerLine,
    Timestamped,
)
from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import LOCK, Style
from chatroom.names import name_key

T = TypeVar("T")
_SEALED = re.compile(r"/(?:msg|private) +<?(?P<user>[^\s<>]+)>? (?P<text>.*\S.*)")
_PLAIN = re.compile(r"/plain +<?(?P<user>[^\s<>]+)>? (?P<text>.*\S.*)")
_FINGERPRINT = re.compile(r"/fingerprint +(?P<user>\S+) *")
_TRUST = re.compile(r"/trust +(?P<user>\S+) *")
_PLAIN_USAGE = "/plain USER TEXT"
_OFF = "end-to-end encryption is off in this session"
# What the server sends a session that is no device instead of a ciphertext.
PLACEHOLDER = "[end-to-end encrypted message: read it in the bundled client]"
HELP = (
    "this client's own commands (docs/e2e.md):\n"
    "  /msg USER TEXT, /private USER TEXT  end-to-end encrypted, to every device "
    "of USER and your other devices\n"
    "  /plain USER TEXT  a private message the server can read (for users "
    "without devices)\n"
    "  /fingerprint USER  the safety number to compare with USER\n"
    "  /trust USER  accept USER's changed device keys, once the numbers match"
)


class UI:
    """What the messenger needs of the terminal."""

    def show(self, text: str) -> None: ...


@dataclass(frozen=True)
class E2eSettings:
    """
    Where this client keeps device files (C{config}, beside known_hosts), for
    which server, and how: C{runner} runs blocking file work off the
    reactor, C{clock} tells time and schedules prekey rotation.
    """

    config: Path
    host: str
    port: int
    runner: files.Runner
    clock: IReactorTime
    device: str | None = None
    history: bool = False


class E2eMessenger:
    """
    One account's device in one session. Until L{start} has published the
    keys (C{active}), sealed messages are refused, never sent in the clear.
    """

    _log = Logger()

    def __init__(
        self,
        protocol: ChatClientProtocol,
        ui: UI,
        style: Style,
        settings: E2eSettings,
    ) -> None:
        self._protocol = protocol
        self._ui = ui
        self._style = style
        self._settings = settings
        self._clock = settings.clock
        self._worker = files.FileWorker(settings.runner)
        self.active = False
        self.name = ""
        self.keys: DeviceKeys | None = None
        self.contacts = Contacts()
        self.seen = SeenMessages()
        self.history = History(None, self._worker)
        self._directory = Path()
        self._incoming: Deferred[None] = succeed(None)
        self._held: dict[str, list[E2eDelivery]] = {}
        self._rotation: IDelayedCall | None = None

    # Starting and stopping

    async def start(self, name: str) -> None:
        """Load or make this device's keys, rotate them if due, publish them."""
        self.name = name
        s = self._settings
        self._directory = files.account_directory(s.config, s.host, s.port, name)
        try:
            stored = await self._worker.run(_load, self._directory)
            self.keys, created = self._device_keys(stored[files.KEYS_FILE])
            self.contacts = _parsed(Contacts, stored, files.CONTACTS_FILE)
            self.seen = _parsed(SeenMessages, stored, files.SEEN_FILE)
            if s.history:
                self.history = History(
                    self._directory / files.HISTORY_FILE, self._worker
                )
            if self.keys.rotate(self._clock.seconds()) or created:
                # On disk before published: a prekey others may seal to
                # must never be lost in a crash.
                await self._save(files.KEYS_FILE, self.keys.to_json())
        except (OSError, ValueError) as error:
            self._ui.show(
                self._style.warning(
                    f"End-to-end encryption is OFF: cannot use the device files in "
                    f"{self._directory}: {error}\n/msg is refused; /plain USER "
                    "TEXT sends a private message the server can read."
                )
            )
            return
        if created:
            self._ui.show(
                self._style.info(
                    f"new end-to-end device {self.keys.device}: keys kept in "
                    f"{self._directory}"
                )
            )
        await self._publish()

    def stop(self) -> None:
        if self._rotation is not None and self._rotation.active():
            self._rotation.cancel()
        self._rotation = None

    def _device_keys(self, stored: Any) -> tuple[DeviceKeys, bool]:
        if stored is not None:
            return DeviceKeys.from_json(stored), False
        device = self._settings.device or files.default_device_name()
        return DeviceKeys.create(device, self._clock.seconds()), True

    async def _publish(self) -> None:
        reply = await self._protocol.request(self.keys.publish_command())
        final = reply.final
        if isinstance(final, Ok):
            if not self.active:
                self._ui.show(
                    self._style.info(
                        f"end-to-end encryption on: this is device {self.keys.device}"
                    )
                )
            self.active = True
            self._schedule_rotation()
        elif final.code == "bad-command":
            self._ui.show(
                self._style.info(
                    "this server offers no end-to-end encryption: /msg is refused; "
                    f"{_PLAIN_USAGE} sends a private message the server can read"
                )
            )
        else:
            self._ui.show(
                self._style.warning(
                    f"End-to-end encryption is OFF: the server refused this device's "
                    f"keys ({final.code}: {final.text}).\n/msg is refused; "
                    f"{_PLAIN_USAGE} sends a private message the server can read."
                )
            )

    def _schedule_rotation(self) -> None:
        self.stop()
        delay = self.keys.next_change(self._clock.seconds())
        self._rotation = self._clock.callLater(delay, self._rotate)

    def _rotate(self) -> None:
        self._rotation = None
        Deferred.fromCoroutine(self._rotate_now()).addErrback(self._failed)

    async def _rotate_now(self) -> None:
        if self.keys.rotate(self._clock.seconds()):
            await self._save(files.KEYS_FILE, self.keys.to_json())
        await self._publish()

    # Typed commands

    def command(self, line: str) -> Coroutine[Any, Any, None] | None:
        """The work a typed line means here, or L{None}: send it as it is."""
        if (match := _SEALED.fullmatch(line)) is not None:
            return self._send_sealed(match["user"], match["text"])
        if (match := _PLAIN.fullmatch(line)) is not None:
            return self._send_plain(match["user"], match["text"])
        if (match := _FINGERPRINT.fullmatch(line)) is not None:
            return self._fingerprint(match["user"])
        if (match := _TRUST.fullmatch(line)) is not None:
            return self._trust(match["user"])
        if line.split(" ", 1)[0] in ("/plain", "/fingerprint", "/trust"):
            return self._usage()
        return None

    async def _usage(self) -> None:
        self._ui.show(
            self._style.info(f"usage: {_PLAIN_USAGE}, /fingerprint USER, /trust USER")
        )

    async def _send_plain(self, user: str, text: str) -> None:
        reply = await self._protocol.request(f"/private {user} {text}")
        if isinstance(reply.final, Ok):
            self._ui.show(self._style.plain_sent(user, text))
        else:
            self._ui.show(self._style.server_line(reply.final))

    async def _send_sealed(self, user: str, text: str) -> None:
        if not self.active:
            self._refuse_send(user, _OFF)
            return
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            self._refuse_send(
                user,
                f"an end-to-end message holds at most {MAX_TEXT_BYTES} bytes; split it",
            )
            return
        to_self = name_key(user) == name_key(self.name)
        theirs = await self._devices(user)
        mine = theirs if to_self else await self._devices(self.name)
        if theirs is None or mine is None:
            return
        blocked = [(user, d) for d in self.contacts.blocked(user)]
        if not to_self:
            blocked += [(self.name, d) for d in self.contacts.blocked(self.name)]
        if blocked:
            devices = ", ".join(f"{owner}'s {device}" for owner, device in blocked)
            owners = sorted({owner for owner, _ in blocked})
            self._ui.show(
                self._style.warning(
                    f"NOT SENT: the identity key of {devices} changed and is not "
                    f"trusted. Compare /fingerprint {owners[0]} with "
                    f"{'your other device' if owners[0] == self.name else 'them'}, "
                    f"then /trust {owners[0]}."
                )
            )
            return
        targets = [(user, device) for device in theirs]
        if not to_self:
            targets += [(self.name, device) for device in mine]
        if not any(owner == user for owner, _ in targets):
            if to_self:
                self._ui.show(
                    self._style.info("you have no other devices: nothing sent")
                )
            else:
                self._refuse_send(
                    user,
                    f"{user} has no end-to-end devices (no bundled client has "
                    "published keys for them)",
                )
            return
        msgid = secrets.token_urlsafe(16)
        ts = int(self._clock.seconds() * 1000)
        requests = []
        try:
            for owner, device in targets:
                address = Address(
                    self.name, self.keys.device, owner, device.device, msgid
                )
                sealed = seal(
                    Envelope(address, user, ts, text), self.keys.identity, device.prekey
                )
                requests.append(f"/e2e {owner} {device.device} {msgid} {b64(sealed)}")
        except TooLong as error:
            self._refuse_send(
                user, f"the message is too long to seal ({error}); split it"
            )
            return
        replies = await gatherResults([self._protocol.request(r) for r in requests])
        reached = 0
        for (owner, device), reply in zip(targets, replies, strict=True):
            if isinstance(reply.final, Err):
                self._ui.show(
                    self._style.warning(
                        f"not delivered to {owner}'s device {device.device}: "
                        f"{reply.final.code}: {reply.final.text}"
                    )
                )
            elif owner == user:
                reached += 1
        if reached:
            self._ui.show(self._style.sealed_sent(user, text))
            await self.history.record(ts / 1000, self.name, user, text)

    def _refuse_send(self, user: str, why: str) -> None:
        self._ui.show(
            self._style.warning(
                f"NOT SENT: {why}. {_PLAIN_USAGE.replace('USER', user)} sends it "
                "unencrypted: the server can read it."
            )
        )

    async def _devices(self, user: str) -> list[DeviceKey] | None:
        """
        C{user}'s devices a message may go to, fresh from the server and
        checked against the pinned keys (this device left out); L{None}
        if the server refused, which is shown.
        """
        listed = await self._list(user)
        if listed is None:
            return None
        review = self.contacts.review(user, listed)
        if review.first or review.added or review.changed:
            await self._save(files.CONTACTS_FILE, self.contacts.save_data())
        self._show_review(user, review.first, review.added, review.changed)
        return review.usable

    async def _list(self, user: str) -> list[DeviceKey] | None:
        reply = await self._protocol.request(f"/keys {user}")
        if isinstance(reply.final, Err):
            self._ui.show(self._style.server_line(reply.final))
            return None
        listed, bad = parse_listing(data.text for data in reply.data)
        if bad:
            self._ui.show(
                self._style.warning(
                    f"Ignored device keys of {user} that are not validly signed: "
                    f"{', '.join(bad)}"
                )
            )
        if name_key(user) == name_key(self.name):
            listed = [key for key in listed if key.device != self.keys.device]
        return listed

    def _show_review(
        self, user: str, first: list[str], added: list[str], changed: list[str]
    ) -> None:
        own = name_key(user) == name_key(self.name)
        whose = "your account" if own else user
        if first:
            self._ui.show(
                self._style.info(
                    f"first end-to-end contact with {whose}: pinned the keys of "
                    f"{', '.join(first)}; /fingerprint {user} shows the safety "
                    "number to compare"
                )
            )
        if added:
            self._ui.show(
                self._style.warning(
                    f"{whose} has a new end-to-end device: {', '.join(added)}. "
                    f"It now gets {'copies of your' if own else 'your'} messages; if "
                    f"{'you' if own else 'they'} did not add it, compare "
                    f"/fingerprint {user}."
                )
            )
        for device in changed:
            self._ui.show(
                self._style.warning(
                    f"WARNING: the identity key of {whose}'s device {device} has "
                    "CHANGED.\nThe client may have been reinstalled, or someone, the "
                    "server perhaps, poses as it.\nNothing is sent to "
                    f"{user} until you compare /fingerprint {user} "
                    f"{'on both devices' if own else 'with them'} and type "
                    f"/trust {user}."
                )
            )

    async def _fingerprint(self, user: str) -> None:
        if not self.active:
            self._ui.show(self._style.info(_OFF))
            return
        theirs = await self._list(user)
        mine = await self._list(self.name)
        if theirs is None or mine is None:
            return
        for owner, listed in ((user, theirs), (self.name, mine)):
            review = self.contacts.review(owner, listed)
            self._show_review(owner, review.first, review.added, review.changed)
        await self._save(files.CONTACTS_FILE, self.contacts.save_data())
        my_keys = [self.keys.identity_public] + [key.identity for key in mine]
        their_keys = [key.identity for key in theirs]
        if name_key(user) == name_key(self.name):
            their_keys = my_keys
        digits = safety_number(self.name, my_keys, user, their_keys)
        groups = digits.split(" ")
        self._ui.show(
            self._style.info(
                f"safety number with {user} ({len(my_keys)} device(s) of yours, "
                f"{len(their_keys)} of theirs):\n"
                f"   {' '.join(groups[:6])}\n   {' '.join(groups[6:])}\n"
                f"{user} sees the same number with /fingerprint {self.name} when "
                "nobody is in between; compare it in person or on a call."
            )
        )
        blocked = self.contacts.blocked(user)
        if blocked:
            self._ui.show(
                self._style.warning(
                    f"Changed, not trusted: {', '.join(blocked)}. If the numbers "
                    f"match, /trust {user}."
                )
            )

    async def _trust(self, user: str) -> None:
        devices = self.contacts.trust(user)
        if not devices:
            self._ui.show(
                self._style.info(
                    f"nothing to trust: no changed key of {user} seen in this "
                    f"session (/fingerprint {user} checks again)"
                )
            )
            return
        await self._save(files.CONTACTS_FILE, self.contacts.save_data())
        self._ui.show(
            self._style.info(
                f"trusted the new keys of {user}'s {', '.join(devices)}; messages "
                "to them are sent again"
            )
        )
        for line in self._held.pop(name_key(user), []):
            self.receive(line)

    def placeholder_note(self, line: ServerLine) -> str | None:
        """
        What to show for the server's placeholder of a sealed message, which
        a session gets before it publishes: the message itself follows.
        """
        inner = line.line if isinstance(line, Timestamped) else line
        if (
            not isinstance(inner, PrivateMessage)
            or inner.action
            or inner.text != PLACEHOLDER
        ):
            return None
        return self._style.info(
            f"{inner.sender} sent you an end-to-end encrypted message: it shows "
            f"with {LOCK} if it was sealed for this device"
        )

    # Deliveries

    def receive(self, line: E2eDelivery) -> None:
        """Open, check and show one delivery, after those before it."""
        self._incoming.addCallback(
            lambda _: Deferred.fromCoroutine(self._open(line))
        ).addErrback(self._failed)

    async def _open(self, line: E2eDelivery) -> None:
        delivered = Address(
            line.sender, line.sender_device, line.recipient, line.device, line.msgid
        )
        try:
            envelope = await self._check(line, delivered)
        except Refused as refusal:
            self._ui.show(
                self._style.warning(
                    f"REFUSED an end-to-end message from {line.sender} (device "
                    f"{line.sender_device}): {refusal}. It is not shown."
                )
            )
            return
        if envelope is None:
            return
        await self._save(files.SEEN_FILE, self.seen.save_data())
        if name_key(line.sender) == name_key(self.name):
            shown = self._style.sealed_own_copy(
                line.at, envelope.peer, line.sender_device, envelope.text
            )
            recipient = envelope.peer
        else:
            shown = self._style.sealed_received(line.at, line.sender, envelope.text)
            recipient = self.name
        self._ui.show(shown)
        await self.history.record(line.at, line.sender, recipient, envelope.text)

    async def _check(self, line: E2eDelivery, delivered: Address) -> Envelope | None:
        """The checked envelope, L{None} if held back; or raise L{Refused}."""
        if not self.active or (
            name_key(line.recipient) != name_key(self.name)
            or line.device != self.keys.device
        ):
            raise Refused(
                f"it is addressed to {line.recipient} ({line.device}), not to "
                "this device"
            )
        try:
            ciphertext = unb64(line.ciphertext)
        except ValueError:
            raise Refused("it is not base64") from None
        signed = decrypt(ciphertext, self.keys.secrets())
        sender, device = line.sender, line.sender_device
        if self.contacts.identity(sender, device) is None:
            # First message from this device: pin what the server lists.
            await self._devices(sender)
        identity = self.contacts.identity(sender, device)
        if identity is None:
            raise Refused("the server lists no such device, so it cannot be checked")
        try:
            envelope = verify(signed, identity, delivered)
        except Refused:
            # Perhaps the device has a new identity: list it again, which
            # warns if so, and hold the message if it is signed by that.
            await self._devices(sender)
            changed = self.contacts.changed_identity(sender, device)
            if changed is None:
                raise
            verify(signed, changed, delivered)
            self._held.setdefault(name_key(sender), []).append(line)
            self._ui.show(
                self._style.warning(
                    f"HELD an end-to-end message from {sender}: it is signed by the "
                    f"CHANGED key of their device {device}. Compare /fingerprint "
                    f"{sender} with them; /trust {sender} shows it."
                )
            )
            return None
        a = envelope.address
        if not self.seen.admit(a.sender, a.sender_device, a.msgid, envelope.ts):
            raise Refused(
                f"message {a.msgid} was shown before: a replay, or the server "
                "delivering it again after a lost connection"
            )
        return envelope

    # Files

    def _save(self, name: str, data: object) -> Deferred[None]:
        return self._worker.run(files.write_json, self._directory / name, data)

    def _failed(self, failure: Failure) -> None:
        if self._protocol.closed.called:
            return
        self._log.failure("end-to-end work failed", failure)
        self._ui.show(self._style.warning(f"Internal error: {failure.value!r}"))


def _load(directory: Path) -> dict[str, Any]:
    return {
        name: files.read_json(directory / name)
        for name in (files.KEYS_FILE, files.CONTACTS_FILE, files.SEEN_FILE)
    }


def _parsed(make: Callable[[Any], T], stored: dict[str, Any], name: str) -> T:
    try:
        return make(stored[name])
    except (TypeError, AttributeError, KeyError, ValueError) as error:
        raise ValueError(f"{name} is malformed ({error!r})") from None
