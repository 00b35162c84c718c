"""
Room moderation: members' roles, a room's topic and modes, bans and
invitations, and the rules they make, once for every front end.

The creator of a room is its owner and first operator; the owner (and the
admin, owner of every room) may always make itself operator again.
Operators grant and take operator and voice, set the topic (anyone may
while the topic is not locked), kick, ban and set the modes.  The modes
are named by IRC's letters, which every front end may show: C{i}
invite-only, C{k} key, C{l} member limit, C{m} moderated (operators and
voiced members speak), C{n} no messages from outside, C{s} secret, C{t}
topic locked; C{b} bans, C{o} operator, C{v} voice.  A new room is C{+nt}.

A mute is a ban whose mask starts with C{m:} (IRC's mute extban,
C{MODE #room +b m:NICK!*@*}): it keeps the bans' list, storage and
limit, lets its account join, and stops it speaking; voice or operator
lifts it, as a ban's.

A room's state is in a L{RoomModes} made the first time it differs from
the defaults; settings, bans and accounts' roles are stored, a guest's
roles and every invitation live in memory only.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from chatroom.errors import (
    AlreadyMember,
    BadModeParam,
    BadRoomKey,
    BanListFull,
    Banned,
    CannotSpeak,
    ChatError,
    InviteOnly,
    NoSuchRoom,
    NoSuchUser,
    NotMember,
    NotOperator,
    RoomFull,
    TextTooLong,
    UserNotInRoom,
)
from chatroom.masks import matches
from chatroom.names import check_text, name_key
from chatroom.service.events import Membership, ModeChange
from chatroom.storage.store import ModeWrite

# Role bits, as stored.
VOICE, OP = 1, 2
ROLE_MODES = {"o": OP, "v": VOICE}
FLAG_MODES = "imnst"
DEFAULT_FLAGS = "nt"
# Every mode a change may name, and those that take a parameter to be set.
MODES = "bklov" + FLAG_MODES
MODES_WITH_PARAM = "bklov"
KEY_MAX = 23
LIMIT_MAX = 100_000
TOPIC_MAX = 390
KICK_MAX = 390
BANS_MAX = 100
# Invitations one room remembers at most (the oldest go first).
INVITES_MAX = 100
_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # printable ASCII, no space or comma
_WILD = re.compile(r"\*+")
# The mute extban's prefix (RPL_ISUPPORT EXTBAN=,m).
MUTE = "m:"


class ModeResult(NamedTuple):
    room: str
    applied: list[ModeChange]
    refused: list[tuple[ModeChange, ChatError]]
    # Members a new ban put out of the room, by name.
    put_out: tuple[str, ...] = ()


class Ban(NamedTuple):
    mask: str
    set_by: str
    set_at: int


class Topic(NamedTuple):
    room: str
    text: str
    set_by: str
    set_at: int


class RoomModes:
    """A room's moderation state: owner, modes, topic, roles, bans, invitations."""

    __slots__ = (
        "owner_id",
        "flags",
        "key",
        "limit",
        "topic",
        "topic_by",
        "topic_at",
        "roles",
        "bans",
        "invited",
    )

    def __init__(self, owner_id: int | None = None) -> None:
        self.owner_id = owner_id
        self.flags = DEFAULT_FLAGS
        self.key: str | None = None
        self.limit = 0
        self.topic = ""
        self.topic_by = ""
        self.topic_at = 0
        # Role bits by user id; members with none are not here.
        self.roles: dict[int, int] = {}
        # By mask (normalised, lower case), oldest first.
        self.bans: dict[str, Ban] = {}
        # Ids invited and not yet come in, oldest first.
        self.invited: dict[int, None] | None = None


# What a room without state has; never changed.
DEFAULTS = RoomModes()


def modes_of(room) -> RoomModes:
    return room.mod if room.mod is not None else DEFAULTS


def state_of(room) -> RoomModes:
    """The room's state, made as it first needs one."""
    if room.mod is None:
        room.mod = RoomModes()
    return room.mod


def role_of(room, user_id: int) -> int:
    return modes_of(room).roles.get(user_id, 0)


def is_operator(room, user_id: int) -> bool:
    return bool(role_of(room, user_id) & OP)


def is_owner(room, account) -> bool:
    return account.is_admin or modes_of(room).owner_id == account.id


def is_secret(room) -> bool:
    return "s" in modes_of(room).flags


def find_visible(rooms, name: str, user_id: int | None):
    """
    The room called C{name}, or L{NoSuchRoom} if there is none or it is a
    secret one C{user_id} is not in: a secret room does not exist to others.
    """
    room = rooms.find(name)
    if not is_visible(room, user_id):
        raise NoSuchRoom(f"there is no room called {name}")
    return room


