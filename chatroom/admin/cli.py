"""
C{chatroom-admin}: accounts, rooms, history and the activity log, from the
shell, on the database the server uses (C{--data-dir} / C{--db}, as
C{twistd chatroom} takes them).  Each action is one short transaction of
L{chatroom.storage}'s own functions (L{runner}).  The server reads an
account at each login, so a suspension or a new password holds from the
next login on; sessions already open stay open (C{/suspend} and
C{/resetpass} in the chat end them).  See docs/admin.md.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from chatroom.admin import output
from chatroom.admin.runner import NoDatabase, SyncStorage, open_storage
from chatroom.auth import PRODUCTION_ROUNDS, hash_password
from chatroom.errors import ChatError, NoSuchRoom, NoSuchUser, PermissionDenied
from chatroom.names import (
    RESERVED_NAMES,
    check_name,
    check_password,
    check_room_name,
    name_key,
)
from chatroom.options import DATA_DIR_DEFAULT, database_location
from chatroom.storage.activity import INSERT_ACTIVITY, activity_since
from chatroom.storage.messages import room_messages_after
from chatroom.storage.moderation import delete_room
from chatroom.storage.rooms import LOBBY, room_by_key, room_overviews
from chatroom.storage.users import (
    delete_former_name,
    find_name_holder,
    find_user_by_key,
    insert_user,
    update_password_hash,
    update_suspended,
    user_overviews,
)

# The actor of what this command records in the activity log.
ACTOR = "chatroom-admin"
# Messages exported per transaction: short ones, beside a running server.
EXPORT_PAGE = 1000
ACTIVITY_LIMIT = 1000


class Failed(Exception):
    """A request this command refuses, with what to tell the user."""


def now() -> int:
    return int(time.time() * 1000)


def record(cursor, user_id: int | None, event: str, detail: str) -> None:
    """An activity entry, in the transaction of the change it records."""
    cursor.execute(INSERT_ACTIVITY.one, (now(), user_id, ACTOR, event, detail))


# Passwords: from a file or a prompt, never from the command line


def read_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        try:
            lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise Failed(f"cannot read --password-file: {e}") from None
        if not lines or not lines[0]:
            raise Failed(
                f"{args.password_file} is empty: its first line is the password"
            )
        return check_password(lines[0])
    password = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != password:
        raise Failed("the passwords differ")
    return check_password(password)


# Users


def _user(storage: SyncStorage, name: str):
    record_ = storage.read(find_user_by_key, name_key(check_name(name)))
    if record_ is None:
        raise NoSuchUser(f"there is no user called {name}")
    return record_


def users_list(storage: SyncStorage, args, out: TextIO) -> None:
    _listing(
        out,
        args,
        storage.read(user_overviews),
        ["NAME", "ADMIN", "SUSPENDED", "CREATED"],
        lambda u: {
            "id": u.id,
            "name": u.name,
            "admin": u.is_admin,
            "suspended": u.suspended,
            "created_at": output.iso(u.created_at),
        },
        lambda u: (
            u.name,
            "yes" if u.is_admin else "",
            "yes" if u.suspended else "",
            output.iso(u.created_at),
        ),
    )


def _create(cursor, name: str, password_hash: str):
    user = insert_user(cursor, name, name_key(name), password_hash, now(), False)
    record(cursor, user.id, "register", name)
    return user


def users_create(storage: SyncStorage, args, out: TextIO) -> None:
    name = check_name(args.name)
    if name_key(name) in RESERVED_NAMES:
        raise Failed(f"{name} is reserved")
    password_hash = hash_password(read_password(args), args.bcrypt_rounds)
    user = storage.write(_create, name, password_hash)
    _done(out, args, f"created {user.name}", name=user.name, id=user.id)


def _set_suspended(cursor, user, suspended: bool) -> bool:
    changed = update_suspended(cursor, user.id, suspended)
    if changed:
        record(cursor, user.id, "suspend" if suspended else "restore", user.name)
    return changed


def users_suspend(storage: SyncStorage, args, out: TextIO) -> None:
    user = _user(storage, args.name)
    if user.is_admin:
        raise PermissionDenied("the admin account cannot be suspended")
    changed = storage.write(_set_suspended, user, True)
    text = f"suspended {user.name}" if changed else f"{user.name} was suspended"
    _done(out, args, text, name=user.name, changed=changed)


def users_restore(storage: SyncStorage, args, out: TextIO) -> None:
    user = _user(storage, args.name)
    changed = storage.write(_set_suspended, user, False)
    text = f"restored {user.name}" if changed else f"{user.name} was not suspended"
    _done(out, args, text, name=user.name, changed=changed)


def _reset(cursor, user, password_hash: str) -> None:
    update_password_hash(cursor, user.id, password_hash)
    record(cursor, user.id, "password-reset", user.name)


def users_reset_password(storage: SyncStorage, args, out: TextIO) -> None:
    user = _user(storage, args.name)
    password_hash = hash_password(read_password(args), args.bcrypt_rounds)
    storage.write(_reset, user, password_hash)
    _done(out, args, f"password of {user.name} reset", name=user.name)


def _release(cursor, name: str) -> int | None:
    kept_by = delete_former_name(cursor, name_key(name))
    if kept_by is not None:
        record(cursor, kept_by, "name-released", name)
    return kept_by


def users_release_name(storage: SyncStorage, args, out: TextIO) -> None:
    name = check_name(args.name)
    if storage.write(_release, name) is None:
        raise NoSuchUser(f"{name} is not a former name of any account")
    _done(out, args, f"released {name}", name=name)


# Rooms


def rooms_list(storage: SyncStorage, args, out: TextIO) -> None:
    _listing(
        out,
        args,
        storage.read(room_overviews),
        ["ROOM", "MEMBERS", "MESSAGES", "CREATED"],
        lambda r: {
            "id": r.id,
            "name": r.name,
            "members": r.members,
            "messages": r.messages,
            "created_at": output.iso(r.created_at),
        },
        lambda r: (r.name, r.members, r.messages, output.iso(r.created_at)),
    )


def _delete_room(cursor, key: str) -> int | None:
    """The messages the room had, or None if there is no such room."""
    found = room_by_key(cursor, key)
    if found is None:
        return None
    # The function the chat's /room delete stores with.
    messages = delete_room(cursor, found[0].id, "#" + key)
    record(cursor, None, "room-deleted", f"#{found[0].name}")
    return messages


def rooms_delete(storage: SyncStorage, args, out: TextIO) -> None:
    key = name_key(check_room_name(args.room.removeprefix("#")))
    if key == LOBBY:
        raise PermissionDenied("the lobby, where every account starts, stays")
    messages = storage.write(_delete_room, key)
    if messages is None:
        raise NoSuchRoom(f"there is no room called {args.room}")
    _done(
        out,
        args,
        f"deleted #{key} and its {messages} messages",
        room=key,
        messages=messages,
    )


# History and the activity log


def history_export(storage: SyncStorage, args, out: TextIO) -> None:
    name = args.room.removeprefix("#")
    found = storage.read(room_by_key, name_key(check_room_name(name)))
    if found is None:
        raise NoSuchRoom(f"there is no room called {args.room}")
    room = found[0]
    after = 0
    while True:
        page = storage.read(room_messages_after, room.id, after, EXPORT_PAGE)
        for m in page:
            output.json_line(
                out,
                {
                    "room": room.name,
                    "seq": m.seq,
                    "sender": m.sender,
                    "text": m.text,
                    "at": output.iso(m.created_at),
                    "at_ms": m.created_at,
                },
            )
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1].seq


def parse_since(text: str) -> int:
    """A date or time (ISO 8601; UTC unless it says) in ms since the epoch."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Failed(f"--since {text!r}: give a date, 2026-12-01, or a time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def activity(storage: SyncStorage, args, out: TextIO) -> None:
    since = parse_since(args.since) if args.since else 0
    # A former name is kept for its account: it names that one still.
    holder = storage.read(find_name_holder, name_key(check_name(args.user)))
    if holder is None:
        raise NoSuchUser(f"there is no user called {args.user}")
    entries = storage.read(activity_since, holder.user_id, since, args.limit)
    _listing(
        out,
        args,
        entries,
        ["TIME", "EVENT", "ACTOR", "DETAIL"],
        lambda e: {
            "at": output.iso(e.at),
            "event": e.event,
            "actor": e.actor,
            "detail": e.detail,
        },
        lambda e: (output.iso(e.at), e.event, e.actor, e.detail),
    )


