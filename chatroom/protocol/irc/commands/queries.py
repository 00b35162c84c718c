"""
Queries about users and the server: WHOIS, WHOWAS, AWAY, ISON, USERHOST,
MOTD, LUSERS (WHO is in L{who}).
"""

from __future__ import annotations

import time

from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands import status
from chatroom.protocol.irc.commands.table import command, targets
from chatroom.protocol.irc.message import Message
from chatroom.service import moderation
from chatroom.service.discovery import AWAY_MAX_BYTES

# Bytes of an away message kept, at most (ISUPPORT AWAYLEN); longer is cut.
AWAYLEN = AWAY_MAX_BYTES
# Nicks one USERHOST answers, at most (RFC 2812).
USERHOST_MAX = 5


@command("WHOIS", 1, usage="WHOIS <nick>", help="about a user")
async def whois(conn, msg: Message) -> None:
    # "WHOIS <server> <nick>": this is the only server.
    target = msg.params[-1]
    account = status.online(conn, target)
    if account is None:
        conn.numeric(wire.ERR_NOSUCHNICK, target, "No such nick/channel")
        conn.numeric(wire.RPL_ENDOFWHOIS, target, "End of /WHOIS list")
        return
    name = account.name
    username, host, realname = conn.identity_of(name)
    conn.numeric(wire.RPL_WHOISUSER, name, username, host, "*", realname)
    rooms = [
        room
        for room in conn.chat.rooms.rooms_of(account.id)
        if moderation.is_visible(room, conn.account_id)
    ]
    if status.is_invisible(account) and account.id != conn.account_id:
        # +i: only the channels the asker is in too.
        rooms = [room for room in rooms if conn.account_id in room.members]
    if rooms:
        conn.numeric(
            wire.RPL_WHOISCHANNELS,
            name,
            " ".join(
                f"{status.member_prefix(conn, room, account.id)}#{room.name}"
                for room in sorted(rooms, key=lambda room: room.key)
            ),
        )
    conn.numeric(wire.RPL_WHOISSERVER, name, conn.server, "chatroom")
    if status.is_oper(account):
        conn.numeric(wire.RPL_WHOISOPERATOR, name, "is an IRC operator")
    if status.is_bot(account):
        conn.numeric(wire.RPL_WHOISBOT, name, "is a bot")
    if account.away is not None:
        conn.numeric(wire.RPL_AWAY, name, account.away)
    conn.numeric(
        wire.RPL_WHOISIDLE,
        name,
        str(status.idle_seconds(conn, account)),
        str(int(account.signed_on)),
        "seconds idle, signon time",
    )
    if not account.is_guest:
        conn.numeric(wire.RPL_WHOISACCOUNT, name, name, "is logged in as")
    conn.numeric(wire.RPL_ENDOFWHOIS, name, "End of /WHOIS list")


@command("WHOWAS", usage="WHOWAS <nick> [<count>]", help="who recently had a nick")
async def whowas(conn, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        conn.numeric(wire.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    count = msg.params[1] if len(msg.params) > 1 else ""
    # Not a positive number: every entry (RFC 2812 3.6.3).
    limit = int(count) if count.lstrip("-").isdigit() else 0
    for nick in targets(msg.params[0]):
        entries = conn.chat.whowas.find(nick, max(limit, 0))
        if not entries:
            conn.numeric(wire.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
        for entry in entries:
            conn.numeric(
                wire.RPL_WHOWASUSER,
                entry.name,
                entry.username,
                conn.server,
                "*",
                entry.realname,
            )
            conn.numeric(
                wire.RPL_WHOISSERVER,
                entry.name,
                conn.server,
                time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(entry.at)),
            )
    conn.numeric(wire.RPL_ENDOFWHOWAS, msg.params[0], "End of WHOWAS")


@command(
    "AWAY",
    usage="AWAY [:<text>]",
    help="say you are away (with a text) or back (without one)",
)
async def away(conn, msg: Message) -> None:
    text = msg.params[0] if msg.params else ""
    if text:
        text = text.encode("utf-8")[:AWAYLEN].decode("utf-8", "ignore")
    conn.avatar.set_away(text or None)
    if text:
        conn.numeric(wire.RPL_NOWAWAY, "You have been marked as being away")
    else:
        conn.numeric(wire.RPL_UNAWAY, "You are no longer marked as being away")


def tell_away(conn, nick: str) -> None:
    """RPL_AWAY to someone who wrote to C{nick}, if C{nick} is away."""
    account = status.online(conn, nick)
    if account is not None and account.away is not None:
        conn.numeric(wire.RPL_AWAY, account.name, account.away)


@command("ISON", 1, usage="ISON <nick> ...", help="which of these nicks are online")
async def ison(conn, msg: Message) -> None:
    # Nicks may come as parameters or as one trailing parameter.
    nicks = " ".join(msg.params).split()
    found = (status.online(conn, nick) for nick in nicks)
    conn.numeric(wire.RPL_ISON, " ".join(a.name for a in found if a is not None))


@command(
    "USERHOST", 1, usage="USERHOST <nick> ...", help="the masks of up to five nicks"
)
async def userhost(conn, msg: Message) -> None:
    replies = []
    for nick in " ".join(msg.params).split()[:USERHOST_MAX]:
        account = status.online(conn, nick)
        if account is None:
            continue
        username, host, _ = conn.identity_of(account.name)
        oper = "*" if status.is_oper(account) else ""
        here = "+" if account.away is None else "-"
        replies.append(f"{account.name}{oper}={here}{username}@{host}")
    conn.numeric(wire.RPL_USERHOST, " ".join(replies))


@command("MOTD", usage="MOTD", help="the message of the day")
async def motd(conn, msg: Message) -> None:
    conn.motd()


@command("LUSERS", usage="LUSERS", help="how many users and rooms there are")
async def lusers(conn, msg: Message) -> None:
    conn.lusers()
