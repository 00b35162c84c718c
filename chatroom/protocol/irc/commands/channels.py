"""Channels: JOIN, PART, NAMES, TOPIC, MODE."""

from __future__ import annotations

from chatroom.errors import (
    AlreadyMember,
    BadName,
    NoSuchRoom,
    NotMember,
    RoomExists,
    TooManyRooms,
)
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.server import user_mode
from chatroom.protocol.irc.commands.table import (
    channel_name,
    command,
    targets,
)
from chatroom.protocol.irc.message import Message


@command("JOIN", 1)
async def join(conn, msg: Message) -> None:
    if msg.params[0] == "0":
        for room in list(conn.avatar.rooms()):
            await _part(conn, room.name, None)
        return
    for target in targets(msg.params[0]):
        room = channel_name(target)
        if room is None:
            conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
            continue
        try:
            name = await _join_or_create(conn.avatar, room)
        except AlreadyMember:
            # Joined from another client of the account: join this one too.
            name = conn.chat.rooms.find(room).name
        except BadName:
            conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "Illegal channel name")
            continue
        except TooManyRooms as e:
            conn.numeric(wire.ERR_TOOMANYCHANNELS, target, e.message)
            continue
        conn.joined(name)


async def _join_or_create(avatar, room: str) -> str:
    try:
        return await avatar.join(room)
    except NoSuchRoom:
        try:
            return await avatar.create_room(room)
        except RoomExists:
            return await avatar.join(room)


@command("PART", 1)
async def part(conn, msg: Message) -> None:
    reason = msg.params[1] if len(msg.params) > 1 else None
    for target in targets(msg.params[0]):
        await _part(conn, target, reason)


async def _part(conn, target: str, reason: str | None) -> None:
    room = target[1:] if target.startswith("#") else target
    try:
        name = await conn.avatar.leave(room, reason)
    except (NoSuchRoom, BadName):
        conn.numeric(wire.ERR_NOSUCHCHANNEL, f"#{room}", "No such channel")
        return
    except NotMember:
        conn.numeric(wire.ERR_NOTONCHANNEL, f"#{room}", "You're not on that channel")
        return
    params = (f"#{name}",) if reason is None else (f"#{name}", reason)
    conn.write(
        wire.line("PART", *params, source=conn.mask, tags=conn.event_tags(conn.nick))
    )


@command("NAMES")
async def names(conn, msg: Message) -> None:
    if not msg.params:
        conn.numeric(wire.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for target in targets(msg.params[0]):
        conn.names(target)


@command("TOPIC", 1)
async def topic(conn, msg: Message) -> None:
    target = msg.params[0]
    room = channel_name(target)
    try:
        found = conn.chat.rooms.find(room) if room is not None else None
    except (NoSuchRoom, BadName):
        found = None
    if found is None:
        conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    if conn.account_id not in found.members:
        conn.numeric(wire.ERR_NOTONCHANNEL, target, "You're not on that channel")
        return
    if len(msg.params) > 1:
        conn.numeric(
            wire.ERR_CHANOPRIVSNEEDED, target, "Rooms here have no topic to set"
        )
        return
    conn.numeric(wire.RPL_NOTOPIC, f"#{found.name}", "No topic is set")


@command("MODE", 1)
async def mode(conn, msg: Message) -> None:
    target = msg.params[0]
    room = channel_name(target)
    if room is None:
        user_mode(conn, msg)
        return
    try:
        found = conn.chat.rooms.find(room)
    except (NoSuchRoom, BadName):
        conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    if len(msg.params) == 1:
        conn.numeric(wire.RPL_CHANNELMODEIS, f"#{found.name}", "+nt")
    elif msg.params[1] in ("b", "+b"):
        conn.numeric(wire.RPL_ENDOFBANLIST, f"#{found.name}", "End of channel ban list")
    else:
        conn.numeric(
            wire.ERR_CHANOPRIVSNEEDED,
            f"#{found.name}",
            "Channel modes cannot be changed",
        )
