"""
History: IRCv3 C{draft/chathistory} (CHATHISTORY) and C{draft/read-marker}
(MARKREAD), served from the rooms' stored history and the private
messages storage keeps, through the avatar (L{chatroom.service.history}).
"""

from __future__ import annotations

from typing import NamedTuple

from twisted.internet import defer
from twisted.logger import Logger

from chatroom.errors import BadArguments, BadName, NoSuchRoom, NoSuchUser, NotMember
from chatroom.names import name_key
from chatroom.protocol.irc import batch, wire
from chatroom.protocol.irc.commands.table import channel_name, command
from chatroom.protocol.irc.message import Message
from chatroom.service.history import SPAN_MAX
from chatroom.storage.store import HistorySpan

log = Logger()

# What a selector may name a message by (ISUPPORT MSGREFTYPES).
MSGREFTYPES = "msgid,timestamp"
# Each subcommand, and how many parameters follow it.
SUBCOMMANDS = {
    "LATEST": 3,
    "BEFORE": 3,
    "AFTER": 3,
    "AROUND": 3,
    "BETWEEN": 4,
    "TARGETS": 3,
}


def isupport() -> list[str]:
    """The RPL_ISUPPORT tokens of chathistory."""
    return [f"CHATHISTORY={SPAN_MAX}", f"MSGREFTYPES={MSGREFTYPES}"]


class Selector(NamedTuple):
    """A message named by number (seq or private id) or by time (ms)."""

    by_time: bool
    value: int


class BadRequest(Exception):
    """A CHATHISTORY or MARKREAD its sender got wrong: FAIL INVALID_PARAMS."""


def _fail(conn, command: str, code: str, *context: str, text: str) -> None:
    conn.write(wire.fail(command, code, *context, text, source=conn.server))


def _timestamp(text: str) -> int:
    if not text.startswith("timestamp="):
        raise BadRequest(f"{text} is not timestamp=YYYY-MM-DDThh:mm:ss.sssZ")
    try:
        return wire.parse_server_time(text[len("timestamp=") :])
    except ValueError:
        raise BadRequest(f"{text} is not a valid timestamp") from None


def _selector(text: str, room_key: str | None) -> Selector:
    """
    C{msgid=...} or C{timestamp=...}; a msgid must be one of this target's
    (C{room_key}: the channel's, None: a private conversation's).
    """
    if text.startswith("msgid="):
        try:
            room, number = wire.parse_msgid(text[len("msgid=") :])
        except ValueError:
            raise BadRequest(f"{text} is no message of this server") from None
        if room != room_key:
            raise BadRequest(f"{text} is not a message of this target")
        return Selector(False, number)
    return Selector(True, _timestamp(text))


def _limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise BadRequest(f"the limit is a number from 1 to {SPAN_MAX}")
    return min(int(text), SPAN_MAX)


def _after(sel: Selector) -> HistorySpan:
    return HistorySpan(after_at=sel.value) if sel.by_time else HistorySpan(sel.value)


def _before(sel: Selector) -> HistorySpan:
    if sel.by_time:
        return HistorySpan(before_at=sel.value)
    return HistorySpan(before=sel.value)


def _between(low: Selector, high: Selector) -> HistorySpan:
    after, before = _after(low), _before(high)
    return HistorySpan(after.after, before.before, after.after_at, before.before_at)


