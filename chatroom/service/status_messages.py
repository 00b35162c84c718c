"""
Messages to a room's members of a rank (IRC's STATUSMSG): C{@} to its
operators, C{+} to the voiced and operators.  Spoken as a room message is
(the same checks), handed to each such member's sessions, never stored:
the others in the room, and its history, never see it (as Ergo keeps it
out of public history).
"""

from __future__ import annotations

from chatroom.errors import BadText
from chatroom.names import check_text
from chatroom.service import moderation
from chatroom.service.events import MESSAGE, StatusMessage, new_tag_id

# The roles each status reaches.
STATUS_ROLES = {"@": moderation.OP, "+": moderation.OP | moderation.VOICE}


def members_of_status(room, status: str) -> list[int]:
    """The members of C{room} a C{status} message goes to."""
    wanted = STATUS_ROLES[status]
    return [
        user_id
        for user_id in room.members
        if moderation.role_of(room, user_id) & wanted
    ]


class StatusMessages:
    """The Session's status messages."""

    __slots__ = ()

    async def say_to_status(
        self,
        room: str,
        status: str,
        text: str,
        kind: str = MESSAGE,
        tags: dict[str, str] | None = None,
    ) -> StatusMessage:
        """
        Send C{text} to C{room}'s members of C{status} (C{"@"} or C{"+"}),
        who may speak there sending it; the sender's own other sessions
        have it if it is of that rank, never this one (IRC's echo-message).
        """
        if status not in STATUS_ROLES:
            raise BadText(f"{status!r} is not a status: use @ or +")
        chat, account = self.chat, self.account
        target = chat.rooms.find(room)
        moderation.check_speak(target, account)
        text = check_text(text)
        account.last_active = chat.clock.seconds()
        message = StatusMessage(
            target.name,
            status,
            account.name,
            text,
            chat.now(),
            new_tag_id(),
            kind,
            tags,
        )
        for user_id in members_of_status(target, status):
            await chat.fanout.publish(("user", user_id), message, self.mind)
        return message
