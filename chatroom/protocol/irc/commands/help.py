"""HELP and HELPOP (modern.ircdocs.horse): the command table's own usage and help."""

from __future__ import annotations

from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.table import COMMANDS, command
from chatroom.protocol.irc.message import Message

# Subjects are at most this long: anything longer names no command.
SUBJECT_MAX = 32


def _help(conn, msg: Message) -> None:
    subject = msg.params[0] if msg.params else ""
    if not subject:
        shown = "*"
        lines = [
            "Commands (HELP <command> for one):",
            *(
                " ".join(sorted(COMMANDS)[start : start + 10])
                for start in range(0, len(COMMANDS), 10)
            ),
        ]
    else:
        found = COMMANDS.get(subject.upper()) if len(subject) <= SUBJECT_MAX else None
        if found is None:
            shown = subject[:SUBJECT_MAX]
            conn.numeric(
                wire.ERR_HELPNOTFOUND, shown, "No help available on this topic"
            )
            return
        shown = found.name
        lines = [found.usage or found.name, found.help or "(no more to say)"]
    conn.numeric(wire.RPL_HELPSTART, shown, lines[0])
    for line in lines[1:]:
        conn.numeric(wire.RPL_HELPTXT, shown, line)
    conn.numeric(wire.RPL_ENDOFHELP, shown, "End of /HELP")


@command("HELP", usage="HELP [<command>]", help="the commands, or how to use one")
async def help_(conn, msg: Message) -> None:
    _help(conn, msg)


@command("HELPOP", usage="HELPOP [<command>]", help="as HELP")
async def helpop(conn, msg: Message) -> None:
    _help(conn, msg)
