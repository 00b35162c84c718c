"""
User modes (MODE <own nick> [changes]): only +i, invisible, which hides a
user from WHO masks and its channels from WHOIS, except to those who share
a channel with it.  Per connection, as IRC's user modes are.
"""

from __future__ import annotations

from chatroom.names import name_key
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands import status
from chatroom.protocol.irc.message import Message

USER_MODES = "i"


async def user_mode(conn, msg: Message) -> None:
    target = msg.params[0]
    if name_key(target) != name_key(conn.nick):
        code = (
            wire.ERR_NOSUCHNICK
            if status.online(conn, target) is None
            else wire.ERR_USERSDONTMATCH
        )
        conn.numeric(code, target, "Cannot change mode for other users")
        return
    if len(msg.params) == 1:
        conn.numeric(wire.RPL_UMODEIS, "+i" if conn.invisible else "+")
        return
    changed, unknown = _apply(conn, msg.params[1])
    if changed:
        conn.write(wire.line("MODE", conn.nick, changed, source=conn.mask))
    if unknown:
        conn.numeric(wire.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")


def _apply(conn, changes: str) -> tuple[str, bool]:
    """Apply C{changes} (C{+i}, C{-i}); what changed, and whether a flag was unknown."""
    adding, unknown, shown, sign = True, False, "", ""
    for char in changes:
        if char in "+-":
            adding = char == "+"
        elif char not in USER_MODES:
            unknown = True
        elif conn.invisible != adding:
            conn.invisible = adding
            want = "+" if adding else "-"
            if want != sign:
                shown += want
                sign = want
            shown += char
    return shown, unknown
