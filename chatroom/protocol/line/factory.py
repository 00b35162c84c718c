"""The line protocol's listening factory."""

from __future__ import annotations

from twisted.internet import defer

from chatroom.protocol.factory import ChatFactory
from chatroom.protocol.limits import Limits
from chatroom.protocol.line import wire
from chatroom.protocol.line.pipeline import InFlight
from chatroom.protocol.line.protocol import LineProtocol
from chatroom.service.admission import Admission


class LineFactory(ChatFactory):
    """Builds a L{LineProtocol} per connection; they share one L{InFlight}."""

    protocol = LineProtocol

    def __init__(self, admission: Admission, limits: Limits | None = None) -> None:
        super().__init__(admission, limits)
        self.in_flight = InFlight()

    def all_answered(self, grace: float = 5.0) -> defer.Deferred:
        return self.in_flight.all_answered(self.clock, grace)

    def refusal(self, reason: str) -> bytes:
        return wire.notice(reason)
