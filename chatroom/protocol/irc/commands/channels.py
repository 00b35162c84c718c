"""Channels: JOIN, PART, NAMES, LIST (moderation's commands are in L{modes})."""

from __future__ import annotations

import re

from chatroom.errors import (
    AlreadyMember,
    BadName,
    BadRoomKey,
    Banned,
    InviteOnly,
    NoSuchRoom,
    NotMember,
    RoomExists,
    RoomFull,
    TooManyRooms,
)
from chatroom.masks import matches
from chatroom.names import check_reason, name_key
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.history import join_read_marker
from chatroom.protocol.irc.commands.messages import fit_text
from chatroom.protocol.irc.commands.table import (
    channel_name,
    command,
    targets,
)
from chatroom.protocol.irc.message import Message
from chatroom.service import moderation

# What refuses a join, and IRC's numeric for it.
JOIN_REFUSALS = {
    Banned: wire.ERR_BANNEDFROMCHAN,
    InviteOnly: wire.ERR_INVITEONLYCHAN,
    BadRoomKey: wire.ERR_BADCHANNELKEY,
    RoomFull: wire.ERR_CHANNELISFULL,
}


@command(
    "JOIN",
    1,
    usage="JOIN <#room>{,<#room>} [<key>{,<key>}] | JOIN 0",
    help="join rooms (a new one is created, you its operator); 0 leaves all",
)
async def join(conn, msg: Message) -> None:
    if msg.params[0] == "0":
        for room in list(conn.avatar.rooms()):
            await _part(conn, room.name, None)
        return
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for index, target in enumerate(targets(msg.params[0])):
        room = channel_name(target)
        if room is None:
            conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
            continue
        key = keys[index] if index < len(keys) and keys[index] else None
        try:
            name = await _join_or_create(conn.avatar, room, key)
        except AlreadyMember:
            # Joined from another client of the account: join this one too.
            name = conn.chat.rooms.find(room).name
        except BadName:
            conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "Illegal channel name")
            continue
        except TooManyRooms as e:
            conn.numeric(wire.ERR_TOOMANYCHANNELS, target, e.message)
            continue
        except tuple(JOIN_REFUSALS) as e:
            conn.numeric(JOIN_REFUSALS[type(e)], target, e.message)
            continue
        conn.joined(name, await join_read_marker(conn, f"#{name}"))


async def _join_or_create(avatar, room: str, key: str | None) -> str:
    try:
        return await avatar.join(room, key)
    except NoSuchRoom:
        try:
            return await avatar.create_room(room)
        except RoomExists:
            return await avatar.join(room, key)


@command("PART", 1, usage="PART <#room>{,<#room>} [:<reason>]", help="leave rooms")
async def part(conn, msg: Message) -> None:
    reason = msg.params[1] if len(msg.params) > 1 else None
    for target in targets(msg.params[0]):
        await _part(conn, target, reason)


async def _part(conn, target: str, reason: str | None) -> None:
    room = target[1:] if target.startswith("#") else target
    if reason is not None:
        reason = fit_text("PART", f"#{room}", reason, conn.mask)
    try:
        name = await conn.avatar.leave(room, reason)
    except (NoSuchRoom, BadName):
        conn.numeric(wire.ERR_NOSUCHCHANNEL, f"#{room}", "No such channel")
        return
    except NotMember:
        conn.numeric(wire.ERR_NOTONCHANNEL, f"#{room}", "You're not on that channel")
        return
    # As the service kept it, which is what the others were shown.
    reason = check_reason(reason) if reason is not None else None
    params = (f"#{name}",) if reason is None else (f"#{name}", reason)
    conn.write(
        wire.line("PART", *params, source=conn.mask, tags=conn.event_tags(conn.nick))
    )


@command("NAMES", usage="NAMES <#room>{,<#room>}", help="who is in a room")
async def names(conn, msg: Message) -> None:
    if not msg.params:
        conn.numeric(wire.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    named = targets(msg.params[0])
    if len(named) == 1:
        conn.names(named[0])
        return
    # One end for all of them, naming them as they were asked for.
    for target in named:
        conn.names(target, end=False)
    conn.numeric(wire.RPL_ENDOFNAMES, msg.params[0], "End of /NAMES list")


@command(
    "LIST",
    usage="LIST [<#room>{,<#room>}|<filter>]",
    help="rooms with their members and topics",
)
async def list_rooms(conn, msg: Message) -> None:
    """
    Rooms someone is in now, or those named, filtered as ELIST=MNU says
    (C{*an?}, C{!*an?}, C{>N}, C{<N}), but secret ones one is not in: with
    their members and topic.
    """
    rooms = conn.chat.rooms
    words = targets(msg.params[0]) if msg.params else []
    named = [w for w in words if w.startswith("#") and not _WILDCARDS.search(w)]
    tests = [_list_test(w) for w in words if w not in named]
    if named:
        found = (rooms.by_key.get(name_key_of(t)) for t in named)
        shown = [room for room in found if room is not None]
    else:
        is_online = conn.chat.is_online
        shown = sorted(
            (
                room
                for room in rooms.by_id.values()
                if any(is_online(user_id) for user_id in room.members)
            ),
            key=lambda room: room.key,
        )
    conn.numeric(wire.RPL_LISTSTART, "Channel", "Users  Name")
    for room in shown:
        if moderation.is_visible(room, conn.account_id) and all(
            test(room) for test in tests
        ):
            conn.numeric(
                wire.RPL_LIST,
                f"#{room.name}",
                str(len(room.members)),
                moderation.modes_of(room).topic,
            )
    conn.numeric(wire.RPL_LISTEND, "End of /LIST")


_WILDCARDS = re.compile(r"[*?]")


def _list_test(word: str):
    """What one LIST filter asks of a room (one it does not know asks nothing)."""
    if word[:1] in "<>" and word[1:].isdigit():
        bound = int(word[1:])
        if word[0] == ">":
            return lambda room: len(room.members) > bound
        return lambda room: len(room.members) < bound
    negated = word.startswith("!")
    mask = (word[1:] if negated else word).lower()
    return lambda room: matches(mask, f"#{room.key}") != negated


def name_key_of(target: str) -> str:
    """The room key a C{#channel} names ("" for one that is no channel)."""
    room = channel_name(target)
    return name_key(room) if room else ""
