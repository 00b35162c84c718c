"""
Accounts made from the IRC client: IRCv3 draft/account-registration's
REGISTER, under the admission gate's rules and rate limits, as the line
protocol's /register.  The account's name is the nick (no
custom-account-name); before the connection completes (before-connect) or
as a guest, whose name then becomes the account's.
"""

from __future__ import annotations

from chatroom.errors import BadName, BadPassword, ChatError, NameTaken, RateLimited
from chatroom.names import name_key
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.table import command
from chatroom.protocol.irc.message import Message
from chatroom.service.guest import GuestSession

# The admission gate's refusals, as draft/account-registration's codes.
REFUSALS = {
    NameTaken: "ACCOUNT_EXISTS",
    BadName: "BAD_ACCOUNT_NAME",
    BadPassword: "UNACCEPTABLE_PASSWORD",
    RateLimited: "TEMPORARILY_UNAVAILABLE",
}


def _fail(conn, code: str, account: str, text: str) -> None:
    conn.write(wire.fail("REGISTER", code, account, text))


@command(
    "REGISTER",
    3,
    before_registration=True,
    usage="REGISTER * * <password>",
    help="make an account named by your nick",
)
async def register(conn, msg: Message) -> None:
    account, _email, password = msg.params[:3]
    guest = conn.avatar if isinstance(conn.avatar, GuestSession) else None
    if conn.avatar is not None and guest is None:
        _fail(conn, "ALREADY_AUTHENTICATED", account, "You are logged in already")
        return
    if conn.nick is None:
        _fail(conn, "NEED_NICK", account, "Send NICK first: the nick is the account")
        return
    if account == "*":
        account = conn.nick
    elif name_key(account) != name_key(conn.nick):
        _fail(
            conn,
            "ACCOUNT_NAME_MUST_BE_NICK",
            account,
            "The account's name is your nick: change nick, or REGISTER *",
        )
        return
    try:
        # A guest becomes the account, in its channels still.
        admitted = await conn.admission.register(
            account, password, conn, conn.peer, guest
        )
    except ChatError as e:
        if guest is not None and guest.ended:
            # Handed over, then refused (a race for the name): no session left.
            conn.close(f"Registration failed: {e.message}")
            return
        _fail(
            conn, REFUSALS.get(type(e), "TEMPORARILY_UNAVAILABLE"), account, e.message
        )
        return
    conn.take(admitted)
    name = conn.avatar.name
    conn.write(
        wire.line(
            "REGISTER", "SUCCESS", name, f"Account {name} created", source=conn.server
        )
    )
    conn.numeric(
        wire.RPL_LOGGEDIN, conn.mask_for(name), name, f"You are now logged in as {name}"
    )
    if not conn.registered:
        await conn.try_registration()
