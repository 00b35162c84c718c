"""
Moderation: MODE, TOPIC, KICK, INVITE.  The rules are the service's
(L{chatroom.service.moderation}); here, IRC's syntax and numerics.
"""

from __future__ import annotations

from chatroom.errors import (
    AlreadyMember,
    BadModeParam,
    BadName,
    BanListFull,
    ChatError,
    NoSuchRoom,
    NoSuchUser,
    NotMember,
    NotOperator,
    UserNotInRoom,
)
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.server import user_mode
from chatroom.protocol.irc.commands.table import channel_name, command, targets
from chatroom.protocol.irc.message import Message
from chatroom.service import moderation
from chatroom.service.events import ModeChange

# Mode changes with a parameter one MODE line may make (ISUPPORT MODES).
MODES_PER_LINE = 6


def _room_errors(conn, channel: str, error: ChatError) -> bool:
    """Reply to what is wrong with the channel or our place in it, if it is."""
    if isinstance(error, (NoSuchRoom, BadName)):
        conn.numeric(wire.ERR_NOSUCHCHANNEL, channel, "No such channel")
    elif isinstance(error, NotMember):
        conn.numeric(wire.ERR_NOTONCHANNEL, channel, "You're not on that channel")
    elif isinstance(error, NotOperator):
        conn.numeric(wire.ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator")
    else:
        return False
    return True


@command(
    "MODE",
    1,
    usage="MODE <#room>|<nick> [<changes> [<params>]]",
    help="a room's or your own modes, or change them",
)
async def mode(conn, msg: Message) -> None:
    target = msg.params[0]
    room = channel_name(target)
    if room is None:
        user_mode(conn, msg)
        return
    try:
        # A secret room is no channel to those not in it.
        found = moderation.find_visible(conn.chat.rooms, room, conn.account_id)
    except (NoSuchRoom, BadName):
        conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    channel = f"#{found.name}"
    if len(msg.params) == 1:
        _show_modes(conn, found, channel)
        return
    changes, lists, unknown = parse_modes(msg.params[1], msg.params[2:])
    for letter in unknown:
        conn.numeric(wire.ERR_UNKNOWNMODE, letter, "is an unknown mode char to me")
    if lists:
        _show_bans(conn, found.name, channel)
    if not changes:
        return
    try:
        result = await conn.avatar.change_modes(found.name, changes)
    except ChatError as e:
        if not _room_errors(conn, channel, e):
            raise
        return
    # What was applied comes back as the MODE line the room is told.
    for change, error in result.refused:
        _refused(conn, channel, change, error)


def parse_modes(
    text: str, params: list[str]
) -> tuple[list[ModeChange], bool, list[str]]:
    """
    The changes C{text} and its C{params} ask for; whether the ban list is
    asked for (C{b} with no mask); the letters no mode has.
    """
    changes: list[ModeChange] = []
    lists, unknown = False, []
    adding, given = True, iter(params)
    with_param = 0
    for letter in text:
        if letter in "+-":
            adding = letter == "+"
            continue
        if letter not in moderation.MODES:
            unknown.append(letter)
            continue
        param = None
        if letter in "bkov" or (letter == "l" and adding):
            param = next(given, None)
            if param is None and letter == "b":
                lists = True
                continue
            with_param += 1
            if with_param > MODES_PER_LINE:
                continue
        changes.append(ModeChange(adding, letter, param))
    return changes, lists, unknown


def _refused(conn, channel: str, change: ModeChange, error: ChatError) -> None:
    if isinstance(error, BadModeParam):
        # A key refused is not repeated back; an empty one cannot be.
        param = "*" if error.mode == "k" or not error.param else error.param
        conn.numeric(
            wire.ERR_INVALIDMODEPARAM, channel, error.mode, param, error.message
        )
    elif isinstance(error, NoSuchUser):
        conn.numeric(wire.ERR_NOSUCHNICK, change.param, "No such nick/channel")
    elif isinstance(error, UserNotInRoom):
        conn.numeric(
            wire.ERR_USERNOTINCHANNEL,
            change.param,
            channel,
            "They aren't on that channel",
        )
    elif isinstance(error, BanListFull):
        conn.numeric(wire.ERR_BANLISTFULL, channel, change.param, error.message)
    else:
        conn.write(wire.error_fail("MODE", error, source=conn.server))


def _show_modes(conn, room, channel: str) -> None:
    modes = moderation.modes_of(room)
    letters, params = "+" + modes.flags, []
    member = conn.account_id in room.members
    if modes.key is not None:
        letters += "k"
        # The key is the members' to know.
        params.append(modes.key if member else "*")
    if modes.limit:
        letters += "l"
        params.append(str(modes.limit))
    conn.numeric(wire.RPL_CHANNELMODEIS, channel, letters, *params)
    if room.created_at:
        conn.numeric(wire.RPL_CREATIONTIME, channel, str(room.created_at // 1000))


def _show_bans(conn, room: str, channel: str) -> None:
    try:
        bans = conn.avatar.bans(room)
    except NotMember:
        bans = []
    for ban in bans:
        conn.numeric(
            wire.RPL_BANLIST, channel, ban.mask, ban.set_by, str(ban.set_at // 1000)
        )
    conn.numeric(wire.RPL_ENDOFBANLIST, channel, "End of channel ban list")


@command("TOPIC", 1, usage="TOPIC <#room> [:<topic>]", help="a room's topic, or set it")
async def topic(conn, msg: Message) -> None:
    target = msg.params[0]
    room = channel_name(target)
    if room is None:
        conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    try:
        if len(msg.params) > 1:
            # Told to the room, us included, as a TOPIC line.
            await conn.avatar.set_topic(room, msg.params[1])
            return
        found = conn.avatar.topic(room)
    except ChatError as e:
        if not _room_errors(conn, target, e):
            raise
        return
    conn.show_topic(*found, always=True)


@command(
    "KICK",
    2,
    usage="KICK <#room> <nick> [:<reason>]",
    help="put someone out of a room you operate",
)
async def kick(conn, msg: Message) -> None:
    target = msg.params[0]
    reason = msg.params[2] if len(msg.params) > 2 else None
    room = channel_name(target)
    if room is None:
        conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    for user in targets(msg.params[1]):
        try:
            await conn.avatar.kick(room, user, reason)
        except UserNotInRoom:
            conn.numeric(
                wire.ERR_USERNOTINCHANNEL, user, target, "They aren't on that channel"
            )
        except NoSuchUser:
            conn.numeric(wire.ERR_NOSUCHNICK, user, "No such nick/channel")
        except ChatError as e:
            if not _room_errors(conn, target, e):
                raise
            return


@command(
    "INVITE",
    usage="INVITE [<nick> <#room>]",
    help="invite someone into a room you operate; alone, list your invitations",
)
async def invite(conn, msg: Message) -> None:
    if not msg.params:
        for room in conn.avatar.invitations():
            conn.numeric(wire.RPL_INVITELIST, f"#{room}")
        conn.numeric(wire.RPL_ENDOFINVITELIST, "End of /INVITE list")
        return
    if len(msg.params) < 2:
        conn.numeric(wire.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    user, target = msg.params[0], msg.params[1]
    room = channel_name(target)
    try:
        if room is None:
            raise NoSuchRoom()
        name = await conn.avatar.invite(user, room)
    except NoSuchUser:
        conn.numeric(wire.ERR_NOSUCHNICK, user, "No such nick/channel")
        return
    except AlreadyMember:
        conn.numeric(wire.ERR_USERONCHANNEL, user, target, "is already on channel")
        return
    except ChatError as e:
        if not _room_errors(conn, target, e):
            raise
        return
    conn.numeric(wire.RPL_INVITING, name, target)
