"""
The server and its operators: TIME, VERSION, INFO, the counts LUSERS
shows, user modes, and OPER, KILL, WALLOPS.

A server operator is a session given the password of an operator account:
the admin's, or one named by C{--irc-oper}.  OPER names that account, as an
oper block is named on other servers, and the admission gate checks its
password as it checks a login's (throttled, never a password in a file).
"""

from __future__ import annotations

import time

from chatroom.errors import (
    AuthFailed,
    BadName,
    BadText,
    NoSuchUser,
    PermissionDenied,
    RateLimited,
)
from chatroom.masks import matches
from chatroom.names import name_key
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.table import command
from chatroom.protocol.irc.message import Message

# The user modes this server knows: bot, invisible, operator, wallops.
USER_MODES = "Biow"
# Modes a user may set on itself; +o only comes from OPER.
SELF_MODES = frozenset("Biw")
# IRCv3 bot-mode: the user mode a bot sets (ISUPPORT BOT).
BOT_MODE = "B"
ISUPPORT_PER_LINE = 12
INFO = (
    "chatroom: one chat core on Twisted, spoken as a line protocol and as IRC.",
    "Rooms are channels; an account stays in its channels while offline,",
    "and reads what it missed there in their history.",
)


def is_operator(account) -> bool:
    """Whether any session of C{account} is a server operator's."""
    return any(session.operator is not None for session in account.sessions)


def is_this_server(conn, target: str) -> bool:
    """Whether C{target} (our name or a mask of it, or a user on it) names us."""
    if matches(target.lower(), conn.server.lower()):
        return True
    return conn.chat.online_by_key.get(name_key(target)) is not None


def user_modes(conn) -> str:
    operator = conn.avatar is not None and conn.avatar.operator is not None
    return "+" + "".join(sorted(conn.modes | ({"o"} if operator else set())))


def isupport(conn) -> None:
    tokens = conn.factory.isupport()
    for start in range(0, len(tokens), ISUPPORT_PER_LINE):
        conn.numeric(
            wire.RPL_ISUPPORT,
            *tokens[start : start + ISUPPORT_PER_LINE],
            "are supported by this server",
        )