def is_visible(room, user_id: int | None) -> bool:
    """Whether C{user_id} may see the room listed: not secret, or a member."""
    return "s" not in modes_of(room).flags or user_id in room.members


def prefix(room, user_id: int, multi: bool = False) -> str:
    """IRC's C{@} and C{+} for a member: the highest, or all with C{multi}."""
    role = role_of(room, user_id)
    marks = ("@" if role & OP else "") + ("+" if role & VOICE else "")
    return marks if multi else marks[:1]


# Bans


def normalise_mask(mask: str) -> str:
    """
    A ban mask as kept: C{nick!user@host}, lower case.  Bans are by account
    name, the nick; every user and host here is the server's, so a mask
    naming one would ban everybody or nobody and is refused.  A mute
    keeps its C{m:} before the mask.
    """
    if mask[:2].lower() == MUTE:
        return MUTE + _normalise_ban(mask[2:])
    return _normalise_ban(mask)


def _normalise_ban(mask: str) -> str:
    nick, _, rest = mask.partition("!")
    user, _, host = rest.partition("@")
    user, host = user or "*", host or "*"
    if not nick or _WILD.fullmatch(user) is None or _WILD.fullmatch(host) is None:
        raise BadModeParam(
            "b", mask, "bans are by name: NICK!*@*, with * and ? in NICK"
        )
    if len(nick) > 64 or not nick.isprintable() or " " in nick:
        raise BadModeParam("b", mask, "that is not a ban mask")
    return f"{nick.lower()}!*@*"


def mask_matches(mask: str, key: str) -> bool:
    """Whether the (normalised) C{mask} names the account whose key is C{key}."""
    return matches(mask.removeprefix(MUTE).partition("!")[0], key)


def is_banned(room, account) -> bool:
    # Not a regex: a mask like *a*a*a...b would take seconds on each join.
    bans = modes_of(room).bans
    return any(
        mask_matches(mask, account.key) for mask in bans if not mask.startswith(MUTE)
    )


def banned_in(rooms, account):
    """
    The first of C{rooms} whose bans or mutes name C{account} (not its
    owner's), or None: a ban is by name, so a new name would lift it.
    """
    for room in rooms:
        modes = room.mod
        if modes is None or not modes.bans or is_owner(room, account):
            continue
        if any(mask_matches(mask, account.key) for mask in modes.bans):
            return room
    return None


# The rules a join and a message meet


def check_join(room, account, key: str | None) -> None:
    """Raise why C{account} may not join C{room}; an invitation lets one in."""
    modes = room.mod
    if modes is None or is_owner(room, account):
        return
    if modes.invited is not None and account.id in modes.invited:
        return
    if modes.bans and is_banned(room, account):
        raise Banned(f"you are banned from #{room.name}")
    if "i" in modes.flags:
        raise InviteOnly(f"#{room.name} is invite-only: ask an operator to invite you")
    if modes.key is not None and key != modes.key:
        raise BadRoomKey(f"#{room.name} needs its key")
    if modes.limit and len(room.members) >= modes.limit:
        raise RoomFull(f"#{room.name} is full ({modes.limit} members)")


def joined(room, user_id: int) -> None:
    """An invitation is used up by the join it allowed."""
    modes = room.mod
    if modes is not None and modes.invited:
        modes.invited.pop(user_id, None)


def check_speak(room, account) -> None:
    """Raise why C{account} may not send to C{room}."""
    modes = modes_of(room)
    if account.id not in room.members and "n" in modes.flags:
        raise NotMember(f"you are not in #{room.name}")
    if modes.roles.get(account.id, 0):
        return
    if "m" in modes.flags:
        raise CannotSpeak(f"#{room.name} is moderated: only voiced members speak")
    if not modes.bans:
        return
    # One pass per message over the bans and mutes: a ban, said first,
    # outranks a mute.
    muted = False
    for mask in modes.bans:
        if mask_matches(mask, account.key):
            if not mask.startswith(MUTE):
                raise CannotSpeak(f"you are banned from #{room.name}")
            muted = True
    if muted:
        raise CannotSpeak(f"you are muted in #{room.name}")