def _listing(out: TextIO, args, items, headers, as_dict, as_row) -> None:
    """A list command's items: JSON objects for scripts, else a table."""
    if args.json:
        output.as_json(out, [as_dict(item) for item in items])
    else:
        output.table(out, headers, [as_row(item) for item in items])


def _done(out: TextIO, args, text: str, **fields) -> None:
    if args.json:
        output.as_json(out, {"ok": True, **fields})
    else:
        out.write(text + "\n")


# The command line


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="chatroom-admin",
        description="Administer a chatroom server's accounts, rooms and logs, on"
        " its database; safe while the server runs.",
    )
    top.add_argument(
        "-d",
        "--data-dir",
        default=DATA_DIR_DEFAULT,
        help="the server's --data-dir (default: %(default)s)",
    )
    top.add_argument(
        "--db",
        help="the server's --db: a SQLite file or a postgresql:// URL"
        " (default: DATA-DIR/chatroom.sqlite3)",
    )
    top.add_argument("--json", action="store_true", help="JSON output, for scripts")
    areas = top.add_subparsers(dest="area", required=True, metavar="AREA")

    def action(group, name: str, run, help: str) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        with_json(sub)
        return sub

    def with_json(sub: argparse.ArgumentParser) -> None:
        # Also after the action, where one tends to type it.
        sub.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="JSON output"
        )

    def with_password(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--password-file",
            help="read the password from the first line of this file"
            " (default: ask for it)",
        )
        sub.add_argument(
            "--bcrypt-rounds",
            type=int,
            choices=range(4, 32),
            metavar="4..31",
            default=PRODUCTION_ROUNDS,
            help="bcrypt cost (default: %(default)s, as the server's)",
        )

    users = areas.add_parser("users", help="accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    action(users, "list", users_list, "every account")
    sub = action(users, "create", users_create, "create an account")
    sub.add_argument("name")
    with_password(sub)
    sub = action(
        users, "suspend", users_suspend, "suspend an account: it cannot log in"
    )
    sub.add_argument("name")
    sub = action(users, "restore", users_restore, "let a suspended account log in")
    sub.add_argument("name")
    sub = action(
        users, "reset-password", users_reset_password, "give an account a password"
    )
    sub.add_argument("name")
    with_password(sub)
    sub = action(
        users,
        "release-name",
        users_release_name,
        "let anyone take NAME, an account's former name",
    )
    sub.add_argument("name")

    rooms = areas.add_parser("rooms", help="rooms").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    action(rooms, "list", rooms_list, "every room")
    sub = action(
        rooms, "delete", rooms_delete, "delete a room with its messages and members"
    )
    sub.add_argument("room")

    history = areas.add_parser("history", help="room history").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sub = action(history, "export", history_export, "every message of ROOM")
    sub.add_argument("room")
    sub.add_argument("--format", choices=["jsonl"], default="jsonl")

    sub = areas.add_parser(
        "activity", help="a user's activity log", description="a user's activity log"
    )
    sub.set_defaults(run=activity)
    with_json(sub)
    sub.add_argument("--user", required=True, help="a current or former name")
    sub.add_argument("--since", help="from this date or time on (UTC unless given)")
    sub.add_argument(
        "--limit",
        type=int,
        default=ACTIVITY_LIMIT,
        help="entries at most, oldest first (default: %(default)s)",
    )
    return top


def main(
    argv: list[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one command; 0 if it did what it was asked, 1 if not (2: usage)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        # --help and usage errors go where the rest of the output goes.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        storage = open_storage(database_location(args.data_dir, args.db))
    except NoDatabase as e:
        err.write(f"chatroom-admin: {e}\n")
        return 1
    try:
        storage.migrate()
        args.run(storage, args, out)
    except (ChatError, Failed) as e:
        err.write(f"chatroom-admin: {_message(e)}\n")
        return 1
    except RuntimeError as e:  # a schema newer than this version knows
        err.write(f"chatroom-admin: {e}\n")
        return 1
    except storage.engine.module.Error as e:
        # A race a check could not see (a name taken meanwhile), a lock held
        # past the busy timeout: the transaction was rolled back.
        err.write(f"chatroom-admin: the database refused it: {e}\n")
        return 1
    finally:
        storage.close()
    return 0


def _message(error: Exception) -> str:
    return error.message if isinstance(error, ChatError) else str(error)
