"""
What IRC shows of a user's state in WHO, WHOIS and USERHOST: away or here,
operator, a member's channel prefix, idle time.  The state itself is the
service's (L{chatroom.service.chat.Account}); this only spells it.
"""

from __future__ import annotations

from chatroom.names import name_key
from chatroom.protocol.irc.commands.server import BOT_MODE, is_operator
from chatroom.service import moderation
from chatroom.service.chat import Account
from chatroom.service.rooms import Room


def online(conn, name: str) -> Account | None:
    """The account online here as C{name}, or None."""
    return conn.chat.online_by_key.get(name_key(name))


def is_invisible(account: Account) -> bool:
    """Whether a session of C{account} set IRC's user mode +i."""
    return any("i" in getattr(s.mind, "modes", ()) for s in account.sessions)


def is_bot(account: Account | None) -> bool:
    """Whether a session of C{account} set IRC's bot mode (+B, bot-mode)."""
    return account is not None and any(
        BOT_MODE in getattr(s.mind, "modes", ()) for s in account.sessions
    )


def shares_a_room(conn, account: Account) -> bool:
    rooms = conn.chat.rooms.rooms_of(account.id)
    return any(conn.account_id in room.members for room in rooms)


def visible_to(conn, account: Account) -> bool:
    """Whether a WHO mask may list C{account} to C{conn} (+i hides it)."""
    return (
        account.id == conn.account_id
        or not is_invisible(account)
        or shares_a_room(conn, account)
    )


def is_oper(account: Account | None) -> bool:
    """Whether C{account} is a server operator's (WHO's and USERHOST's "*")."""
    return account is not None and is_operator(account)


def member_prefix(conn, room: Room, user_id: int) -> str:
    """A member's channel prefix ("@", "+"; both with multi-prefix)."""
    return moderation.prefix(room, user_id, "multi-prefix" in conn.caps)


def here_or_gone(account: Account | None) -> str:
    """USERHOST's and WHO's here (H) or gone (G, away) for someone online here."""
    return "H" if account is not None and account.away is None else "G"


def who_flags(conn, account: Account | None, room: Room | None, user_id: int) -> str:
    """
    WHO's flags: here or gone (away, or a member not online anywhere; one
    online on another node shows here), operator, bot, and in C{room} the
    member's prefix.
    """
    if account is None:
        flags = "H" if conn.chat.is_online(user_id) else "G"
    else:
        flags = here_or_gone(account)
    if is_oper(account):
        flags += "*"
    if is_bot(account):
        flags += BOT_MODE
    if room is not None:
        flags += member_prefix(conn, room, user_id)
    return flags


def idle_seconds(conn, account: Account) -> int:
    """Seconds since C{account} last sent a message."""
    return max(0, int(conn.chat.clock.seconds() - account.last_active))