def lusers(conn) -> None:
    """
    RPL_LUSER*: everyone online on this server, whatever their front end;
    invisible (+i) and unregistered connections are IRC's, and the most
    users is the most seen at once by an IRC welcome or LUSERS.  Counted
    from what the factory keeps, as every welcome sends this.
    """
    chat, factory = conn.chat, conn.factory
    users = len(chat.online)
    factory.peak_users = peak = max(factory.peak_users, users)
    # Connections, not accounts: at most everyone.
    invisible = min(len(factory.invisible), users)
    operators = len(
        {client.avatar.account.id for client in factory.operators if client.avatar}
    )
    unknown = len(factory.clients) - factory.registered
    conn.numeric(
        wire.RPL_LUSERCLIENT,
        f"There are {users - invisible} users and {invisible} invisible on 1 servers",
    )
    conn.numeric(wire.RPL_LUSEROP, str(operators), "operator(s) online")
    if unknown:
        conn.numeric(wire.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
    conn.numeric(wire.RPL_LUSERCHANNELS, str(len(chat.rooms.by_id)), "channels formed")
    conn.numeric(wire.RPL_LUSERME, f"I have {users} clients and 0 servers")
    conn.numeric(
        wire.RPL_LOCALUSERS,
        str(users),
        str(peak),
        f"Current local users {users}, max {peak}",
    )
    conn.numeric(
        wire.RPL_GLOBALUSERS,
        str(users),
        str(peak),
        f"Current global users {users}, max {peak}",
    )


@command("TIME", usage="TIME", help="the server's time")
async def time_(conn, msg: Message) -> None:
    if msg.params and not is_this_server(conn, msg.params[0]):
        conn.numeric(wire.ERR_NOSUCHSERVER, msg.params[0], "No such server")
        return
    now = time.gmtime(conn.factory.clock.seconds())
    conn.numeric(
        wire.RPL_TIME, conn.server, time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", now)
    )


@command("VERSION", usage="VERSION", help="this server's version and what it supports")
async def version(conn, msg: Message) -> None:
    if msg.params and not is_this_server(conn, msg.params[0]):
        conn.numeric(wire.ERR_NOSUCHSERVER, msg.params[0], "No such server")
        return
    conn.numeric(wire.RPL_VERSION, wire.VERSION, conn.server, "chatroom")
    isupport(conn)


@command("INFO", usage="INFO", help="about this server")
async def info(conn, msg: Message) -> None:
    if msg.params and not is_this_server(conn, msg.params[0]):
        conn.numeric(wire.ERR_NOSUCHSERVER, msg.params[0], "No such server")
        return
    for text in (wire.VERSION, *INFO):
        conn.numeric(wire.RPL_INFO, text)
    conn.numeric(wire.RPL_ENDOFINFO, "End of INFO list")


def user_mode(conn, msg: Message) -> None:
    """MODE on a nick: only our own, and only +B, +i, +w and -o may be set."""
    target = msg.params[0]
    if name_key(target) != name_key(conn.nick):
        code = (
            wire.ERR_NOSUCHNICK
            if conn.chat.online_by_key.get(name_key(target)) is None
            else wire.ERR_USERSDONTMATCH
        )
        conn.numeric(code, target, "Cannot change mode for other users")
        return
    if len(msg.params) == 1:
        conn.numeric(wire.RPL_UMODEIS, user_modes(conn))
        return
    adding, changed, unknown = True, [], False
    for flag in msg.params[1]:
        if flag in "+-":
            adding = flag == "+"
        elif flag in SELF_MODES:
            if adding != (flag in conn.modes):
                conn.modes = conn.modes | {flag} if adding else conn.modes - {flag}
                changed.append(("+" if adding else "-") + flag)
                if flag == "i":
                    _count(conn.factory.invisible, conn, adding)
        elif flag == "o":
            # +o comes from OPER alone (RFC 2812 3.1.5); -o gives it up.
            if not adding and conn.avatar.operator is not None:
                conn.avatar.stop_operating()
                _count(conn.factory.operators, conn, False)
                changed.append("-o")
        else:
            unknown = True
    if unknown:
        conn.numeric(wire.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if changed:
        conn.write(wire.line("MODE", conn.nick, _joined(changed), source=conn.mask))


def _count(counted: set, conn, add: bool) -> None:
    # Only an open connection: the factory forgets each one as it closes.
    if add and conn.connected:
        counted.add(conn)
    else:
        counted.discard(conn)


def _joined(changes: list[str]) -> str:
    """C{["+i", "+w", "-o"]} as C{+iw-o}."""
    out, sign = [], None
    for change in changes:
        if change[0] != sign:
            sign = change[0]
            out.append(sign)
        out.append(change[1])
    return "".join(out)


@command("OPER", 2, usage="OPER <account> <password>", help="become a server operator")
async def oper(conn, msg: Message) -> None:
    name, password = msg.params[:2]
    try:
        await conn.avatar.become_operator(name, password)
    except (AuthFailed, RateLimited):
        conn.numeric(wire.ERR_PASSWDMISMATCH, "Password incorrect")
        return
    except (BadName, PermissionDenied):
        conn.numeric(wire.ERR_NOOPERHOST, "No operator account by that name")
        return
    _count(conn.factory.operators, conn, True)
    conn.numeric(wire.RPL_YOUREOPER, "You are now an IRC operator")
    conn.write(wire.line("MODE", conn.nick, "+o", source=conn.server))


def operator_revoked(conn, reason: str) -> None:
    """The service took the session's operator status away: show it gone."""
    _count(conn.factory.operators, conn, False)
    if conn.registered and conn.connected:
        conn.notice(f"You are no longer an IRC operator: {reason}")
        conn.write(wire.line("MODE", conn.nick, "-o", source=conn.server))


@command(
    "KILL",
    1,
    usage="KILL <nick> [:<reason>]",
    help="operators: end every session of a user",
)
async def kill(conn, msg: Message) -> None:
    target = msg.params[0]
    reason = msg.params[1] if len(msg.params) > 1 else "no reason given"
    try:
        conn.avatar.kill(target, reason)
    except PermissionDenied:
        conn.numeric(
            wire.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator"
        )
    except (NoSuchUser, BadName):
        conn.numeric(wire.ERR_NOSUCHNICK, target, "No such nick/channel")


@command(
    "WALLOPS", 1, usage="WALLOPS :<text>", help="operators: tell every user with +w"
)
async def wallops(conn, msg: Message) -> None:
    try:
        text = conn.avatar.wallops(msg.params[0])
    except PermissionDenied:
        conn.numeric(
            wire.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator"
        )
        return
    except BadText:
        conn.numeric(wire.ERR_NEEDMOREPARAMS, "WALLOPS", "Not enough parameters")
        return
    # To this server's IRC users with +w: wallops are IRC's alone.
    line = wire.line("WALLOPS", text, source=conn.mask)
    for client in list(conn.factory.clients):
        if client.registered and client.connected and "w" in client.modes:
            client.write(line)