def load(rooms, records) -> None:
    """Put what storage keeps (L{ModerationRecords}) into the rooms."""
    by_id = rooms.by_id
    for settings in records.settings:
        room = by_id.get(settings.room_id)
        if room is None:
            continue
        room.created_at = settings.created_at
        if (
            settings.created_by is None
            and settings.modes == DEFAULT_FLAGS
            and not (settings.topic or settings.key or settings.limit)
        ):
            continue
        modes = state_of(room)
        modes.owner_id = settings.created_by
        modes.flags = settings.modes
        modes.key, modes.limit = settings.key, settings.limit
        modes.topic, modes.topic_by = settings.topic, settings.topic_by
        modes.topic_at = settings.topic_at
    for room_id, user_id, role in records.roles:
        room = by_id.get(room_id)
        if room is not None and user_id in room.members:
            state_of(room).roles[user_id] = role
    for room_id, mask, set_by, set_at in records.bans:
        room = by_id.get(room_id)
        if room is not None:
            state_of(room).bans[mask] = Ban(mask, set_by, set_at)


def snapshot(room) -> dict:
    """
    What another node needs of the room's state, as the bus carries it:
    accounts' roles and invitations only, a guest's (its id is this node's
    alone) stay here.
    """
    modes = modes_of(room)
    owner_id = modes.owner_id
    return {
        "owner_id": owner_id if owner_id is not None and owner_id > 0 else None,
        "flags": modes.flags,
        "key": modes.key,
        "limit": modes.limit,
        "topic": modes.topic,
        "topic_by": modes.topic_by,
        "topic_at": modes.topic_at,
        "roles": [[uid, role] for uid, role in modes.roles.items() if uid > 0],
        "bans": [list(ban) for ban in modes.bans.values()],
        "invited": [uid for uid in modes.invited or () if uid > 0],
    }


def apply_snapshot(room, state: dict) -> None:
    """Put another node's L{snapshot} of the room in place of what is here."""
    modes = state_of(room)
    if state["owner_id"] is not None or (modes.owner_id or 0) > 0:
        modes.owner_id = state["owner_id"]
    modes.flags = state["flags"]
    modes.key, modes.limit = state["key"], state["limit"]
    modes.topic, modes.topic_by = state["topic"], state["topic_by"]
    modes.topic_at = state["topic_at"]
    roles = {uid: role for uid, role in modes.roles.items() if uid < 0}
    roles.update((uid, role) for uid, role in state["roles"] if uid in room.members)
    modes.roles = roles
    modes.bans = {mask: Ban(mask, by, at) for mask, by, at in state["bans"]}
    invited = {uid: None for uid in modes.invited or () if uid < 0}
    invited.update((uid, None) for uid in state["invited"])
    modes.invited = invited or None


def _member_id(chat, room, name: str) -> int:
    """The id of the member called C{name}; why not if none is."""
    key = name_key(name)
    for user_id, member in room.members.items():
        if name_key(member) == key:
            return user_id
    if chat.online_by_key.get(key) is None:
        raise NoSuchUser(f"there is no user called {name}")
    raise UserNotInRoom(f"{name} is not in #{room.name}")


def _check_key(key: str) -> str:
    if len(key) > KEY_MAX or _KEY.fullmatch(key) is None:
        raise BadModeParam(
            "k", key, f"a key is 1 to {KEY_MAX} printable characters, no space or comma"
        )
    return key


