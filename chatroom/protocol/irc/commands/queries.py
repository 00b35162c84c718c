"""Queries about users and the server: WHO, WHOIS, MOTD, LUSERS."""

from __future__ import annotations

from chatroom.errors import (
    BadName,
    NoSuchRoom,
)
from chatroom.names import name_key
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.server import is_operator
from chatroom.protocol.irc.commands.table import (
    channel_name,
    command,
)
from chatroom.protocol.irc.message import Message


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
    if is_operator(account):
        conn.numeric(wire.RPL_WHOISOPERATOR, name, "is an IRC operator")
    if not account.is_guest:
        conn.numeric(wire.RPL_WHOISACCOUNT, name, name, "is logged in as")
    conn.numeric(wire.RPL_ENDOFWHOIS, name, "End of /WHOIS list")


@command("MOTD")
async def motd(conn, msg: Message) -> None:
    conn.motd()


@command("LUSERS")
async def lusers(conn, msg: Message) -> None:
    conn.lusers()
