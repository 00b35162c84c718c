"""
Messages: PRIVMSG and NOTICE, to a channel or a nick.  What an IRC client
sends is cut to what fits in one relayed line (RFC 2812's 512 bytes, with
the sender's mask in front), as IRC servers do; a longer text from another
front end is split into several lines on the way out instead.
"""

from __future__ import annotations

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
from chatroom.protocol.irc.message import MAX_BODY, Message, format_line, split_text
from chatroom.service.events import MESSAGE, NOTICE


@command("PRIVMSG")
async def privmsg(conn, msg: Message) -> None:
    await _message(conn, msg, errors=True)


@command("NOTICE")
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
    kind = MESSAGE if errors else NOTICE
    for target in targets(msg.params[0]):
        room = channel_name(target)
        text = fit_text(msg.command, target, msg.params[1], conn.mask)
        try:
            if room is not None:
                sent = await conn.avatar.say(room, text, kind)
                if "echo-message" in conn.caps:
                    conn.room_message(sent, echo=True)
            else:
                await conn.avatar.send_private(target, text, kind)
                if msg.command == "PRIVMSG":
                    tell_away(conn, target)
                if "echo-message" in conn.caps:
                    conn.write(conn.message_line(msg.command, target, text, conn.mask))
        except (NoSuchRoom, NoSuchUser, BadName):
            if errors:
                if room is not None:
                    conn.numeric(wire.ERR_NOSUCHCHANNEL, target, "No such channel")
                else:
                    conn.numeric(wire.ERR_NOSUCHNICK, target, "No such nick/channel")
        except (NotMember, CannotSpeak):
            if errors:
                conn.numeric(
                    wire.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel"
                )
        except ChatError as e:
            if errors:
                conn.write(
                    wire.fail(
                        msg.command,
                        e.code.upper().replace("-", "_"),
                        e.message,
                        source=conn.server,
                    )
                )


def fit_text(command: str, target: str, text: str, source: str) -> str:
    """C{text} cut, between characters, to fit one relayed line from C{source}."""
    head = len(format_line(command, target, "x", source=source)) - len(b"x\r\n")
    # One byte more for the colon before the trailing parameter.
    return split_text(text, MAX_BODY - head - 1)[0]
