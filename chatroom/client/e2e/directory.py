"""
Other devices' keys as the server lists them, judged against the pinned
ones: what a message may be sealed to, the warnings a change deserves,
C{/fingerprint} and C{/trust}.
"""

from chatroom.client.e2e.contacts import DeviceKey, parse_listing, safety_number
from chatroom.client.e2e.device import LocalDevice
from chatroom.client.e2e.files import CONTACTS_FILE
from chatroom.client.lines import Err
from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import Style
from chatroom.client.ui import Screen


class KeyDirectory:
    """Lists devices with C{/keys USER} and checks them for C{device}."""

    def __init__(
        self,
        protocol: ChatClientProtocol,
        ui: Screen,
        style: Style,
        device: LocalDevice,
    ) -> None:
        self._protocol = protocol
        self._ui = ui
        self._style = style
        self._device = device

    async def usable(self, user: str) -> list[DeviceKey] | None:
        """
        C{user}'s devices a message may go to, fresh from the server, each
        pinned on first use or listed with its pinned identity (this device
        left out); L{None} if the server refused, which is shown.
        """
        listed = await self.listed(user)
        if listed is None:
            return None
        return await self._review(user, listed)

    async def listed(self, user: str) -> list[DeviceKey] | None:
        """C{user}'s validly signed devices as the server lists them."""
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
        if self._device.is_me(user):
            listed = [key for key in listed if key.device != self._device.keys.device]
        return listed

    async def _review(self, user: str, listed: list[DeviceKey]) -> list[DeviceKey]:
        review = self._device.contacts.review(user, listed)
        if review.first or review.added or review.changed:
            try:
                await self._device.save_contacts()
            except OSError as error:
                # Pinned all the same, for this session: failing here would
                # drop a message the server already counts delivered.
                self._ui.show(
                    self._style.warning(
                        f"Cannot save {CONTACTS_FILE} ({error}): the keys pinned "
                        "now hold for this session only."
                    )
                )
        own = self._device.is_me(user)
        whose = "your account" if own else user
        if review.first:
            first = ", ".join(review.first)
            self._ui.show(
                self._style.info(
                    f"your other devices: pinned the keys of {first}; check "
                    f"/fingerprint {user} on each"
                    if own
                    else f"first end-to-end contact with {user}: pinned the keys "
                    f"of {first}; /fingerprint {user} shows the safety number to "
                    "compare"
                )
            )
        if review.added:
            self._ui.show(
                self._style.warning(
                    f"{whose} has a new end-to-end device: {', '.join(review.added)}"
                    f". It now gets {'copies of your' if own else 'your'} messages; "
                    f"if {'you' if own else 'they'} did not add it, compare "
                    f"/fingerprint {user}."
                )
            )
        for device in review.changed:
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
        return review.usable

    def blocked(self, user: str) -> list[str]:
        """Devices of C{user} whose changed identity is not trusted yet."""
        return self._device.contacts.blocked(user)

    async def fingerprint(self, user: str) -> None:
        """Show the safety number of this account and C{user}."""
        me = self._device.account
        theirs = await self.listed(user)
        mine = await self.listed(me)
        if theirs is None or mine is None:
            return
        await self._review(user, theirs)
        if not self._device.is_me(user):
            await self._review(me, mine)
        my_keys = [self._device.keys.identity_public] + [k.identity for k in mine]
        their_keys = (
            my_keys if self._device.is_me(user) else [key.identity for key in theirs]
        )
        groups = safety_number(me, my_keys, user, their_keys).split(" ")
        self._ui.show(
            self._style.info(
                f"safety number with {user} ({len(my_keys)} device(s) of yours, "
                f"{len(their_keys)} of theirs):\n"
                f"   {' '.join(groups[:6])}\n   {' '.join(groups[6:])}\n"
                f"{user} sees the same number with /fingerprint {me} when "
                "nobody is in between; compare it in person or on a call."
            )
        )
        blocked = self.blocked(user)
        if blocked:
            self._ui.show(
                self._style.warning(
                    f"Changed, not trusted: {', '.join(blocked)}. If the numbers "
                    f"match, /trust {user}."
                )
            )

    async def trust(self, user: str) -> bool:
        """Pin C{user}'s changed identities; whether there were any."""
        devices = self._device.contacts.trust(user)
        if not devices:
            self._ui.show(
                self._style.info(
                    f"nothing to trust: no changed key of {user} seen in this "
                    f"session (/fingerprint {user} checks again)"
                )
            )
            return False
        await self._device.save_contacts()
        self._ui.show(
            self._style.info(
                f"trusted the new keys of {user}'s {', '.join(devices)}; messages "
                "to them are sent again"
            )
        )
        return True
