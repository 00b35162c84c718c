"""
What the admin does to accounts from the chat: suspend and restore one,
disconnect its sessions, reset its password, and send a notice to everyone
online.  Sessions end on every node (L{ChatService.end_sessions}); a
suspended account is refused at login by the password checker
(L{chatroom.auth.BcryptChecker}), which reads storage, so a suspension
made by C{chatroom-admin} holds from the next login on too.
"""

from __future__ import annotations

from chatroom.errors import NoSuchUser, PermissionDenied
from chatroom.names import check_name, check_password, check_text, name_key
from chatroom.service.chat import Account, ChatService
from chatroom.storage.store import UserRecord

SUSPENDED = "your account was suspended by the admin"
DISCONNECTED = "you were disconnected by the admin"
PASSWORD_RESET = "your password was reset by the admin: log in with the new one"


async def _account_named(chat: ChatService, name: str) -> UserRecord:
    record = await chat.store.find_user(name_key(check_name(name)))
    if record is None:
        raise NoSuchUser(f"there is no user called {name}")
    return record


def _not_the_admin(actor: Account, record: UserRecord, what: str) -> None:
    if record.is_admin or record.id == actor.id:
        raise PermissionDenied(f"the admin account cannot be {what}")


async def suspend(chat: ChatService, actor: Account, name: str) -> str:
    """Suspend the account C{name} and end its sessions; its name as stored."""
    record = await _account_named(chat, name)
    _not_the_admin(actor, record, "suspended")
    if await chat.store.set_suspended(record.id, True):
        chat.record(record.id, actor.name, "suspend", record.name)
    # Ended even if it was suspended already: a login racing the first one.
    chat.end_sessions(record.id, SUSPENDED)
    return record.name


async def restore(chat: ChatService, actor: Account, name: str) -> str:
    """Let the suspended account C{name} log in again; its name as stored."""
    record = await _account_named(chat, name)
    if await chat.store.set_suspended(record.id, False):
        chat.record(record.id, actor.name, "restore", record.name)
    return record.name


async def disconnect(chat: ChatService, actor: Account, name: str) -> str:
    """End every session of C{name}, on every node; it may log in again."""
    record = await _account_named(chat, name)
    if record.id == actor.id:
        raise PermissionDenied("use /logout to end your own session")
    if not chat.is_online(record.id):
        raise NoSuchUser(f"{record.name} is not online")
    chat.record(record.id, actor.name, "disconnect", record.name)
    chat.end_sessions(record.id, DISCONNECTED)
    return record.name


async def reset_password(
    chat: ChatService, actor: Account, name: str, password: str
) -> str:
    """Give C{name} the password C{password}; its sessions end."""
    check_password(password)
    record = await _account_named(chat, name)
    _not_the_admin(actor, record, "reset: use /p to change your own password")
    await chat.store.set_password_hash(record.id, await chat.hasher.hash(password))
    chat.record(record.id, actor.name, "password-reset", record.name)
    chat.end_sessions(record.id, PASSWORD_RESET)
    return record.name


def broadcast(chat: ChatService, actor: Account, text: str) -> None:
    """Show C{text} to everyone online, on every node, as the admin's notice."""
    notice = check_text(f"notice from {actor.name}: {check_text(text)}")
    chat.record(actor.id, actor.name, "broadcast", text)
    chat.broadcast(notice)
