"""
Moderation by name, one change at a time, for front ends without IRC's
MODE (the line protocol): ban (which also puts the banned out), mute,
roles and a room's settings, each a L{RoomModeration.change_modes} of one
change; and deleting a room, its history with it.  The rules are
L{chatroom.service.moderation}'s.
"""

from __future__ import annotations

from typing import NamedTuple

from chatroom.errors import (
    BadModeParam,
    ChatError,
    NotBanned,
    NotMuted,
    NotOwner,
    PermissionDenied,
)
from chatroom.service import moderation
from chatroom.service.events import Membership, ModeChange
from chatroom.storage.store import LOBBY

# The flag modes' names, in the order /room show lists them.
FLAG_SETTINGS = {
    name: mode for mode, name in moderation.SETTING_NAMES.items() if mode not in "kl"
}


class Changed(NamedTuple):
    """What one change did: the room, the change as made, and whether it did."""

    room: str
    change: ModeChange
    changed: bool


class Banned(NamedTuple):
    room: str
    mask: str
    changed: bool
    # The members the ban put out of the room.
    removed: list[str]


class Settings(NamedTuple):
    room: str
    # (setting, value) in the order shown.
    settings: list[tuple[str, str]]


class Deleted(NamedTuple):
    room: str
    members: int
    messages: int


class RoomActions:
    """The by-name moderation of a L{chatroom.service.avatar.Session}."""

    __slots__ = ()

    async def change_one(
        self, room: str, change: ModeChange, missing: ChatError | None = None
    ) -> Changed:
        """
        Make C{change}; its refusal is raised.  One that changes nothing
        (already so) is no error, unless C{missing} says what to raise.
        """
        result = await self.change_modes(room, [change])
        if result.refused:
            raise result.refused[0][1]
        if result.applied:
            return Changed(result.room, result.applied[0], True)
        if missing is not None:
            raise missing
        return Changed(result.room, change, False)

    async def ban(self, room: str, name: str) -> Banned:
        """Ban C{name} (a name or a mask of names), which puts out who it matches."""
        mask = _ban_mask(name)
        result = await self.change_modes(room, [ModeChange(True, "b", mask)])
        if result.refused:
            raise result.refused[0][1]
        return Banned(result.room, mask, bool(result.applied), list(result.put_out))

    async def unban(self, room: str, name: str) -> Changed:
        mask = _ban_mask(name)
        return await self.change_one(
            room,
            ModeChange(False, "b", mask),
            NotBanned(f"#{room.removeprefix('#')} has no ban on {mask}"),
        )

    async def mute(self, room: str, name: str) -> Changed:
        mask = _mute_mask(name)
        return await self.change_one(room, ModeChange(True, "b", mask))

    async def unmute(self, room: str, name: str) -> Changed:
        mask = _mute_mask(name)
        return await self.change_one(
            room,
            ModeChange(False, "b", mask),
            NotMuted(
                f"#{room.removeprefix('#')} has no mute on"
                f" {mask.removeprefix(moderation.MUTE)}"
            ),
        )

    def room_settings(self, room: str) -> Settings:
        """A room's owner, topic, modes, roles, bans and mutes, as words."""
        user_id = self.account.id
        target = moderation.find_visible(self.chat.rooms, room, user_id)
        modes = moderation.modes_of(target)
        # Who is in it (and with what role) is for its members, as /who is.
        member = user_id in target.members
        members = target.members if member else {}
        shown: list[tuple[str, str]] = []
        if modes.owner_id in members:
            shown.append(("owner", members[modes.owner_id]))
        shown.append(("topic", modes.topic or "(none)"))
        for setting, letter in FLAG_SETTINGS.items():
            shown.append((setting, "on" if letter in modes.flags else "off"))
        if modes.key is None:
            shown.append(("key", "off"))
        else:
            # The key itself only to operators, who may change it anyway.
            is_op = moderation.is_operator(target, user_id)
            shown.append(("key", modes.key if is_op else "set"))
        shown.append(("limit", str(modes.limit) if modes.limit else "off"))
        for role, bit in (("operator", moderation.OP), ("voiced", moderation.VOICE)):
            names = sorted(
                (
                    members[uid]
                    for uid, r in modes.roles.items()
                    if r & bit and uid in members
                ),
                key=str.lower,
            )
            if names:
                shown.append((role, " ".join(names)))
        for mask in modes.bans:
            if mask.startswith(moderation.MUTE):
                shown.append(("mute", mask.removeprefix(moderation.MUTE)))
            else:
                shown.append(("ban", mask))
        return Settings(target.name, shown)

    async def delete_room(self, room: str) -> Deleted:
        """
        Delete C{room} (its owner or the admin): every member is told and
        put out, and its messages, bans and members' roles go with it.
        """
        chat, account = self.chat, self.account
        target = await chat.find_room(room)
        if target.key == LOBBY:
            raise PermissionDenied("the lobby cannot be deleted")
        if not moderation.is_owner(target, account):
            raise NotOwner(
                f"only the owner of #{target.name} or the admin may delete it"
            )
        messages = await chat.store.delete_room(target.id, "#" + target.key)
        if chat.rooms.by_id.get(target.id) is not target:
            return Deleted(target.name, 0, messages)  # deleted meanwhile
        members = list(target.members)
        chat.record(account.id, account.name, "delete", f"#{target.name}")
        reason = f"#{target.name} was deleted by {account.name}"
        # Told before they go, so they hear it.
        chat.announce(
            target,
            Membership(
                Membership.DELETE,
                target.name,
                account.name,
                f"{reason}, with its history",
                detail=reason,
            ),
        )
        for user_id in members:
            chat.kicked(target, user_id)
        chat.rooms.remove_room(target)
        chat.membership.tell_room_deleted(target)
        return Deleted(target.name, len(members), messages)


def _ban_mask(name: str) -> str:
    mask = moderation.normalise_mask(name)
    if mask.startswith(moderation.MUTE):
        raise BadModeParam("b", name, "that is a mute: /mute ROOM NAME")
    return mask


def _mute_mask(name: str) -> str:
    # As IRC writes it (m:bob) or not (bob): the same mute.
    if name[:2].lower() != moderation.MUTE:
        name = moderation.MUTE + name
    return moderation.normalise_mask(name)
