"""The line protocol's listening factory."""

from __future__ import annotations

from chatroom.protocol.factory import ChatFactory
from chatroom.protocol.line import wire
from chatroom.protocol.line.protocol import LineProtocol


class LineFactory(ChatFactory):
    """Builds a L{LineProtocol} per connection."""

    protocol = LineProtocol

    def refusal(self, reason: str) -> bytes:
        return wire.notice(reason)
