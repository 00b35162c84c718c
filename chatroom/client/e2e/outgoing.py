"""
Sending: C{/msg USER TEXT} sealed once per device of USER and per other
device of the sender, all under one message id; C{/plain} as a plain
C{/private}, only when asked for by name.
"""

import secrets

from twisted.internet.defer import gatherResults
from twisted.internet.interfaces import IReactorTime

from chatroom.client.e2e.contacts import DeviceKey
from chatroom.client.e2e.device import LocalDevice
from chatroom.client.e2e.directory import KeyDirectory
from chatroom.client.e2e.envelope import (
    MAX_TEXT_BYTES,
    Address,
    Envelope,
    TooLong,
    seal,
)
from chatroom.client.e2e.keys import b64
from chatroom.client.lines import Err, Ok
from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import Style
from chatroom.client.ui import Screen

PLAIN_USAGE = "/plain USER TEXT"


def refuse_to_send(ui: Screen, style: Style, user: str, why: str) -> None:
    """Say that nothing was sent, why, and how to send in the clear."""
    ui.show(
        style.warning(
            f"NOT SENT: {why}. {PLAIN_USAGE.replace('USER', user)} sends it "
            "unencrypted: the server can read it."
        )
    )


async def send_plain(
    protocol: ChatClientProtocol, ui: Screen, style: Style, user: str, text: str
) -> None:
    """A private message the server can read, because the user said so."""
    reply = await protocol.request(f"/private {user} {text}")
    if isinstance(reply.final, Ok):
        ui.show(style.plain_sent(user, text))
    else:
        ui.show(style.server_line(reply.final))


class Outbox:
    """Seals and sends this device's messages."""

    def __init__(
        self,
        protocol: ChatClientProtocol,
        ui: Screen,
        style: Style,
        device: LocalDevice,
        directory: KeyDirectory,
        clock: IReactorTime,
    ) -> None:
        self._protocol = protocol
        self._ui = ui
        self._style = style
        self._device = device
        self._directory = directory
        self._clock = clock

    async def send(self, user: str, text: str) -> None:
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            self._refuse(
                user, f"an end-to-end message holds at most {MAX_TEXT_BYTES} bytes"
            )
            return
        targets = await self._targets(user)
        if not targets:
            return
        msgid = secrets.token_urlsafe(16)
        ts = int(self._clock.seconds() * 1000)
        me, keys = self._device.account, self._device.keys
        requests = []
        try:
            for owner, device in targets:
                address = Address(me, keys.device, owner, device.device, msgid)
                envelope = Envelope(address, user, ts, text)
                sealed = seal(envelope, keys.identity, device.prekey)
                requests.append(f"/e2e {owner} {device.device} {msgid} {b64(sealed)}")
        except TooLong as error:
            self._refuse(user, f"the message is too long to seal ({error})")
            return
        replies = await gatherResults([self._protocol.request(r) for r in requests])
        reached = False
        for (owner, device), reply in zip(targets, replies, strict=True):
            if isinstance(reply.final, Err):
                self._ui.show(
                    self._style.warning(
                        f"not delivered to {owner}'s device {device.device}: "
                        f"{reply.final.code}: {reply.final.text}"
                    )
                )
            elif owner == user:
                reached = True
        if reached:
            self._ui.show(self._style.sealed_sent(user, text))
            await self._device.history.record(ts / 1000, me, user, text)

    async def _targets(self, user: str) -> list[tuple[str, DeviceKey]]:
        """
        (owner, device) for each ciphertext to send: USER's devices and this
        account's others; none, with the reason shown, if it must not go.
        """
        me = self._device.account
        to_self = self._device.is_me(user)
        theirs = await self._directory.usable(user)
        mine = theirs if to_self else await self._directory.usable(me)
        if theirs is None or mine is None:
            return []
        blocked = [(user, device) for device in self._directory.blocked(user)]
        if not to_self:
            blocked += [(me, device) for device in self._directory.blocked(me)]
        if blocked:
            devices = ", ".join(f"{owner}'s {device}" for owner, device in blocked)
            owner = blocked[0][0]
            self._ui.show(
                self._style.warning(
                    f"NOT SENT: the identity key of {devices} changed and is not "
                    f"trusted. Compare /fingerprint {owner} with "
                    f"{'your other device' if owner == me else 'them'}, "
                    f"then /trust {owner}."
                )
            )
            return []
        if not theirs:
            known = self._device.contacts.pinned_devices(user)
            if to_self:
                self._ui.show(self._style.info("you have no other devices: not sent"))
            elif known:
                # Not "no bundled client": a server hiding every device of a
                # contact would so talk the sender into /plain.
                self._refuse(
                    user,
                    f"the server lists no end-to-end device of {user}, yet "
                    f"{user}'s {', '.join(known)} was pinned here: removed, or "
                    f"hidden by the server so that you send in the clear. Ask "
                    f"{user} before you do",
                )
            else:
                self._refuse(
                    user,
                    f"{user} has no end-to-end devices (no bundled client has "
                    "published keys for them)",
                )
            return []
        targets = [(user, device) for device in theirs]
        if not to_self:
            targets += [(me, device) for device in mine]
        return targets

    def _refuse(self, user: str, why: str) -> None:
        refuse_to_send(self._ui, self._style, user, why)
