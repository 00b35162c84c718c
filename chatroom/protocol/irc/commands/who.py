"""
WHO, with IRCv3 WHOX (C{WHO <mask> %<fields>[,<token>]}): a channel's
members, one nick, or everyone visible whose nick, user, host, server or
real name matches a mask with C{*} and C{?}.
"""

from __future__ import annotations

from collections.abc import Iterator

from chatroom import masks
from chatroom.errors import BadName, NoSuchRoom
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands import status
from chatroom.protocol.irc.commands.table import channel_name, command
from chatroom.protocol.irc.message import Message
from chatroom.service import moderation
from chatroom.service.chat import Account
from chatroom.service.rooms import Room

# WHOX's fields, in the order a reply carries them.
WHOX_FIELDS = "tcuihsnfdlaor"
# Shown for WHOX's "i": nobody's address is shown (see IRCProtocol.identity_of).
HIDDEN_IP = "255.255.255.255"
# Digits of a WHOX token, at most (as ircu, which defined it).
WHOX_TOKEN_MAX = 3


class Row:
    """One user WHO lists: the channel it is listed in, and what it shows."""

    __slots__ = ("channel", "name", "account", "room", "user_id")

    def __init__(
        self,
        channel: str,
        name: str,
        account: Account | None,
        room: Room | None,
        user_id: int,
    ) -> None:
        self.channel = channel
        self.name = name
        self.account = account
        self.room = room
        self.user_id = user_id


@command(
    "WHO",
    usage="WHO <#room>|<mask> [%<fields>[,<token>]]",
    help="who is in a room, or whose names match",
)
async def who(conn, msg: Message) -> None:
    mask = msg.params[0] if msg.params and msg.params[0] else "*"
    options = msg.params[1] if len(msg.params) > 1 else ""
    whox = parse_whox(options) if options.startswith("%") else None
    only_opers = whox is None and "o" in options
    for row in rows(conn, mask):
        if only_opers and not status.is_oper(row.account):
            continue
        if whox is None:
            who_reply(conn, row)
        else:
            whox_reply(conn, row, *whox)
    conn.numeric(wire.RPL_ENDOFWHO, mask, "End of WHO list")


def rows(conn, mask: str) -> Iterator[Row]:
    room = channel_name(mask)
    chat = conn.chat
    if room is not None:
        try:
            found = chat.rooms.find(room)
        except (NoSuchRoom, BadName):
            return
        if not moderation.is_visible(found, conn.account_id):
            return  # a secret room, to someone not in it
        channel = f"#{found.name}"
        for user_id, name in sorted(found.members.items(), key=_by_name):
            yield Row(channel, name, chat.online.get(user_id), found, user_id)
        return
    if mask == "0":
        mask = "*"  # RFC 2812: everyone
    if "*" not in mask and "?" not in mask:
        # A plain nick is answered whoever it is (modern.ircdocs.horse).
        account = status.online(conn, mask)
        if account is not None:
            yield Row("*", account.name, account, None, account.id)
        return
    matches = mask_matcher(mask)
    for account in sorted(chat.online.values(), key=lambda a: a.key):
        if not status.visible_to(conn, account):
            continue
        username, host, realname = conn.identity_of(account.name)
        shown = (account.name, username, host, conn.server, realname)
        if any(matches(field) for field in shown):
            yield Row("*", account.name, account, None, account.id)


def _by_name(member: tuple[int, str]) -> str:
    return member[1].lower()


def mask_matcher(mask: str):
    """A test of a string against an IRC mask (C{*}, C{?}), case-insensitive."""
    # Not a regex, which a mask like *a*a*a...b makes take seconds.
    mask = mask.lower()
    return lambda text: masks.matches(mask, text.lower())


def who_reply(conn, row: Row) -> None:
    username, host, realname = conn.identity_of(row.name)
    conn.numeric(
        wire.RPL_WHOREPLY,
        row.channel,
        username,
        host,
        conn.server,
        row.name,
        status.who_flags(conn, row.account, row.room, row.user_id),
        f"0 {realname}",
    )


def parse_whox(options: str) -> tuple[str, str]:
    """WHOX's fields (in reply order) and token from C{%<fields>[,<token>]}."""
    fields, _, token = options[1:].partition(",")
    wanted = "".join(f for f in WHOX_FIELDS if f in fields)
    if not token.isdigit() or len(token) > WHOX_TOKEN_MAX:
        token = "0"
    return wanted, token


def whox_reply(conn, row: Row, fields: str, token: str) -> None:
    if not fields:
        return
    username, host, realname = conn.identity_of(row.name)
    account = row.account
    values = {
        "t": token,
        "c": row.channel,
        "u": username,
        "i": HIDDEN_IP,
        "h": host,
        "s": conn.server,
        "n": row.name,
        "f": status.who_flags(conn, account, row.room, row.user_id),
        "d": "0",
        "l": str(status.idle_seconds(conn, account)) if account else "0",
        "a": account.name if account and not account.is_guest else "0",
        "o": "n/a",
        "r": realname,
    }
    conn.numeric(wire.RPL_WHOSPCRPL, *(values[f] for f in fields))
