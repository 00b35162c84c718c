"""
IRCv3 MONITOR: watch nicks come online and go offline.  The watch list is
the service's (L{chatroom.service.watch}); this is the syntax and the
numerics.  Only this node's users are seen.
"""

from __future__ import annotations

from chatroom.errors import ChatError
from chatroom.names import check_name
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands import status
from chatroom.protocol.irc.commands.table import command, targets
from chatroom.protocol.irc.message import Message

# Bytes of targets per RPL_MONONLINE/RPL_MONOFFLINE/RPL_MONLIST line: the
# rest of the line (source, numeric, nick) fits in what 512 leaves.
TARGETS_BYTES = 400


@command(
    "MONITOR",
    min_params=1,
    usage="MONITOR +|- <nick>[,<nick>...] | C | L | S",
    help="be told when nicks come online and go offline (+ add, - remove,"
    " C clear, L list, S status)",
)
async def monitor(conn, msg: Message) -> None:
    sub = msg.params[0].upper()
    watch = conn.chat.watch
    names = targets(msg.params[1]) if len(msg.params) > 1 else []
    if sub in ("+", "-") and not names:
        conn.numeric(wire.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
    elif sub == "+":
        add(conn, names)
    elif sub == "-":
        watch.remove(conn, names)
    elif sub == "C":
        watch.clear(conn)
    elif sub == "L":
        for chunk in _chunks(watch.watched(conn)):
            conn.numeric(wire.RPL_MONLIST, ",".join(chunk))
        conn.numeric(wire.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif sub == "S":
        tell_status(conn, watch.watched(conn))
    else:
        conn.reply_notice(f"MONITOR {msg.params[0]}: not +, -, C, L or S")


def add(conn, names: list[str]) -> None:
    valid = []
    for name in names:
        try:
            valid.append(check_name(name))
        except ChatError as e:
            conn.numeric(wire.ERR_ERRONEUSNICKNAME, name, e.message)
    added, refused = conn.chat.watch.add(conn, valid)
    if refused:
        conn.numeric(
            wire.ERR_MONLISTFULL,
            str(conn.chat.watch.limit),
            ",".join(refused),
            "Monitor list is full",
        )
    tell_status(conn, added)


def tell_status(conn, names: list[str]) -> None:
    """RPL_MONONLINE for those of C{names} online here, RPL_MONOFFLINE for the rest."""
    online, offline = [], []
    for name in names:
        account = status.online(conn, name)
        if account is None:
            offline.append(name)
        else:
            online.append(conn.mask_of(account.name))
    for chunk in _chunks(online):
        conn.numeric(wire.RPL_MONONLINE, ",".join(chunk))
    for chunk in _chunks(offline):
        conn.numeric(wire.RPL_MONOFFLINE, ",".join(chunk))


def _chunks(items: list[str]):
    """C{items} in runs whose comma-joined length stays within TARGETS_BYTES."""
    chunk, size = [], 0
    for item in items:
        if chunk and size + 1 + len(item) > TARGETS_BYTES:
            yield chunk
            chunk, size = [], 0
        size += len(item) + (1 if chunk else 0)
        chunk.append(item)
    if chunk:
        yield chunk
