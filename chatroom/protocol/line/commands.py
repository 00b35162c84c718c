"""
The line protocol's command table: every command's name, aliases, usage,
help and handler in one place.  A line is parsed once (L{parse}) into its
command and arguments; handlers turn the arguments into calls on the avatar
(or, before login, on the admission gate) and return a L{Reply}; failures
raise L{ChatError}.  The rules themselves live in the service layer, and
nothing here knows about bytes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from chatroom.errors import (
    AlreadyLoggedIn,
    BadArguments,
    BadCommand,
    NotLoggedIn,
    PermissionDenied,
)
from chatroom.protocol.line import arguments, discovery
from chatroom.service.admission import Admission, Admitted
from chatroom.service.events import ACTION, ModeChange
from chatroom.service.interfaces import IUser
from chatroom.service.moderation import MUTE
from chatroom.service.room_actions import FLAG_SETTINGS


@dataclass
class Reply:
    """The final C{+OK} text, the data lines before it, and what comes after."""

    text: str = ""
    data: list[str] = field(default_factory=list)
    close: bool = False
    # Runs once the reply is on its way (deliver kept messages after +OK).
    then: Callable[[], Awaitable[None]] | None = None


class Connection(Protocol):
    """What the line protocol's connection offers the command handlers."""

    avatar: IUser | None
    peer: str
    admission: Admission
    # /set timestamps on: live messages start with their time.
    timestamps: bool

    def admitted(self, admitted: Admitted) -> IUser:
        """Take the session the gate let in; fails if the client has left."""

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


class CommandLine(NamedTuple):
    """
    One line from a client, parsed once: a message (no C{word}; C{args} is
    its text) or a command word with its arguments and the command it names
    (None if unknown).  A tuple: one is made per line, and a tuple is made
    in half the time of a frozen dataclass.
    """

    text: str
    word: str | None
    args: str
    command: Command | None = None

    @property
    def pipelined(self) -> bool:
        """Whether a logged-in client's line may start before earlier replies."""
        return self.word is None or (
            self.command is not None and self.command.pipelined
        )


def parse(text: str) -> CommandLine:
    if not text.startswith("/"):
        return CommandLine(text, None, text)
    if text.startswith("//"):
        # "//text" sends "/text": a way to start a message with a slash.
        return CommandLine(text, None, text[1:])
    word, _, args = text[1:].partition(" ")
    # Arguments as typed: a password keeps its spaces (see L{_name_and_rest}).
    return CommandLine(text, word, args, COMMANDS.get(word.lower()))


async def dispatch(conn: Connection, line: CommandLine) -> Reply:
    """Run one parsed line; return its reply or raise L{ChatError}."""
    if line.word is None:
        if conn.avatar is None:
            return await _bare_name(conn, line.text)
        await conn.avatar.say(None, line.args)
        return Reply()
    cmd = line.command
    # The contract: before login, anything but the login commands is
    # not-logged-in, an unknown command included.
    if conn.avatar is None and (cmd is None or not cmd.before_login):
        raise NotLoggedIn()
    if cmd is None:
        # Echo the word only if it is plainly a word: never send back bytes
        # that could drive a terminal.
        word = line.word
        shown = f"/{word}" if _COMMAND_WORD.match(word) else "that command"
        raise BadCommand(f"unknown command {shown}; try /help")
    if cmd.admin and not conn.avatar.is_admin:
        raise PermissionDenied(f"/{cmd.name} is for the admin")
    return await cmd.handler(conn, line.args)


# Before login


def _welcome(conn: Connection, admitted: Admitted) -> Reply:
    avatar = conn.admitted(admitted)
    return Reply(f"welcome, {avatar.name}", then=avatar.logged_in)


async def _login(conn: Connection, name: str, password: str) -> Reply:
    admitted = await conn.admission.login(name, password, conn, conn.peer)
    return _welcome(conn, admitted)


async def _register(conn: Connection, name: str, password: str) -> Reply:
    admitted = await conn.admission.register(name, password, conn, conn.peer)
    return _welcome(conn, admitted)


@command("/register NAME PASSWORD", "create an account and log in", before_login=True)
async def register(conn: Connection, args: str) -> Reply:
    if conn.avatar is not None:
        raise AlreadyLoggedIn()
    name, password = arguments.name_and_rest(args, "/register NAME PASSWORD")
    return await _register(conn, name, password)


