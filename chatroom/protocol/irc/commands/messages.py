"""Messages: PRIVMSG and NOTICE, to a channel or a nick."""

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
from chatroom.protocol.irc.commands.table import (
    channel_name,
    command,
    targets,
)
from chatroom.protocol.irc.message import Message


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
    text = msg.params[1]
    for target in targets(msg.params[0]):
        room = channel_name(target)
        try:
            if room is not None:
                sent = await conn.avatar.say(room, text)
                if "echo-message" in conn.caps:
                    conn.room_message(sent, echo=True)
            else:
                await conn.avatar.send_private(target, text)
                if "echo-message" in conn.caps:
                    conn.write(conn.message_line("PRIVMSG", target, text, conn.mask))
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
                    wire.fail(msg.command, e.code.upper().replace("-", "_"), e.message)
                )
