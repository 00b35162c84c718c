"""
IRC's command table: one entry per command, with whether it works before
registration and how many parameters it needs, checked in one place
(L{dispatch}) before its handler runs.  Handlers call the admission gate
(registration) or the avatar (everything after it) and write replies
through the connection; the rules live in the service layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatroom.errors import ChatError
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.message import Message

# The capabilities this server really implements.
CAPABILITIES = {
    "account-notify": None,
    "account-tag": None,
    "away-notify": None,
    "batch": None,
    "cap-notify": None,
    "draft/account-registration": "before-connect",
    "draft/chathistory": None,
    "draft/read-marker": None,
    "echo-message": None,
    "extended-join": None,
    "extended-monitor": None,
    "labeled-response": None,
    "message-tags": None,
    "multi-prefix": None,
    "sasl": "PLAIN",
    "server-time": None,
    "setname": None,
    "userhost-in-names": None,
}
# SASL: bytes of one AUTHENTICATE chunk, and of the whole response.
SASL_CHUNK = 400
SASL_MAX = 4096
NOT_REGISTERED_HELP = (
    "this server needs an account: log in with SASL PLAIN, or send PASS with"
    " your password (your nick is your account); no account yet? send"
    " REGISTER * * PASSWORD to make one for your nick"
)

Handler = Callable[["object", Message], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    min_params: int = 0
    before_registration: bool = False
    # What HELP shows: the syntax, and what it does.
    usage: str = ""
    help: str = ""


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    min_params: int = 0,
    before_registration: bool = False,
    usage: str = "",
    help: str = "",
):
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(
            name, handler, min_params, before_registration, usage, help
        )
        return handler

    return register


async def dispatch(conn, msg: Message) -> None:
    """Run one parsed message; ChatErrors become numerics or FAIL replies."""
    cmd = COMMANDS.get(msg.command)
    if cmd is None:
        if conn.registered:
            conn.numeric(wire.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
        else:
            conn.numeric(wire.ERR_NOTREGISTERED, "You have not registered")
        return
    if not conn.registered and not cmd.before_registration:
        conn.numeric(wire.ERR_NOTREGISTERED, "You have not registered")
        if conn.refused_account:
            conn.reply_notice(NOT_REGISTERED_HELP)
        return
    if len(msg.params) < cmd.min_params:
        conn.numeric(wire.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
        return
    try:
        await cmd.handler(conn, msg)
    except ChatError as e:
        conn.write(wire.error_fail(msg.command, e, source=conn.server))


def channel_name(target: str) -> str | None:
    """The room a C{#channel} names, or None if it is not a channel."""
    return target[1:] if target.startswith("#") else None


def targets(text: str) -> list[str]:
    return [t for t in text.split(",") if t]