def _check_limit(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= LIMIT_MAX:
        raise BadModeParam("l", text, f"a limit is a number from 1 to {LIMIT_MAX}")
    return int(text)


class RoomModeration:
    """The moderation actions of a L{chatroom.service.avatar.Session}."""

    __slots__ = ()

    def topic(self, room: str) -> Topic:
        target = find_visible(self.chat.rooms, room, self.account.id)
        modes = modes_of(target)
        return Topic(target.name, modes.topic, modes.topic_by, modes.topic_at)

    async def set_topic(self, room: str, text: str) -> Topic:
        """Set (or, with C{""}, clear) the topic; told to the room."""
        find_visible(self.chat.rooms, room, self.account.id)
        target = self._member_room(room)
        chat, account = self.chat, self.account
        if "t" in modes_of(target).flags and not is_operator(target, account.id):
            raise NotOperator(f"the topic of #{target.name} is for operators to set")
        text = check_text(text) if text else ""
        if len(text) > TOPIC_MAX:
            raise TextTooLong(f"a topic is at most {TOPIC_MAX} characters")
        at = chat.now()
        await chat.store.store_topic(target.id, text, account.name, at)
        modes = state_of(target)
        modes.topic, modes.topic_by, modes.topic_at = text, account.name, at
        chat.membership.tell_room_state(target)
        chat.record(account.id, account.name, "topic", f"#{target.name}")
        said = f"set the topic: {text}" if text else "cleared the topic"
        chat.announce(
            target,
            Membership(
                Membership.TOPIC,
                target.name,
                account.name,
                f"#{target.name}: {account.name} {said}",
                detail=text,
            ),
        )
        return Topic(target.name, text, account.name, at)

    async def kick(self, room: str, user: str, reason: str | None = None) -> str:
        """Put C{user} out of C{room}, saying why; the name they had."""
        target = self._member_room(room)
        chat, account = self.chat, self.account
        if not is_operator(target, account.id):
            raise NotOperator(f"only operators of #{target.name} may kick")
        user_id = _member_id(chat, target, user)
        reason = check_text(reason) if reason else account.name
        if len(reason) > KICK_MAX:
            raise TextTooLong(f"a reason is at most {KICK_MAX} characters")
        if user_id > 0:
            await chat.store.remove_kicked(target.id, user_id)
        name = target.members.get(user_id)
        if name is None:
            return user  # they left meanwhile
        chat.record(account.id, account.name, "kick", f"#{target.name} {name}")
        # Told before they go, so they hear it too.
        chat.announce(
            target,
            Membership(
                Membership.KICK,
                target.name,
                account.name,
                f"#{target.name}: {account.name} kicked {name} ({reason})",
                detail=(name, reason),
            ),
        )
        chat.kicked(target, user_id)
        return name

    async def invite(self, user: str, room: str) -> str:
        """Invite C{user}, online, into C{room}; the name they have."""
        chat, account = self.chat, self.account
        target = self._member_room(room)
        invitee = chat.online_by_key.get(name_key(user))
        if invitee is None:
            raise NoSuchUser(f"nobody called {user} is online")
        operator = is_operator(target, account.id)
        if "i" in modes_of(target).flags and not operator:
            raise NotOperator(f"only operators of #{target.name} may invite")
        if invitee.id in target.members:
            raise AlreadyMember(f"{invitee.name} is already in #{target.name}")
        if operator:
            self._let_in(target, invitee.id)
            chat.membership.tell_room_state(target)
        event = Membership(
            Membership.INVITE,
            target.name,
            account.name,
            f"{account.name} invites you to #{target.name}",
            detail=invitee.name,
        )
        chat.fanout.publish(invitee.channel, event).addErrback(
            lambda f: self.log.failure("inviting {user}", f, user=invitee.name)
        )
        return invitee.name

    def _let_in(self, room, user_id: int) -> None:
        # Only an operator's invitation is a pass (past +i, a ban, the key,
        # the limit): a member's, where +i is off, would undo their bans.
        modes = state_of(room)
        if modes.invited is None:
            modes.invited = {}
        modes.invited.pop(user_id, None)
        modes.invited[user_id] = None
        if len(modes.invited) > INVITES_MAX:
            del modes.invited[next(iter(modes.invited))]

    def invitations(self) -> list[str]:
        """The rooms this account is invited into and has not joined."""
        user_id = self.account.id
        return sorted(
            room.name
            for room in self.chat.rooms.by_id.values()
            if room.mod is not None and room.mod.invited and user_id in room.mod.invited
        )

    def bans(self, room: str) -> list[Ban]:
        target = self.chat.rooms.find(room)
        if not is_visible(target, self.account.id):
            raise NotMember(f"you are not in #{target.name}")
        return list(modes_of(target).bans.values())

    async def change_modes(self, room: str, changes: list[ModeChange]) -> ModeResult:
        """
        Apply what may be of C{changes}, stored in one transaction and told
        to the room; the others are refused one by one with their reasons.
        """
        target = self._member_room(room)
        chat, account = self.chat, self.account
        if not is_operator(target, account.id) and not (
            is_owner(target, account)
            and all(
                c.adding and c.mode == "o" and name_key(c.param or "") == account.key
                for c in changes
            )
        ):
            raise NotOperator(f"only operators of #{target.name} may change its modes")
        current = modes_of(target)
        flags, key, limit = set(current.flags), current.key, current.limit
        roles: dict[int, int] = {}
        added: dict[str, Ban] = {}
        removed: list[str] = []
        applied: list[ModeChange] = []
        refused: list[tuple[ModeChange, ChatError]] = []
        at = chat.now()
        for change in changes:
            adding, mode, param = change
            try:
                if mode in FLAG_MODES:
                    if adding != (mode in flags):
                        (flags.add if adding else flags.discard)(mode)
                        applied.append(ModeChange(adding, mode))
                elif mode == "k":
                    new = _check_key(param or "") if adding else None
                    if new != key:
                        key = new
                        applied.append(ModeChange(adding, "k", new or "*"))
                elif mode == "l":
                    new = _check_limit(param or "") if adding else 0
                    if new != limit:
                        limit = new
                        applied.append(
                            ModeChange(adding, "l", str(new) if adding else None)
                        )
                elif mode in ROLE_MODES and param:
                    user_id = _member_id(chat, target, param)
                    role = roles.get(user_id, current.roles.get(user_id, 0))
                    bit = ROLE_MODES[mode]
                    new = role | bit if adding else role & ~bit
                    if new != role:
                        roles[user_id] = new
                        applied.append(
                            ModeChange(adding, mode, target.members[user_id])
                        )
                elif mode == "b" and param:
                    mask = normalise_mask(param)
                    if adding and mask not in current.bans and mask not in added:
                        if len(current.bans) + len(added) >= BANS_MAX:
                            raise BanListFull(
                                f"#{target.name} has {BANS_MAX} bans, the most"
                            )
                        added[mask] = Ban(mask, account.name, at)
                        applied.append(ModeChange(True, "b", mask))
                    elif not adding and mask in current.bans and mask not in removed:
                        removed.append(mask)
                        applied.append(ModeChange(False, "b", mask))
            except ChatError as e:
                refused.append((change, e))
        if applied:
            await chat.store.store_modes(
                ModeWrite(
                    target.id,
                    "".join(sorted(flags)),
                    key,
                    limit,
                    tuple((uid, role) for uid, role in roles.items() if uid > 0),
                    tuple(added.values()),
                    tuple(removed),
                )
            )
            self._apply_modes(target, flags, key, limit, roles, added, removed)
            chat.membership.tell_room_state(target)
            shown = " ".join(_describe(change) for change in applied)
            chat.record(account.id, account.name, "mode", f"#{target.name} {shown}")
            chat.announce(
                target,
                Membership(
                    Membership.MODE,
                    target.name,
                    account.name,
                    f"#{target.name}: {account.name} "
                    + ", ".join(_said(change) for change in applied),
                    detail=tuple(applied),
                ),
            )
        put_out: list[str] = []
        for change in applied:
            if (
                change.adding
                and change.mode == "b"
                and not change.param.startswith(MUTE)
            ):
                put_out += await self._put_out_banned(target, change.param)
        return ModeResult(target.name, applied, refused, tuple(put_out))

    async def _put_out_banned(self, target, mask: str) -> list[str]:
        """A ban ends the membership of those it names: put them out."""
        chat, account = self.chat, self.account
        reason = f"banned by {account.name}"
        owner_id = modes_of(target).owner_id
        removed = []
        for user_id, member in list(target.members.items()):
            # The owner and the admin may always come back: not put out.
            online = chat.online.get(user_id)
            exempt = user_id in (account.id, owner_id) or (
                online is not None and online.is_admin
            )
            if not exempt and mask_matches(mask, name_key(member)):
                try:
                    removed.append(await self.kick(target.name, member, reason))
                except (NoSuchUser, UserNotInRoom):
                    pass  # left (or renamed) while the others were put out
        return removed

    def _apply_modes(self, room, flags, key, limit, roles, added, removed) -> None:
        modes = state_of(room)
        modes.flags = "".join(sorted(flags))
        modes.key, modes.limit = key, limit
        for user_id, role in roles.items():
            # A member who left meanwhile has no role left to change.
            if user_id not in room.members:
                continue
            if role:
                modes.roles[user_id] = role
            else:
                modes.roles.pop(user_id, None)
        for mask in removed:
            modes.bans.pop(mask, None)
        modes.bans.update(added)


def _describe(change: ModeChange) -> str:
    sign = "+" if change.adding else "-"
    return sign + change.mode + (f" {change.param}" if change.param else "")


# The modes as people read them (the line protocol's notices, /room show).
SETTING_NAMES = {
    "t": "topic-lock",
    "i": "invite-only",
    "m": "moderated",
    "s": "secret",
    "n": "no-external",
    "k": "key",
    "l": "limit",
}


def _said(change: ModeChange) -> str:
    """One applied change in words: C{muted bob}, C{set invite-only on}."""
    adding, mode, param = change
    if mode == "b":
        name = (param or "").removesuffix("!*@*")
        if name.startswith(MUTE):
            return ("muted " if adding else "unmuted ") + name.removeprefix(MUTE)
        return ("banned " if adding else "unbanned ") + name
    if mode == "o":
        return f"made {param} an operator" if adding else f"took operator from {param}"
    if mode == "v":
        return f"gave voice to {param}" if adding else f"took voice from {param}"
    if mode == "k":
        return "set a key" if adding else "removed the key"
    if mode == "l":
        return f"set the limit to {param}" if adding else "removed the limit"
    return f"set {SETTING_NAMES[mode]} {'on' if adding else 'off'}"