@command("/login NAME PASSWORD", "log in", before_login=True)
async def login(conn: Connection, args: str) -> Reply:
    if conn.avatar is not None:
        raise AlreadyLoggedIn()
    name, password = arguments.name_and_rest(args, "/login NAME PASSWORD")
    return await _login(conn, name, password)


async def _bare_name(conn: Connection, line: str) -> Reply:
    """The interactive login: a bare name, then its password on the next line."""
    if len(line.split()) != 1:
        raise NotLoggedIn()
    name = line.strip()
    if await conn.admission.is_known(name, conn.peer):
        conn.expect(lambda password: _login(conn, name, password))
        return Reply(f"{name} is known: type your password")
    conn.expect(lambda password: _register(conn, name, password))
    return Reply(f"{name} is new: type a password to create the account")


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
    room, text = arguments.words(args, 2, "/public ROOM TEXT")
    await conn.avatar.say(arguments.target(room), text)
    return Reply()


@command(
    "/private USER TEXT", "send TEXT to USER only", aliases=("msg",), pipelined=True
)
async def private(conn: Connection, args: str) -> Reply:
    user, text = arguments.words(args, 2, "/private USER TEXT")
    await conn.avatar.send_private(arguments.target(user), text)
    return Reply()


# End-to-end encrypted private messages (chatroom.service.e2e; docs/e2e.md)

_KEYS_CHANGES = "/keys publish DEVICE IDENTITY PREKEY SIGNATURE, /keys remove DEVICE"
_KEYS_USAGE = f"/keys [USER], {_KEYS_CHANGES}"


@command("/keys [USER]", f"USER's device keys (yours without USER); {_KEYS_CHANGES}")
async def keys(conn: Connection, args: str) -> Reply:
    words = args.split()
    action = words[0].lower() if words else None
    if action == "publish" and len(words) == 5:
        device = words[1]
        await conn.avatar.publish_keys(device, *words[2:])
        # Only once this line is out do the waiting ciphertexts follow it.
        return Reply(f"device {device} published", then=conn.avatar.deliver_waiting_e2e)
    if action == "remove" and len(words) == 2:
        return Reply(f"device {await conn.avatar.remove_device(words[1])} removed")
    if len(words) > 1:
        raise BadArguments(f"usage: {_KEYS_USAGE}")
    user = arguments.target(words[0]) if words else None
    lines = [
        f"{d.device} {d.identity} {d.prekey} {d.signature}"
        for d in await conn.avatar.device_keys(user)
    ]
    return Reply(arguments.counted(len(lines), "device", "devices"), lines)


@command(
    "/e2e USER DEVICE MSGID CIPHERTEXT",
    "an encrypted message for one device of USER (the bundled client sends it)",
    pipelined=True,
)
async def e2e(conn: Connection, args: str) -> Reply:
    words = args.split()
    if len(words) != 4:
        raise BadArguments("usage: /e2e USER DEVICE MSGID CIPHERTEXT")
    await conn.avatar.send_e2e(*words)
    return Reply()


# Rooms


@command("/c ROOM", "create ROOM and join it", aliases=("create",))
async def create(conn: Connection, args: str) -> Reply:
    (room,) = arguments.words(args, 1, "/c ROOM")
    return Reply(f"created #{await conn.avatar.create_room(room)}")


@command("/j ROOM [KEY]", "join ROOM (KEY: its key, if it has one)", aliases=("join",))
async def join(conn: Connection, args: str) -> Reply:
    room, key = arguments.word_and_optional(args, "/j ROOM [KEY]")
    return Reply(f"joined #{await conn.avatar.join(room, key)}")


@command("/l ROOM", "leave ROOM", aliases=("leave",))
async def leave(conn: Connection, args: str) -> Reply:
    (room,) = arguments.words(args, 1, "/l ROOM")
    return Reply(f"left #{await conn.avatar.leave(room)}")


@command("/cd ROOM", "make ROOM your default room")
async def change_default(conn: Connection, args: str) -> Reply:
    (room,) = arguments.words(args, 1, "/cd ROOM")
    return Reply(f"default room is #{await conn.avatar.set_default(room)}")


@command("/rooms [all]", "the rooms you are in; with all, every room you may see")
async def rooms(conn: Connection, args: str) -> Reply:
    word = args.strip().lower()
    if word == "all":
        lines = [discovery.room_line(room) for room in conn.avatar.room_list()]
        return Reply(arguments.counted(len(lines), "room", "rooms"), lines)
    if word:
        raise BadArguments("usage: /rooms [all]")
    lines = [
        f"{name} (default)" if default else name
        for name, default in conn.avatar.rooms()
    ]
    return Reply(arguments.counted(len(lines), "room", "rooms"), lines)


