"""
IRC's command table: one entry per command, with whether it works before
registration and how many parameters it needs, checked in one place
(L{dispatch}) before its handler runs.  Handlers call the admission gate
(registration) or the avatar (everything after it) and write replies
through the connection; the rules live in the service layer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatroom.errors import (
    AlreadyMember,
    AuthFailed,
    BadName,
    ChatError,
    NameTaken,
    NoSuchRoom,
    NoSuchUser,
    NotMember,
    RateLimited,
    RoomExists,
    TooManyRooms,
)
from chatroom.names import NAME_MAX, check_name, name_key
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.message import Message

# The capabilities this server really implements.
CAPABILITIES = {
    "cap-notify": None,
    "echo-message": None,
    "multi-prefix": None,
    "sasl": "PLAIN",
    "server-time": None,
    "userhost-in-names": None,
}
# SASL: bytes of one AUTHENTICATE chunk, and of the whole response.
SASL_CHUNK = 400
SASL_MAX = 4096
NOT_REGISTERED_HELP = (
    "this server needs an account: log in with SASL PLAIN, or send PASS with"
    " your password (your nick is your account); no account yet? create one"
    " on the chatroom line port with /register NAME PASSWORD"
)

Handler = Callable[["object", Message], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    min_params: int = 0
    before_registration: bool = False


COMMANDS: dict[str, Command] = {}


def command(name: str, min_params: int = 0, before_registration: bool = False):
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, handler, min_params, before_registration)
        return handler

    return register


async def dispatch(conn, msg: Message) -> None:
    """Run one parsed message; ChatErrors become numerics or FAIL replies."""
    cmd = COMMANDS.get(msg.command)
    if cmd is None:
        if conn.registered:
            conn.numeric(wire.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
        else:
            conn.numeric(wire.ERR_NOTREGISTERED, "You have not registered")
        return
    if not conn.registered and not cmd.before_registration:
        conn.numeric(wire.ERR_NOTREGISTERED, "You have not registered")
        if conn.refused_account:
            conn.notice(NOT_REGISTERED_HELP)
        return
    if len(msg.params) < cmd.min_params:
        conn.numeric(wire.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
        return
    try:
        await cmd.handler(conn, msg)
    except ChatError as e:
        conn.write(wire.fail(msg.command, e.code.upper().replace("-", "_"), e.message))


def channel_name(target: str) -> str | None:
    """The room a C{#channel} names, or None if it is not a channel."""
    return target[1:] if target.startswith("#") else None


# Registration


@command("CAP", 1, before_registration=True)
async def cap(conn, msg: Message) -> None:
    sub = msg.params[0].upper()
    if sub == "LS":
        if not conn.registered:
            conn.negotiating = True
        version = msg.params[1] if len(msg.params) > 1 else ""
        if version.isdigit() and int(version) >= 302:
            conn.cap_version = 302
            # Implied by CAP LS 302 (IRCv3 cap-notify).
            conn.caps.add("cap-notify")
        offered = " ".join(
            name if value is None or conn.cap_version < 302 else f"{name}={value}"
            for name, value in CAPABILITIES.items()
        )
        conn.cap_reply("LS", offered)
    elif sub == "LIST":
        conn.cap_reply("LIST", " ".join(sorted(conn.caps)))
    elif sub == "REQ":
        if not conn.registered:
            conn.negotiating = True
        wanted = msg.params[1] if len(msg.params) > 1 else ""
        changes = wanted.split()
        names = [c[1:] if c.startswith("-") else c for c in changes]
        if not changes or any(name not in CAPABILITIES for name in names):
            conn.cap_reply("NAK", wanted)
            return
        for change in changes:
            if change.startswith("-"):
                conn.caps.discard(change[1:])
            else:
                conn.caps.add(change)
        conn.cap_reply("ACK", wanted)
    elif sub == "END":
        if not conn.registered:
            conn.negotiating = False
            await conn.try_registration()
    else:
        conn.numeric(wire.ERR_INVALIDCAPCMD, sub, "Invalid CAP command")


@command("PASS", 1, before_registration=True)
async def pass_(conn, msg: Message) -> None:
    if conn.registered:
        conn.numeric(wire.ERR_ALREADYREGISTRED, "You may not reregister")
        return
    conn.password = msg.params[0]


@command("NICK", before_registration=True)
async def nick(conn, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        conn.numeric(wire.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    new = msg.params[0]
    try:
        check_name(new)
    except BadName as e:
        conn.numeric(wire.ERR_ERRONEUSNICKNAME, new, e.message)
        return
    if not conn.registered:
        conn.nick = new
        await conn.try_registration()
        return
    if new == conn.nick:
        return
    old_mask = conn.mask
    try:
        await conn.avatar.rename(new)
    except NameTaken as e:
        conn.numeric(wire.ERR_NICKNAMEINUSE, new, e.message)
        return
    except BadName as e:
        conn.numeric(wire.ERR_ERRONEUSNICKNAME, new, e.message)
        return
    conn.nick = conn.avatar.name
    conn.write(wire.line("NICK", conn.nick, source=old_mask))


@command("USER", 4, before_registration=True)
async def user(conn, msg: Message) -> None:
    if conn.registered or conn.username is not None:
        conn.numeric(wire.ERR_ALREADYREGISTRED, "You may not reregister")
        return
    username, _, _, realname = msg.params[:4]
    if not username:
        conn.numeric(wire.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    conn.username = username[:NAME_MAX]
    conn.realname = realname
    await conn.try_registration()


@command("AUTHENTICATE", 1, before_registration=True)
async def authenticate(conn, msg: Message) -> None:
    if "sasl" not in conn.caps:
        conn.numeric(wire.ERR_SASLFAIL, "SASL authentication failed")
        return
    if conn.avatar is not None:
        conn.numeric(wire.ERR_SASLALREADY, "You have already authenticated")
        return
    data = msg.params[0]
    if data == "*":
        conn.sasl = None
        conn.numeric(wire.ERR_SASLABORTED, "SASL authentication aborted")
        return
    if conn.sasl is None:
        if data.upper() != "PLAIN":
            conn.numeric(wire.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
            conn.numeric(wire.ERR_SASLFAIL, "SASL authentication failed")
            return
        conn.sasl = ""
        conn.write(wire.line("AUTHENTICATE", "+"))
        return
    if len(data) > SASL_CHUNK or len(conn.sasl) + len(data) > SASL_MAX:
        conn.sasl = None
        conn.numeric(wire.ERR_SASLTOOLONG, "SASL message too long")
        return
    if data != "+":
        conn.sasl += data
    if len(data) == SASL_CHUNK:
        return  # more follows
    response, conn.sasl = conn.sasl, None
    try:
        authzid, authcid, password = (
            base64.b64decode(response, validate=True).decode("utf-8").split("\0")
        )
    except (binascii.Error, UnicodeDecodeError, ValueError):
        conn.numeric(wire.ERR_SASLFAIL, "SASL authentication failed")
        return
    if authzid and name_key(authzid) != name_key(authcid):
        conn.numeric(wire.ERR_SASLFAIL, "SASL authentication failed")
        return
    try:
        await conn.log_in(authcid, password)
    except (AuthFailed, BadName, RateLimited) as e:
        conn.numeric(wire.ERR_SASLFAIL, f"SASL authentication failed: {e.message}")
        return
    name = conn.avatar.name
    conn.numeric(
        wire.RPL_LOGGEDIN,
        conn.mask_for(conn.nick or name),
        name,
        f"You are now logged in as {name}",
    )
    conn.numeric(wire.RPL_SASLSUCCESS, "SASL authentication successful")


@command("PING", 1, before_registration=True)
async def ping(conn, msg: Message) -> None:
    conn.write(wire.line("PONG", conn.server, msg.params[0], source=conn.server))


@command("PONG", before_registration=True)
async def pong(conn, msg: Message) -> None:
    return None


@command("QUIT", before_registration=True)
async def quit_(conn, msg: Message) -> None:
    reason = msg.params[0] if msg.params else "Client quit"
    conn.close(f"Quit: {reason}")


# Chat


def _targets(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


@command("JOIN", 1)
async def join(conn, msg: Message) -> None:
    if msg.params[0] == "0":
        for room in list(conn.avatar.rooms()):
            await _part(conn, room.name, None)
        return
    for target in _targets(msg.params[0]):
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
    for target in _targets(msg.params[0]):
        await _part(conn, target, reason)


async def _part(conn, target: str, reason: str | None) -> None:
    room = target[1:] if target.startswith("#") else target
    try:
        name = await conn.avatar.leave(room)
    except (NoSuchRoom, BadName):
        conn.numeric(wire.ERR_NOSUCHCHANNEL, f"#{room}", "No such channel")
        return
    except NotMember:
        conn.numeric(wire.ERR_NOTONCHANNEL, f"#{room}", "You're not on that channel")
        return
    params = (f"#{name}",) if reason is None else (f"#{name}", reason)
    conn.write(wire.line("PART", *params, source=conn.mask))


@command("PRIVMSG")
async def privmsg(conn, msg: Message) -> None:
    await _message(conn, msg, errors=True)


@command("NOTICE")
async def notice(conn, msg: Message) -> None:
    # A NOTICE is never answered with an error (RFC 2812 3.3.2).
    await _message(conn, msg, errors=False)


async def _message(conn, msg: Message, errors: bool) -> None:
    if not msg.params:
        if errors:
            conn.numeric(wire.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
        return
    if len(msg.params) < 2 or not msg.params[1]:
        if errors:
            conn.numeric(wire.ERR_NOTEXTTOSEND, "No text to send")
        return
    text = msg.params[1]
    for target in _targets(msg.params[0]):
        room = channel_name(target)
        try:
            if room is not None:
                sent = await conn.avatar.say(room, text)
                if "echo-message" in conn.caps:
                    conn.room_message(sent, echo=True)
            else:
                await conn.avatar.send_private(target, text)
                if "echo-message" in conn.caps:
                    conn.write(conn.message_line("PRIVMSG", target, text, conn.mask))
        except (NoSuchRoom, NoSuchUser, BadName):
            if errors:
                if room is not None:
                    conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
                else:
                    conn.numeric(wire.ERR_NOSUCHNICK, target, "No such nick/channel")
        except NotMember:
            if errors:
                conn.numeric(
                    wire.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel"
                )
        except ChatError as e:
            if errors:
                conn.write(
                    wire.fail(msg.command, e.code.upper().replace("-", "_"), e.message)
                )


@command("NAMES")
async def names(conn, msg: Message) -> None:
    if not msg.params:
        conn.numeric(wire.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for target in _targets(msg.params[0]):
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


@command("WHO")
async def who(conn, msg: Message) -> None:
    mask = msg.params[0] if msg.params else "*"
    room = channel_name(mask)
    if room is not None:
        try:
            found = conn.chat.rooms.find(room)
        except (NoSuchRoom, BadName):
            found = None
        if found is not None:
            for name in sorted(found.members.values(), key=str.lower):
                conn.who_reply(f"#{found.name}", name)
    elif conn.chat.online_by_key.get(name_key(mask)) is not None:
        conn.who_reply("*", conn.chat.online_by_key[name_key(mask)].name)
    conn.numeric(wire.RPL_ENDOFWHO, mask, "End of WHO list")


@command("WHOIS", 1)
async def whois(conn, msg: Message) -> None:
    target = msg.params[-1]
    account = conn.chat.online_by_key.get(name_key(target))
    if account is None:
        conn.numeric(wire.ERR_NOSUCHNICK, target, "No such nick/channel")
        conn.numeric(wire.RPL_ENDOFWHOIS, target, "End of /WHOIS list")
        return
    name = account.name
    username, host, realname = conn.identity_of(name)
    conn.numeric(wire.RPL_WHOISUSER, name, username, host, "*", realname)
    rooms = conn.chat.rooms.rooms_of(account.id)
    if rooms:
        conn.numeric(
            wire.RPL_WHOISCHANNELS, name, " ".join(f"#{r.name}" for r in rooms)
        )
    conn.numeric(wire.RPL_WHOISSERVER, name, conn.server, "chatroom")
    if not account.is_guest:
        conn.numeric(wire.RPL_WHOISACCOUNT, name, name, "is logged in as")
    conn.numeric(wire.RPL_ENDOFWHOIS, name, "End of /WHOIS list")


@command("MODE", 1)
async def mode(conn, msg: Message) -> None:
    target = msg.params[0]
    room = channel_name(target)
    if room is None:
        if name_key(target) != name_key(conn.nick):
            code = (
                wire.ERR_NOSUCHNICK
                if conn.chat.online_by_key.get(name_key(target)) is None
                else wire.ERR_USERSDONTMATCH
            )
            conn.numeric(code, target, "Cannot change mode for other users")
        elif len(msg.params) > 1:
            conn.numeric(wire.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
        else:
            conn.numeric(wire.RPL_UMODEIS, "+")
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


@command("MOTD")
async def motd(conn, msg: Message) -> None:
    conn.motd()


@command("LUSERS")
async def lusers(conn, msg: Message) -> None:
    conn.lusers()
