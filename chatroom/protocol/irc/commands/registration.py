"""Registration: capabilities, nick and user, PASS and SASL, PING, QUIT, SETNAME."""

from __future__ import annotations

import base64
import binascii
import sys

from chatroom.errors import (
    AuthFailed,
    BadName,
    Banned,
    NameTaken,
    RateLimited,
)
from chatroom.names import NAME_MAX, check_name, check_reason, name_key
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.messages import fit_text
from chatroom.protocol.irc.commands.table import (
    CAPABILITIES,
    SASL_CHUNK,
    SASL_MAX,
    command,
)
from chatroom.protocol.irc.message import Message


@command(
    "CAP",
    1,
    before_registration=True,
    usage="CAP LS|LIST|REQ|END [...]",
    help="negotiate IRCv3 capabilities",
)
async def cap(conn, msg: Message) -> None:
    sub = msg.params[0].upper()
    if sub == "LS":
        if not conn.registered:
            conn.negotiating = True
        version = msg.params[1] if len(msg.params) > 1 else ""
        if version.isdigit() and int(version) >= 302:
            conn.cap_version = 302
            # Implied by CAP LS 302 (IRCv3 cap-notify).
            conn.caps = conn.caps | {"cap-notify"}
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
                conn.caps = conn.caps - {change[1:]}
            else:
                conn.caps = conn.caps | {change}
        conn.caps_changed()
        conn.cap_reply("ACK", wanted)
    elif sub == "END":
        if not conn.registered:
            conn.negotiating = False
            await conn.try_registration()
    else:
        conn.numeric(wire.ERR_INVALIDCAPCMD, sub, "Invalid CAP command")


@command(
    "PASS",
    1,
    before_registration=True,
    usage="PASS <password>",
    help="your account's password (the nick is the account), before the welcome",
)
async def pass_(conn, msg: Message) -> None:
    if conn.registered:
        conn.numeric(wire.ERR_ALREADYREGISTRED, "You may not reregister")
        return
    conn.password = msg.params[0]


@command(
    "NICK",
    before_registration=True,
    usage="NICK <nick>",
    help="choose your nick; after the welcome, rename your account",
)
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
        # Interned, as names are in rooms: USER's user name is often the same.
        conn.nick = sys.intern(new)
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
    except Banned as e:
        conn.numeric(wire.ERR_BANNICKCHANGE, new, e.message)
        return
    conn.nick = conn.avatar.name
    tags = conn.event_tags(conn.nick)
    conn.write(wire.line("NICK", conn.nick, source=old_mask, tags=tags))


@command(
    "USER",
    4,
    before_registration=True,
    usage="USER <user> 0 * :<real name>",
    help="your user and real name, before the welcome",
)
async def user(conn, msg: Message) -> None:
    if conn.registered or conn.username is not None:
        conn.numeric(wire.ERR_ALREADYREGISTRED, "You may not reregister")
        return
    username, _, _, realname = msg.params[:4]
    # Others are shown it (WHOIS, WHO): kept as a reason is.
    realname = check_reason(realname)
    # Neither may be empty, even given as an empty parameter (Modern IRC).
    if not username or not realname:
        conn.numeric(wire.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    # Interned: clients often give their nick as user name, and one real
    # name (a client's default) to all; each connection keeps them.
    conn.username = sys.intern(_shown_username(username))
    conn.realname = sys.intern(realname)
    await conn.try_registration()


@command(
    "SETNAME",
    1,
    usage="SETNAME :<real name>",
    help="change your real name (setname)",
)
async def setname(conn, msg: Message) -> None:
    # Checked as USER's; emptied by the check, it is refused (IRCv3 setname).
    realname = check_reason(msg.params[0])
    if not realname:
        conn.write(
            wire.fail(
                "SETNAME", "INVALID_REALNAME", "Bad real name", source=conn.server
            )
        )
        return
    account = conn.avatar.account
    realname = sys.intern(realname)
    # Others see one user: every IRC session of the account has the new name.
    for session in account.sessions:
        if hasattr(session.mind, "realname"):
            session.mind.realname = realname
    line = wire.line("SETNAME", realname, source=conn.mask)
    if "setname" in conn.caps:
        conn.write(line)  # the confirmation, a labeled reply
    told = _sharing_a_room(conn, account)
    for client in told:
        if client is not conn:
            client.tell_setname(line)
    # IRCv3 extended-monitor: those who MONITOR the nick hear it too.
    for mind in conn.chat.watch.watchers_of(account.name):
        if mind not in told and "extended-monitor" in getattr(mind, "caps", ()):
            mind.tell_setname(line)


def _sharing_a_room(conn, account) -> set:
    """The IRC connections here of C{account} and of those in its rooms."""
    ids = {account.id}
    for room in conn.chat.rooms.rooms_of(account.id):
        ids.update(room.members)
    clients = set()
    for user_id in ids:
        online = conn.chat.online.get(user_id)
        for session in online.sessions if online is not None else ():
            if hasattr(session.mind, "tell_setname"):
                clients.add(session.mind)
    return clients


def _shown_username(username: str) -> str:
    """USER's user name as masks show it: no control, bidi, C{!} or C{@}."""
    shown = check_reason(username).replace("!", "").replace("@", "")[:NAME_MAX]
    # Emptied: the user name IRC servers give an ident-less user.
    return shown or "user"


@command(
    "AUTHENTICATE",
    1,
    before_registration=True,
    usage="AUTHENTICATE <mechanism>|<data>",
    help="SASL: log in to an account (PLAIN), before the welcome",
)
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


@command(
    "PING",
    1,
    before_registration=True,
    usage="PING <token>",
    help="the server answers PONG",
)
async def ping(conn, msg: Message) -> None:
    conn.write(wire.line("PONG", conn.server, msg.params[0], source=conn.server))


@command(
    "PONG",
    before_registration=True,
    usage="PONG <token>",
    help="answer the server's PING",
)
async def pong(conn, msg: Message) -> None:
    return None


@command(
    "QUIT", before_registration=True, usage="QUIT [:<reason>]", help="leave the server"
)
async def quit_(conn, msg: Message) -> None:
    reason = check_reason(msg.params[0]) if msg.params else "Client quit"
    conn.close(fit_text("QUIT", None, f"Quit: {reason}", conn.mask))
