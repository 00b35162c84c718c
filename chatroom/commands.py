"""
The command table: every command's name, aliases, usage, help and handler in
one place.  Handlers parse their arguments, call the avatar (or, before
login, the connection's login), and return a L{Reply}; failures raise
L{ChatError}.  Nothing here knows about bytes.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import task
from twisted.logger import Logger

from chatroom.auth import NewAccount
from chatroom.errors import (
    AlreadyLoggedIn,
    AuthFailed,
    BadArguments,
    BadCommand,
    NameTaken,
    NotLoggedIn,
    PermissionDenied,
    RateLimited,
)
from chatroom.names import RESERVED_NAMES, check_name, name_key
from chatroom.service.interfaces import IUser


@dataclass
class Reply:
    """The final C{+OK} text, the data lines before it, and what comes after."""

    text: str = ""
    data: list[str] = field(default_factory=list)
    close: bool = False
    # Runs once the reply is on its way (deliver kept messages after +OK).
    then: Callable[[], Awaitable[None]] | None = None


class Connection(Protocol):
    """What a front end offers the command handlers."""

    avatar: IUser | None
    peer: str
    accounts: object  # IAccounts, plus record_failed_login
    throttle: object  # LoginThrottle: failed logins slow down
    registrations: object  # RegistrationLimit, or None: new accounts per address

    async def login(self, credentials) -> IUser: ...

    def expect(self, handler: Callable[[str], Awaitable[Reply]]) -> None:
        """Hand the next line, whatever it is, to C{handler}."""


Handler = Callable[[Connection, str], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    aliases: tuple[str, ...] = ()
    before_login: bool = False
    admin: bool = False
    # Changes nothing a later line depends on until its reply: the next line
    # may start before this one's reply (messages waiting on storage).
    pipelined: bool = False


COMMANDS: dict[str, Command] = {}
_log = Logger()

_COMMAND_WORD = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")


def command(
    usage: str,
    help: str,
    aliases=(),
    before_login=False,
    admin=False,
    pipelined=False,
):
    def register(handler: Handler) -> Handler:
        name = usage.split()[0][1:]
        cmd = Command(
            name, usage, help, handler, tuple(aliases), before_login, admin, pipelined
        )
        for word in (name, *aliases):
            COMMANDS[word] = cmd
        return handler

    return register


def is_pipelined(line: str) -> bool:
    """Whether a logged-in client's line may start before earlier replies."""
    if not line.startswith("/") or line.startswith("//"):
        return True
    cmd = COMMANDS.get(line[1:].partition(" ")[0].lower())
    return cmd is not None and cmd.pipelined


async def dispatch(conn: Connection, line: str) -> Reply:
    """Run one line from a client; return its reply or raise L{ChatError}."""
    if not line.startswith("/") or line.startswith("//"):
        if conn.avatar is None:
            return await _bare_name(conn, line)
        # "//text" sends "/text": a way to start a message with a slash.
        await conn.avatar.say(None, line[1:] if line.startswith("//") else line)
        return Reply()
    word, _, args = line[1:].partition(" ")
    cmd = COMMANDS.get(word.lower())
    # The contract: before login, anything but the login commands is
    # not-logged-in, an unknown command included.
    if conn.avatar is None and (cmd is None or not cmd.before_login):
        raise NotLoggedIn()
    if cmd is None:
        # Echo the word only if it is plainly a word: never send back bytes
        # that could drive a terminal.
        shown = f"/{word}" if _COMMAND_WORD.match(word) else "that command"
        raise BadCommand(f"unknown command {shown}; try /help")
    if cmd.admin and not conn.avatar.is_admin:
        raise PermissionDenied(f"/{cmd.name} is for the admin")
    return await cmd.handler(conn, args.strip())


# Argument parsing


def _words(args: str, count: int, usage: str) -> list[str]:
    """Split off exactly C{count} words, the last taking the rest of the line."""
    words = args.split(None, count - 1) if args else []
    if len(words) != count:
        raise BadArguments(f"usage: {usage}")
    return words


def _target(word: str) -> str:
    """The original chatroom wrote targets in angle brackets: <room>."""
    if len(word) > 2 and word.startswith("<") and word.endswith(">"):
        return word[1:-1]
    return word


def _room_and_count(args: str, usage: str) -> tuple[str | None, int | None]:
    """Parse C{[ROOM] [N]}; a lone number is N (write #5 for a room named 5)."""
    words = args.split()
    if len(words) > 2:
        raise BadArguments(f"usage: {usage}")
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    is_count = bool(words) and words[-1].isascii() and words[-1].isdigit()
    if is_count and not (len(words) == 1 and words[0][0] == "#"):
        return (words[0] if len(words) == 2 else None), int(words[-1])
    if len(words) == 2:
        raise BadArguments(f"usage: {usage}")
    return (words[0] if words else None), None