@command("/who ROOM", "the members of ROOM, with their role and presence")
async def who(conn: Connection, args: str) -> Reply:
    (room,) = arguments.words(args, 1, "/who ROOM")
    lines = [discovery.member_line(member) for member in conn.avatar.who(room)]
    return Reply(arguments.counted(len(lines), "member", "members"), lines)


@command("/topic ROOM [TEXT]", "show the topic of ROOM, or set it to TEXT")
async def topic(conn: Connection, args: str) -> Reply:
    room, _, text = args.strip().partition(" ")
    if not room:
        raise BadArguments("usage: /topic ROOM [TEXT]")
    room = arguments.target(room)
    if text.strip():
        found = await conn.avatar.set_topic(room, text.strip())
        return Reply(f"topic of #{found.room} set")
    found = conn.avatar.topic(room)
    if not found.text:
        return Reply(f"#{found.room} has no topic")
    return Reply(f"#{found.room}: {found.text} (set by {found.set_by})")


# Moderation (chatroom.service.moderation, room_actions; docs/moderation.md)


@command("/kick ROOM NAME [REASON]", "put NAME out of ROOM (operators)")
async def kick(conn: Connection, args: str) -> Reply:
    room, name, reason = arguments.two_and_optional(args, "/kick ROOM NAME [REASON]")
    room = arguments.target(room)
    kicked = await conn.avatar.kick(room, name, reason)
    return Reply(f"kicked {kicked} from #{room.removeprefix('#')}")


@command("/ban ROOM NAME", "ban NAME (or a mask like bo*) from ROOM, put out if in it")
async def ban(conn: Connection, args: str) -> Reply:
    room, name = _room_and_name(args, "/ban ROOM NAME")
    done = await conn.avatar.ban(room, name)
    said = "banned" if done.changed else "already banned"
    removed = f", removed {', '.join(done.removed)}" if done.removed else ""
    return Reply(f"{_shown(done.mask)} {said} from #{done.room}{removed}")


@command("/unban ROOM NAME", "lift the ban on NAME (or mask) in ROOM")
async def unban(conn: Connection, args: str) -> Reply:
    room, name = _room_and_name(args, "/unban ROOM NAME")
    done = await conn.avatar.unban(room, name)
    return Reply(f"{_shown(done.change.param)} unbanned from #{done.room}")


@command("/mute ROOM NAME", "NAME (or mask) stays in ROOM but cannot send to it")
async def mute(conn: Connection, args: str) -> Reply:
    room, name = _room_and_name(args, "/mute ROOM NAME")
    done = await conn.avatar.mute(room, name)
    said = "muted" if done.changed else "already muted"
    return Reply(f"{_shown(done.change.param)} {said} in #{done.room}")


@command("/unmute ROOM NAME", "let NAME (or mask) send to ROOM again")
async def unmute(conn: Connection, args: str) -> Reply:
    room, name = _room_and_name(args, "/unmute ROOM NAME")
    done = await conn.avatar.unmute(room, name)
    return Reply(f"{_shown(done.change.param)} unmuted in #{done.room}")


def _role_command(word: str, mode: str, adding: bool, role: str, help: str):
    usage = f"/{word} ROOM NAME"

    async def change_role(conn: Connection, args: str) -> Reply:
        room, name = _room_and_name(args, usage)
        done = await conn.avatar.change_one(room, ModeChange(adding, mode, name))
        who = done.change.param if done.changed else name
        state = ("is now " if adding else "is no longer ") + role
        if not done.changed:
            state = ("is already " if adding else "is not ") + role
        return Reply(f"{who} {state} in #{done.room}")

    command(usage, help)(change_role)


_role_command("op", "o", True, "an operator", "make NAME an operator of ROOM")
_role_command("deop", "o", False, "an operator", "NAME stops being an operator")
_role_command("voice", "v", True, "voiced", "NAME may speak in ROOM when moderated")
_role_command("devoice", "v", False, "voiced", "take NAME's voice in ROOM")


@command("/invite ROOM NAME", "invite NAME, online, into ROOM (past invite-only)")
async def invite(conn: Connection, args: str) -> Reply:
    room, name = _room_and_name(args, "/invite ROOM NAME")
    invited = await conn.avatar.invite(name, room)
    return Reply(f"invited {invited} to #{room.removeprefix('#')}")