def _spans(sub: str, params: list[str], room_key: str | None):
    """
    The (span, how many, newest) queries one subcommand asks, in the order
    their results are shown.
    """
    if sub == "LATEST":
        if params[0] == "*":
            return [(HistorySpan(), _limit(params[1]), True)]
        return [(_after(_selector(params[0], room_key)), _limit(params[1]), True)]
    if sub == "BEFORE":
        return [(_before(_selector(params[0], room_key)), _limit(params[1]), True)]
    if sub == "AFTER":
        return [(_after(_selector(params[0], room_key)), _limit(params[1]), False)]
    if sub == "AROUND":
        sel, limit = _selector(params[0], room_key), _limit(params[1])
        # The named message and what follows it, after half the limit before it.
        from_it = _after(Selector(sel.by_time, sel.value - 1))
        queries = [(from_it, limit - limit // 2, False)]
        if limit // 2:
            queries.insert(0, (_before(sel), limit // 2, True))
        return queries
    first, second = _selector(params[0], room_key), _selector(params[1], room_key)
    limit = _limit(params[2])
    if first.by_time == second.by_time and first.value > second.value:
        # Backwards: the newest before the first, as far back as the second.
        return [(_between(second, first), limit, True)]
    return [(_between(first, second), limit, False)]


@command(
    "CHATHISTORY",
    usage="CHATHISTORY <subcommand> <target> ...",
    help="read a channel's or a conversation's stored history",
)
async def chathistory(conn, msg: Message) -> None:
    if not msg.params:
        _fail(conn, "CHATHISTORY", "NEED_MORE_PARAMS", "*", text="Missing parameters")
        return
    sub = msg.params[0].upper()
    if sub not in SUBCOMMANDS:
        _fail(conn, "CHATHISTORY", "UNKNOWN_COMMAND", sub, text="Unknown subcommand")
        return
    if len(msg.params) - 1 < SUBCOMMANDS[sub]:
        _fail(conn, "CHATHISTORY", "NEED_MORE_PARAMS", sub, text="Missing parameters")
        return
    try:
        if sub == "TARGETS":
            await _targets(conn, *msg.params[1:4])
        else:
            await _messages(conn, sub, msg.params[1], msg.params[2:])
    except BadRequest as e:
        _fail(conn, "CHATHISTORY", "INVALID_PARAMS", sub, text=str(e))


async def _messages(conn, sub: str, target: str, params: list[str]) -> None:
    room = channel_name(target)
    room_key = name_key(room) if room is not None else None
    queries = _spans(sub, params, room_key)
    avatar = conn.avatar
    shown: list[tuple[str, str, str, int, str, str]] = []
    try:
        for span, limit, newest in queries:
            if room is not None:
                found = await avatar.room_span(room, span, limit, newest)
                shown += [
                    (
                        message.sender,
                        f"#{found.room}",
                        message.text,
                        message.created_at,
                        wire.msgid_for(found.room, message.seq),
                        message.kind,
                    )
                    for message in found.messages
                ]
            else:
                talk = await avatar.conversation_span(target, span, limit, newest)
                shown += [
                    (
                        line.sender,
                        line.recipient,
                        line.text,
                        line.at,
                        wire.msgid_for_private(line.id),
                        line.kind,
                    )
                    for line in talk.messages
                ]
    except (NoSuchRoom, NotMember, NoSuchUser, BadName):
        _fail(
            conn,
            "CHATHISTORY",
            "INVALID_TARGET",
            sub,
            target,
            text="Messages could not be retrieved",
        )
        return
    except BadArguments as e:
        raise BadRequest(e.message) from None
    ref = batch.start(conn, "chathistory", target) if batch.enabled(conn) else None
    for message in shown:
        conn.write(_message_lines(conn, ref, *message))
    if ref is not None:
        batch.end(conn, ref)


def _message_lines(
    conn,
    ref: str | None,
    sender: str,
    target: str,
    text: str,
    at: int,
    msgid: str,
    kind: str,
) -> bytes:
    """A stored message as the PRIVMSG, NOTICE or ACTION it was, time and msgid too."""
    tags = {} if ref is None else {"batch": ref}
    if "server-time" in conn.caps:
        tags["time"] = wire.server_time(at)
    if "message-tags" in conn.caps:
        tags["msgid"] = msgid
    # A long text went out as several lines, and is shown as several again.
    return conn.message_line(
        conn.message_command(kind),
        target,
        text,
        conn.mask_of(sender),
        tags or None,
        kind=kind,
    )


async def _targets(conn, first: str, second: str, limit: str) -> None:
    low, high = sorted((_timestamp(first), _timestamp(second)))
    found = await conn.avatar.history_targets(low, high, _limit(limit))
    enabled = batch.enabled(conn)
    ref = batch.start(conn, "draft/chathistory-targets") if enabled else None
    for target in found:
        name = f"#{target.name}" if target.is_room else target.name
        conn.write(
            wire.line(
                "CHATHISTORY",
                "TARGETS",
                name,
                wire.server_time(target.latest_at),
                source=conn.server,
                tags=None if ref is None else {"batch": ref},
            )
        )
    if ref is not None:
        batch.end(conn, ref)


# Read markers


def markread_line(conn, target: str, at: int | None) -> bytes:
    """MARKREAD as the server sends it: the marker's time, or C{*} for none."""
    stamp = "*" if at is None else f"timestamp={wire.server_time(at)}"
    return wire.line("MARKREAD", target, stamp, source=conn.server)


@command(
    "MARKREAD",
    usage="MARKREAD <target> [timestamp=<time>]",
    help="get or set what you have read",
)
async def markread(conn, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        _fail(conn, "MARKREAD", "NEED_MORE_PARAMS", text="Missing parameters")
        return
    target = msg.params[0]
    try:
        if len(msg.params) < 2:
            at = await conn.avatar.read_marker(target)
        else:
            at = await conn.avatar.mark_read(target, _timestamp(msg.params[1]))
    except BadRequest as e:
        _fail(conn, "MARKREAD", "INVALID_PARAMS", target, text=str(e))
        return
    except (BadName, BadArguments, NoSuchRoom, NoSuchUser) as e:
        _fail(conn, "MARKREAD", "INVALID_PARAMS", target, text=e.message)
        return
    conn.write(markread_line(conn, target, at))


async def join_read_marker(conn, channel: str) -> bytes | None:
    """
    The MARKREAD a join shows before its names, if the client asked for
    them; None if not, or if storage failed (logged: the join stands).
    """
    if "draft/read-marker" not in conn.caps:
        return None
    try:
        at = await conn.avatar.read_marker(channel)
    except Exception:
        log.failure("reading the read marker of {channel}", channel=channel)
        return None
    return markread_line(conn, channel, at)


def send_read_marker(conn, channel: str) -> None:
    """Send a channel's MARKREAD once read (a join the server made, not a JOIN)."""

    def sent(line: bytes | None) -> None:
        if line is not None and conn.connected:
            conn.write(line)

    defer.ensureDeferred(join_read_marker(conn, channel)).addCallback(sent)
