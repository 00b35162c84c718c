"""The IRC front end's listening factory."""

from __future__ import annotations

from chatroom.names import NAME_MAX
from chatroom.protocol.factory import ChatFactory
from chatroom.protocol.irc import wire
from chatroom.protocol.irc.commands import history
from chatroom.protocol.irc.commands.messages import STATUSMSG
from chatroom.protocol.irc.commands.modes import MODES_PER_LINE
from chatroom.protocol.irc.commands.queries import AWAYLEN
from chatroom.protocol.irc.commands.server import BOT_MODE
from chatroom.protocol.irc.message import MAX_BODY
from chatroom.protocol.irc.protocol import IRCProtocol
from chatroom.protocol.limits import Limits
from chatroom.service import moderation
from chatroom.service.admission import Admission

SERVER_NAME = "chatroom.irc"


class IRCFactory(ChatFactory):
    """
    Builds an L{IRCProtocol} per connection.  With C{guests}, a nick that is
    no account's may come in as a guest (L{chatroom.service.guest}).

    Unless C{no_delay}, its connections leave Nagle's algorithm on, as
    ngIRCd and InspIRCd do: in a channel of 500 where most clients read
    late, the kernel then sends a third of the segments for the same lines
    (docs/performance.md, round 5).
    """

    protocol = IRCProtocol

    def __init__(
        self,
        admission: Admission,
        limits: Limits | None = None,
        guests: bool = False,
        server_name: str = SERVER_NAME,
        no_delay: bool = False,
    ) -> None:
        super().__init__(admission, limits, no_delay)
        self.guests = guests
        self.server_name = server_name
        # What LUSERS counts, kept as connections change (never counted
        # per LUSERS, which every welcome sends): the most users online at
        # once it has seen, the welcomed connections, and those with +i or
        # a server operator's session.
        self.peak_users = 0
        self.registered = 0
        self.invisible: set[IRCProtocol] = set()
        self.operators: set[IRCProtocol] = set()

    def welcomed(self, client: IRCProtocol) -> None:
        self.registered += 1

    def closed(self, client: IRCProtocol) -> None:
        if client in self.clients and client.registered:
            self.registered -= 1
        self.invisible.discard(client)
        self.operators.discard(client)
        super().closed(client)

    def refusal(self, reason: str) -> bytes:
        return wire.line("ERROR", reason)

    def isupport(self) -> list[str]:
        """RPL_ISUPPORT's tokens: what this server's names and lines allow."""
        chat = self.chat
        return [
            f"AWAYLEN={AWAYLEN}",
            f"BOT={BOT_MODE}",
            "CASEMAPPING=ascii",
            f"CHANLIMIT=#:{chat.max_rooms or ''}",
            "CHANMODES=b,k,l,imnst",
            f"CHANNELLEN={NAME_MAX + 1}",
            "CHANTYPES=#",
            *history.isupport(),
            f"LINELEN={MAX_BODY + 2}",
            "NETWORK=chatroom",
            f"NICKLEN={NAME_MAX}",
            "ELIST=MNU",
            "EXTBAN=,m",
            f"KICKLEN={moderation.KICK_MAX}",
            f"MODES={MODES_PER_LINE}",
            f"MONITOR={chat.watch.limit}",
            "PREFIX=(ov)@+",
            f"STATUSMSG={STATUSMSG}",
            "TARGMAX=JOIN:,NAMES:,PART:,PRIVMSG:,NOTICE:",
            f"TOPICLEN={moderation.TOPIC_MAX}",
            f"USERLEN={NAME_MAX}",
            "UTF8ONLY",
            "WHOX",
        ]