# /room set ROOM SETTING [VALUE]: each setting's mode letter, and whether
# it takes a value (flags take on or off, on if not given).
ROOM_SETTINGS = {**FLAG_SETTINGS, "key": "k", "limit": "l"}
_ROOM_USAGE = "/room show|set|delete ROOM"


@command(_ROOM_USAGE, "a room's settings, or delete it; /room help for more")
async def room(conn: Connection, args: str) -> Reply:
    action, _, rest = args.strip().partition(" ")
    action = action.lower()
    if action == "help" and not rest:
        return Reply("end of /room help", _ROOM_HELP)
    if action not in _ROOM_ACTIONS:
        raise BadArguments(f"usage: {_ROOM_USAGE}; try /room help")
    return await _ROOM_ACTIONS[action](conn, rest)


async def _room_show(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/room show ROOM")
    settings = conn.avatar.room_settings(arguments.target(name))
    lines = [f"{setting} {value}" for setting, value in settings.settings]
    return Reply(f"settings of #{settings.room}", lines)


async def _room_set(conn: Connection, args: str) -> Reply:
    usage = "/room set ROOM SETTING [VALUE]"
    words = args.split()
    if len(words) not in (2, 3) or words[1].lower() not in ROOM_SETTINGS:
        raise BadArguments(f"usage: {usage}; settings: {', '.join(ROOM_SETTINGS)}")
    room, setting = arguments.target(words[0]), words[1].lower()
    value = words[2] if len(words) == 3 else None
    mode = ROOM_SETTINGS[setting]
    if mode in "kl":
        if value is None:
            raise BadArguments(f"usage: /room set ROOM {setting} VALUE|off")
        adding = value.lower() != "off"
        change = ModeChange(adding, mode, value if adding else None)
    else:
        if value is not None and value.lower() not in ("on", "off"):
            raise BadArguments(f"usage: /room set ROOM {setting} [on|off]")
        change = ModeChange(value is None or value.lower() == "on", mode)
    done = await conn.avatar.change_one(room, change)
    state = (done.change.param or "on") if done.change.adding else "off"
    if mode == "k" and done.change.adding:
        state = "set"
    said = "is now" if done.changed else "was already"
    return Reply(f"{setting} of #{done.room} {said} {state}")


async def _room_delete(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/room delete ROOM")
    done = await conn.avatar.delete_room(arguments.target(name))
    return Reply(
        f"deleted #{done.room} and its history"
        f" ({arguments.counted(done.messages, 'message', 'messages')},"
        f" {arguments.counted(done.members, 'member', 'members')} removed)"
    )


_ROOM_ACTIONS = {"show": _room_show, "set": _room_set, "delete": _room_delete}
_ROOM_HELP = [
    "/room show ROOM                 its owner, topic and settings",
    "/room set ROOM SETTING [on|off] topic-lock, invite-only, moderated, secret,"
    " no-external (on if not said)",
    "/room set ROOM key KEY|off      a key to join it with: /j ROOM KEY",
    "/room set ROOM limit N|off      at most N members",
    "/room delete ROOM               the owner or the admin: delete it, history too",
]


def _room_and_name(args: str, usage: str) -> tuple[str, str]:
    room, name = arguments.words(args, 2, usage)
    if " " in name.strip():
        raise BadArguments(f"usage: {usage}")
    return arguments.target(room), name.strip()


def _shown(mask: str | None) -> str:
    """A mask as the line protocol writes names: bob for bob!*@*."""
    return (mask or "").removeprefix(MUTE).removesuffix("!*@*")


@command("/history [ROOM] [N]", "the last N messages of ROOM")
async def history(conn: Connection, args: str) -> Reply:
    room, count = arguments.room_and_count(args, "/history [ROOM] [N]")
    history = await conn.avatar.history(room, count)
    lines = [
        f"{arguments.timestamp(m.created_at)} [{history.room}] {m.sender}: {m.text}"
        for m in history.messages
    ]
    return Reply(arguments.counted(len(lines), "message", "messages"), lines)


@command("/log [USER] [N]", "your activity log (the admin may name any USER)")
async def log(conn: Connection, args: str) -> Reply:
    user, count = arguments.room_and_count(args, "/log [USER] [N]")
    entries = await conn.avatar.activity(user, count)
    lines = [
        f"{arguments.timestamp(e.at)} {e.event} {e.actor} {e.detail}".rstrip()
        for e in entries
    ]
    return Reply(arguments.counted(len(lines), "entry", "entries"), lines)


# Discovery and presence (the lines they show are in L{discovery})


@command("/whois NAME", "whether NAME is online or when last seen, and their rooms")
async def whois(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/whois NAME")
    found = await conn.avatar.whois(arguments.target(name))
    return Reply(f"end of whois {found.name}", discovery.whois_lines(found))


@command("/away [TEXT]", "mark yourself away with TEXT, or back without it")
async def away(conn: Connection, args: str) -> Reply:
    text = args.strip()
    conn.avatar.set_away(text or None)
    return Reply("you are away" if text else "you are back")


@command("/me ACTION", "tell your default room what you do", pipelined=True)
async def me(conn: Connection, args: str) -> Reply:
    if not args.strip():
        raise BadArguments("usage: /me ACTION")
    await conn.avatar.say(None, args.strip(), ACTION)
    return Reply()


@command("/describe USER ACTION", "tell USER only what you do", pipelined=True)
async def describe(conn: Connection, args: str) -> Reply:
    user, action = arguments.words(args, 2, "/describe USER ACTION")
    await conn.avatar.send_private(arguments.target(user), action, ACTION)
    return Reply()


@command("/set [NAME on|off]", "show your settings, or turn one on or off")
async def set_(conn: Connection, args: str) -> Reply:
    if args.strip():
        return Reply(discovery.change_setting(conn, args))
    lines = discovery.setting_lines(conn)
    return Reply(arguments.counted(len(lines), "setting", "settings"), lines)


# Admin


@command("/list", "every room on the server", admin=True)
async def list_rooms(conn: Connection, args: str) -> Reply:
    lines = [
        f"{name} {arguments.counted(count, 'member', 'members')}"
        for name, count in conn.avatar.all_rooms()
    ]
    return Reply(arguments.counted(len(lines), "room", "rooms"), lines)


@command("/users", "every user, online or not", admin=True)
async def users(conn: Connection, args: str) -> Reply:
    lines = [
        name + (" (online)" if online else "") + (" (admin)" if admin else "")
        for name, online, admin in await conn.avatar.all_users()
    ]
    return Reply(arguments.counted(len(lines), "user", "users"), lines)


@command("/release NAME", "let anyone take NAME, an account's former name", admin=True)
async def release(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/release NAME")
    return Reply(f"released {await conn.avatar.release_name(name)}")


@command("/suspend NAME", "suspend an account: it cannot log in", admin=True)
async def suspend(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/suspend NAME")
    return Reply(f"suspended {await conn.avatar.suspend(name)}")


@command("/restore NAME", "let a suspended account log in again", admin=True)
async def restore(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/restore NAME")
    return Reply(f"restored {await conn.avatar.restore(name)}")


@command("/disconnect NAME", "end every session of NAME", admin=True)
async def disconnect(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/disconnect NAME")
    return Reply(f"disconnected {await conn.avatar.disconnect_user(name)}")


@command("/resetpass NAME PASSWORD", "give NAME a new password", admin=True)
async def reset_password(conn: Connection, args: str) -> Reply:
    name, password = arguments.name_and_rest(args, "/resetpass NAME PASSWORD")
    name = await conn.avatar.reset_password(name, password)
    return Reply(f"password of {name} reset")


@command("/broadcast TEXT", "a notice to everyone online", admin=True)
async def broadcast(conn: Connection, args: str) -> Reply:
    if not args.strip():
        raise BadArguments("usage: /broadcast TEXT")
    conn.avatar.broadcast(args.strip())
    return Reply("broadcast sent")


# The account


@command("/u NAME", "change your username", aliases=("nick",))
async def rename(conn: Connection, args: str) -> Reply:
    (name,) = arguments.words(args, 1, "/u NAME")
    return Reply(f"you are now {await conn.avatar.rename(name)}")


@command("/p OLD NEW", "change your password (or /p alone, then two lines)")
async def password(conn: Connection, args: str) -> Reply:
    avatar = conn.avatar

    async def change(old: str, new: str) -> Reply:
        await avatar.change_password(old, new)
        return Reply("password changed")

    if args.strip():
        old, new = arguments.name_and_rest(args, "/p OLD NEW")
        return await change(old, new)

    async def new_password(old: str) -> Reply:
        conn.expect(lambda new: change(old, new))
        return Reply("type the new password")

    conn.expect(new_password)
    return Reply("type your current password")
