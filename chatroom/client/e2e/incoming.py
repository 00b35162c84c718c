"""
Receiving: each C{~ e2e} delivery opened and checked, in order, and shown
with a lock, or refused with a warning and never shown; messages signed by
a changed identity are held until C{/trust}.
"""

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from chatroom.client.e2e.device import LocalDevice
from chatroom.client.e2e.directory import KeyDirectory
from chatroom.client.e2e.envelope import Address, Envelope, Refused, decrypt, verify
from chatroom.client.e2e.files import SEEN_FILE
from chatroom.client.e2e.keys import unb64
from chatroom.client.lines import E2eDelivery, PrivateMessage, ServerLine, Timestamped
from chatroom.client.render import Style
from chatroom.client.ui import Screen
from chatroom.names import name_key

# What the server sends a session that is no device instead of a ciphertext.
PLACEHOLDER = "[end-to-end encrypted message: read it in the bundled client]"
# Messages held from one user until /trust, at most: anyone can sign with a
# new identity, so what is held must not grow without end.
HELD_MAX = 100


class Inbox:
    """Opens what the server delivers to this device."""

    def __init__(
        self,
        ui: Screen,
        style: Style,
        device: LocalDevice,
        directory: KeyDirectory,
        failed: Callable[[Failure], None],
    ) -> None:
        self._ui = ui
        self._style = style
        self._device = device
        self._directory = directory
        self._failed = failed
        self._last: Deferred[None] = succeed(None)
        self._held: dict[str, list[E2eDelivery]] = {}

    def receive(self, line: E2eDelivery) -> None:
        """Open, check and show one delivery, after those before it."""
        self._last.addCallback(
            lambda _: Deferred.fromCoroutine(self._open(line))
        ).addErrback(self._failed)

    def release(self, user: str) -> None:
        """Open again what was held back from C{user}, now trusted."""
        for line in self._held.pop(name_key(user), []):
            self.receive(line)

    async def _open(self, line: E2eDelivery) -> None:
        try:
            envelope = await self._check(line)
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
        try:
            await self._device.save_seen()
        except OSError as error:
            # Shown all the same: the server counts it delivered, so not
            # showing it would lose it.
            self._ui.show(
                self._style.warning(
                    f"Cannot save {SEEN_FILE} ({error}): after a restart a replay "
                    "of this message would not be caught."
                )
            )
        if self._device.is_me(line.sender):
            shown = self._style.sealed_own_copy(
                line.at, envelope.peer, line.sender_device, envelope.text
            )
            recipient = envelope.peer
        else:
            shown = self._style.sealed_received(line.at, line.sender, envelope.text)
            recipient = self._device.account
        self._ui.show(shown)
        await self._device.history.record(
            line.at, line.sender, recipient, envelope.text
        )

    async def _check(self, line: E2eDelivery) -> Envelope | None:
        """The checked envelope, L{None} if held back; or raise L{Refused}."""
        device = self._device
        if not device.is_me(line.recipient) or line.device != device.keys.device:
            raise Refused(
                f"it is addressed to {line.recipient} ({line.device}), not to "
                "this device"
            )
        try:
            ciphertext = unb64(line.ciphertext)
        except ValueError:
            raise Refused("it is not base64") from None
        signed = decrypt(ciphertext, device.keys.secrets())
        sender, sender_device = line.sender, line.sender_device
        delivered = Address(
            sender, sender_device, line.recipient, line.device, line.msgid
        )
        if device.contacts.identity(sender, sender_device) is None:
            # The first message from this device: pin what the server lists.
            await self._directory.usable(sender)
        identity = device.contacts.identity(sender, sender_device)
        if identity is None:
            raise Refused("the server lists no such device, so it cannot be checked")
        try:
            envelope = verify(signed, identity, delivered)
        except Refused:
            # Perhaps the device has a new identity: list it again, which
            # warns if so, and hold the message if it is signed by that.
            await self._directory.usable(sender)
            changed = device.contacts.changed_identity(sender, sender_device)
            if changed is None:
                raise
            verify(signed, changed, delivered)
            if len(self._held.get(name_key(sender), ())) >= HELD_MAX:
                raise Refused(
                    f"it is signed by the CHANGED key of {sender}'s device "
                    f"{sender_device}, and {HELD_MAX} such messages are held "
                    f"already; compare /fingerprint {sender}, then /trust {sender}"
                ) from None
            self._hold(line)
            return None
        a = envelope.address
        # The sender's time, but no later than the end of the second the
        # server got it: a sender must not push the replay floor (replay.py)
        # into the future; a server that lies about the time only gets
        # messages refused, never a replay accepted.
        ts = min(envelope.ts, line.at * 1000 + 999)
        if not device.seen.admit(a.sender, a.sender_device, a.msgid, ts):
            raise Refused(
                f"message {a.msgid} was shown before: a replay, or the server "
                "delivering it again after a lost connection"
            )
        return envelope

    def _hold(self, line: E2eDelivery) -> None:
        self._held.setdefault(name_key(line.sender), []).append(line)
        self._ui.show(
            self._style.warning(
                f"HELD an end-to-end message from {line.sender}: it is signed by "
                f"the CHANGED key of their device {line.sender_device}. Compare "
                f"/fingerprint {line.sender} with them; /trust {line.sender} "
                "shows it."
            )
        )


def placeholder_note(style: Style, line: ServerLine) -> str | None:
    """
    What to show for the server's placeholder of a sealed message, which a
    session gets before it publishes (the message itself follows), or
    L{None} if C{line} is no placeholder.
    """
    inner = line.line if isinstance(line, Timestamped) else line
    if (
        not isinstance(inner, PrivateMessage)
        or inner.action
        or inner.text != PLACEHOLDER
    ):
        return None
    return style.sealed_placeholder(inner.sender)