def _timestamp(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


# Before login


async def _login_with(conn: Connection, credentials, name: str) -> Reply:
    checks_password = IUsernamePassword.providedBy(credentials)
    if checks_password:
        _check_throttle(conn, name)
    try:
        avatar = await conn.login(credentials)
    except UnauthorizedLogin:
        # Recorded before the reply, so whoever reads the log next sees it.
        await conn.accounts.record_failed_login(name, conn.peer)
        await _slow_down(conn, name)
        raise AuthFailed() from None
    if checks_password:
        conn.throttle.succeeded(name)
    return Reply(f"welcome, {avatar.name}", then=avatar.logged_in)


def _check_throttle(conn: Connection, name: str) -> None:
    """Refuse, unchecked, a password try on a name or from an address that
    failed too recently: parallel tries gain nothing."""
    wait = conn.throttle.wait_time(name, conn.peer)
    if wait > 0:
        raise RateLimited(f"too many failed logins: try again in {math.ceil(wait)} s")


async def _slow_down(conn: Connection, name: str) -> None:
    """Count a wrong password and hold its reply for the growing delay."""
    known = await conn.accounts.find_user(name_key(name)) is not None
    delay = conn.throttle.failed(name, conn.peer, known)
    if delay > 0:
        await task.deferLater(conn.throttle.clock, delay)


def _check_registration_rate(conn: Connection, spend: bool) -> None:
    """
    Refuse a new account, before it costs a hash, from an address that has
    made too many lately; with C{spend}, count this one.
    """
    limit = conn.registrations
    if limit is None:
        return
    wait = limit.take(conn.peer) if spend else limit.wait_time(conn.peer)
    if wait > 0:
        _log.warn("refused a new account from {peer}: too many", peer=conn.peer)
        raise RateLimited(
            f"too many new accounts from your address: try again in {math.ceil(wait)} s"
        )


async def _register(conn: Connection, name: str, password: str) -> Reply:
    # What costs nothing is checked first: a typo or a taken name spends no
    # registration of the address.
    await conn.accounts.check_new_account(name, password)
    _check_registration_rate(conn, spend=True)
    return await _login_with(conn, NewAccount(name, password), name)


@command("/register NAME PASSWORD", "create an account and log in", before_login=True)
async def register(conn: Connection, args: str) -> Reply:
    if conn.avatar is not None:
        raise AlreadyLoggedIn()
    name, password = _words(args, 2, "/register NAME PASSWORD")
    return await _register(conn, name, password)


@command("/login NAME PASSWORD", "log in", before_login=True)
async def login(conn: Connection, args: str) -> Reply:
    if conn.avatar is not None:
        raise AlreadyLoggedIn()
    name, password = _words(args, 2, "/login NAME PASSWORD")
    # No account has an invalid name; refusing it keeps junk out of the logs.
    check_name(name)
    return await _login_with(conn, UsernamePassword(name, password), name)


async def _bare_name(conn: Connection, line: str) -> Reply:
    """The interactive login: a bare name, then its password on the next line."""
    if len(line.split()) != 1:
        raise NotLoggedIn()
    name = check_name(line.strip())
    if await conn.accounts.find_user(name_key(name)) is None:
        if name_key(name) in RESERVED_NAMES:
            raise NameTaken(f"{name} is reserved")
        # Before asking for a password that could not be used.
        _check_registration_rate(conn, spend=False)
        conn.expect(lambda password: _register(conn, name, password))
        return Reply(f"{name} is new: type a password to create the account")
    conn.expect(
        lambda password: _login_with(conn, UsernamePassword(name, password), name)
    )
    return Reply(f"{name} is known: type your password")


@command("/help", "this list", before_login=True)
async def help_(conn: Connection, args: str) -> Reply:
    is_admin = conn.avatar is not None and conn.avatar.is_admin
    seen = []
    for cmd in COMMANDS.values():
        if cmd not in seen and (is_admin or not cmd.admin):
            seen.append(cmd)
    lines = [
        f"{cmd.usage:<28} {cmd.help}"
        + (f" (also /{', /'.join(cmd.aliases)})" if cmd.aliases else "")
        for cmd in seen
    ]
    lines.append(f"{'TEXT':<28} a message to your default room")
    return Reply("end of help", lines)


@command("/ping", "check the connection", before_login=True)
async def ping(conn: Connection, args: str) -> Reply:
    return Reply("pong")


@command("/logout", "leave the chat", aliases=("quit",), before_login=True)
async def logout(conn: Connection, args: str) -> Reply:
    return Reply("bye", close=True)


# Messages


@command("/public ROOM TEXT", "send TEXT to ROOM, a room you are in", pipelined=True)
async def public(conn: Connection, args: str) -> Reply:
    room, text = _words(args, 2, "/public ROOM TEXT")
    await conn.avatar.say(_target(room), text)
    return Reply()


@command(
    "/private USER TEXT", "send TEXT to USER only", aliases=("msg",), pipelined=True
)
async def private(conn: Connection, args: str) -> Reply:
    user, text = _words(args, 2, "/private USER TEXT")
    await conn.avatar.send_private(_target(user), text)
    return Reply()


# Rooms


@command("/c ROOM", "create ROOM and join it", aliases=("create",))
async def create(conn: Connection, args: str) -> Reply:
    (room,) = _words(args, 1, "/c ROOM")
    return Reply(f"created #{await conn.avatar.create_room(room)}")


@command("/j ROOM", "join ROOM", aliases=("join",))
async def join(conn: Connection, args: str) -> Reply:
    (room,) = _words(args, 1, "/j ROOM")
    return Reply(f"joined #{await conn.avatar.join(room)}")


@command("/l ROOM", "leave ROOM", aliases=("leave",))
async def leave(conn: Connection, args: str) -> Reply:
    (room,) = _words(args, 1, "/l ROOM")
    return Reply(f"left #{await conn.avatar.leave(room)}")


@command("/cd ROOM", "make ROOM your default room")
async def change_default(conn: Connection, args: str) -> Reply:
    (room,) = _words(args, 1, "/cd ROOM")
    return Reply(f"default room is #{await conn.avatar.set_default(room)}")


@command("/rooms", "the rooms you are in")
async def rooms(conn: Connection, args: str) -> Reply:
    lines = [
        f"{name} (default)" if default else name
        for name, default in conn.avatar.rooms()
    ]
    return Reply(f"{len(lines)} rooms", lines)


@command("/who ROOM", "the members of ROOM")
async def who(conn: Connection, args: str) -> Reply:
    (room,) = _words(args, 1, "/who ROOM")
    members = conn.avatar.who(room)
    lines = [f"{name} (online)" if online else name for name, online in members]
    return Reply(f"{len(lines)} members", lines)


@command("/history [ROOM] [N]", "the last N messages of ROOM")
async def history(conn: Connection, args: str) -> Reply:
    room, count = _room_and_count(args, "/history [ROOM] [N]")
    name, messages = await conn.avatar.history(room, count)
    lines = [
        f"{_timestamp(m.created_at)} [{name}] {m.sender}: {m.text}" for m in messages
    ]
    return Reply(f"{len(lines)} messages", lines)


@command("/log [USER] [N]", "your activity log (the admin may name any USER)")
async def log(conn: Connection, args: str) -> Reply:
    user, count = _room_and_count(args, "/log [USER] [N]")
    entries = await conn.avatar.activity(user, count)
    lines = [
        f"{_timestamp(e.at)} {e.event} {e.actor} {e.detail}".rstrip() for e in entries
    ]
    return Reply(f"{len(lines)} entries", lines)


# Admin


@command("/list", "every room on the server", admin=True)
async def list_rooms(conn: Connection, args: str) -> Reply:
    lines = [f"{name} {count} members" for name, count in conn.avatar.all_rooms()]
    return Reply(f"{len(lines)} rooms", lines)


@command("/users", "every user, online or not", admin=True)
async def users(conn: Connection, args: str) -> Reply:
    lines = [
        name + (" (online)" if online else "") + (" (admin)" if admin else "")
        for name, online, admin in await conn.avatar.all_users()
    ]
    return Reply(f"{len(lines)} users", lines)


# The account


@command("/u NAME", "change your username", aliases=("nick",))
async def rename(conn: Connection, args: str) -> Reply:
    (name,) = _words(args, 1, "/u NAME")
    return Reply(f"you are now {await conn.avatar.rename(name)}")


@command("/p OLD NEW", "change your password (or /p alone, then two lines)")
async def password(conn: Connection, args: str) -> Reply:
    avatar = conn.avatar

    async def change(old: str, new: str) -> Reply:
        # The current password is a password check like a login: throttled.
        _check_throttle(conn, avatar.name)
        try:
            await avatar.change_password(old, new)
        except AuthFailed:
            await _slow_down(conn, avatar.name)
            raise
        return Reply("password changed")

    if args:
        old, new = _words(args, 2, "/p OLD NEW")
        return await change(old, new)

    async def new_password(old: str) -> Reply:
        conn.expect(lambda new: change(old, new))
        return Reply("type the new password")

    conn.expect(new_password)
    return Reply("type your current password")
