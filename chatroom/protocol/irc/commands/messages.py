"""
Messages: PRIVMSG, NOTICE and TAGMSG, to a channel or a nick.  What an IRC
client sends is cut to what fits in one relayed line (RFC 2812's 512 bytes,
with the sender's mask in front), as IRC servers do; a longer text from
another front end is split into several lines on the way out instead.
"""

from __future__ import annotations

import contextvars

from twisted.internet import defer

from chatroom.errors import (
    BadName,
    CannotSpeak,
    ChatError,
    NoSuchRoom,
    NoSuchUser,
    NotMember,
)
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands.queries import tell_away
from chatroom.protocol.irc.commands.table import (
    channel_name,
    command,
    targets,
)
from chatroom.protocol.irc.message import (
    CTCP_ACTION,
    MAX_BODY,
    Message,
    client_only,
    head_length,
    split_text,
)
from chatroom.service.events import ACTION, MESSAGE, NOTICE

# The prefixes a message's channel may carry to reach only members of that
# rank (ISUPPORT STATUSMSG): "@" operators, "+" voiced and operators.
STATUSMSG = "@+"


@command(
    "PRIVMSG",
    usage="PRIVMSG <target>{,<target>} :<text>",
    help="send a message to rooms (#room) or nicks",
)
async def privmsg(conn, msg: Message) -> None:
    await _message(conn, msg, errors=True)


@command(
    "NOTICE",
    usage="NOTICE <target>{,<target>} :<text>",
    help="send a notice: never answered automatically",
)
async def notice(conn, msg: Message) -> None:
    # A NOTICE is never answered with an error (RFC 2812 3.3.2).
    await _message(conn, msg, errors=False)


async def _message(conn, msg: Message, errors: bool) -> None:
    if not msg.params:
        if errors:
            conn.numeric(wire.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
        return
    if len(msg.params) < 2 or not msg.params[1]:
        if errors:
            conn.numeric(wire.ERR_NOTEXTTOSEND, "No text to send")
        return
    tags = relayed_tags(conn, msg)
    for target in targets(msg.params[0]):
        status, room = status_target(target)
        text, kind = relayed_text(conn, msg, target, errors)
        try:
            if status is not None:
                sent = await conn.avatar.say_to_status(room, status, text, kind, tags)
                if "echo-message" in conn.caps:
                    conn.status_message(sent, echo=True)
            elif room is not None:
                sent = await conn.avatar.say(room, text, kind, tags)
                if "echo-message" in conn.caps:
                    conn.room_message(sent, echo=True)
            else:
                sent = await conn.avatar.send_private(target, text, kind, tags)
                if msg.command == "PRIVMSG":
                    tell_away(conn, target)
                if "echo-message" in conn.caps:
                    conn.write(conn.private_lines(sent, target, conn.mask))
        except ChatError as e:
            if errors:
                _refused(conn, msg.command, target, room, e)


def channel_message_at_once(conn, msg: Message) -> defer.Deferred[None] | None:
    """
    A PRIVMSG or NOTICE to one channel, nearly every line a client sends,
    run with callbacks rather than as a coroutine (L{_message} does the
    rest: several targets, a status prefix, a nick); None if C{msg} is
    not one.  Its Deferred fires once the message is stored.
    """
    params = msg.params
    if len(params) != 2 or not params[1]:
        return None
    target = params[0]
    if not target.startswith("#") or "," in target:
        return None
    errors = msg.command == "PRIVMSG"
    text, kind = relayed_text(conn, msg, target, errors)
    room = target[1:]
    try:
        said = conn.avatar.say(room, text, kind, relayed_tags(conn, msg))
    except ChatError as e:
        if errors:
            _refused(conn, msg.command, target, room, e)
        return defer.succeed(None)
    except Exception:
        return defer.fail()  # answered as any command's failure is
    # What the callbacks write belongs to this command (pipeline.current).
    context = contextvars.copy_context()
    return said.addCallbacks(
        _said,
        _not_said,
        callbackArgs=(conn, context),
        errbackArgs=(conn, context, msg.command, target, room, errors),
    )


def _said(sent, conn, context: contextvars.Context) -> None:
    if "echo-message" in conn.caps:
        context.run(conn.room_message, sent, True)


def _not_said(failure, conn, context, command, target, room, errors) -> None:
    failure.trap(ChatError)
    if errors:
        context.run(_refused, conn, command, target, room, failure.value)


def relayed_tags(conn, msg: Message) -> dict[str, str] | None:
    """Client-only tags are passed on; the others are the server's to set."""
    return client_only(msg.tags) if "message-tags" in conn.caps else None


def relayed_text(conn, msg: Message, target: str, errors: bool) -> tuple[str, str]:
    """
    The text of C{msg} (a PRIVMSG if C{errors}, else a NOTICE) as relayed
    to C{target}, and its kind: a CTCP ACTION in a PRIVMSG is an action.
    """
    text = fit_text(msg.command, target, msg.params[1], conn.mask)
    action = ctcp_action(text) if errors else None
    if action is not None:
        return action, ACTION
    return text, MESSAGE if errors else NOTICE


def status_target(target: str) -> tuple[str | None, str | None]:
    """
    STATUSMSG: C{@#room} (its operators) or C{+#room} (voiced and
    operators) as the status and the room; otherwise no status and the
    room a target names, if any.
    """
    if target[:1] in STATUSMSG and target[1:2] == "#":
        return target[0], target[2:]
    return None, channel_name(target)


@command(
    "TAGMSG",
    1,
    usage="TAGMSG <target>",
    help="send only client tags (message-tags), such as typing",
)
async def tagmsg(conn, msg: Message) -> None:
    tags = relayed_tags(conn, msg)
    if not tags:
        return  # nothing a recipient could be shown
    for target in targets(msg.params[0]):
        room = channel_name(target)
        try:
            sent = await conn.avatar.send_tags(
                room, None if room is not None else target, tags
            )
        except ChatError as e:
            _refused(conn, msg.command, target, room, e)
            continue
        if "echo-message" in conn.caps:
            conn.write(conn.tag_line(sent, target, conn.mask))


def _refused(conn, command: str, target: str, room: str | None, e: ChatError) -> None:
    if isinstance(e, (NoSuchRoom, NoSuchUser, BadName)):
        if room is not None:
            conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
        else:
            conn.numeric(wire.ERR_NOSUCHNICK, target, "No such nick/channel")
    elif isinstance(e, (NotMember, CannotSpeak)):
        conn.numeric(wire.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel")
    else:
        conn.write(wire.error_fail(command, e, source=conn.server))


def ctcp_action(text: str) -> str | None:
    """
    The action in a CTCP ACTION (C{\\x01ACTION waves\\x01}, the closing
    C{\\x01} optional), or None if C{text} is none.
    """
    if not text.startswith(CTCP_ACTION):
        return None
    body = text[len(CTCP_ACTION) :].removesuffix("\x01")
    if body and not body.startswith(" "):
        return None  # another CTCP command, such as ACTIONS
    return body[1:]


def fit_text(command: str, target: str | None, text: str, source: str) -> str:
    """
    C{text} cut, between characters, to fit one relayed line from C{source}
    (C{command target :text}, or C{command :text} if there is no target).
    """
    middle = () if target is None else (target,)
    head = head_length(command, *middle, source=source)
    # One byte more for the colon before the trailing parameter.
    return split_text(text, MAX_BODY - head - 1)[0]
