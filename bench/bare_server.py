"""The baseline: a bare Twisted line server that forwards lines within a room.

It understands just the command lines the load generator sends, so the same
generator drives it and the real server: every command gets ``+OK``, plain text
and ``/public ROOM TEXT`` go to the room's other members as
``[room] sender: text``, formatted once per fan-out. No auth, no storage: this is
the limit for this reactor, the yardstick the real server is measured against.

With ``--coalesce`` it is the second baseline: each connection's lines of one
reactor turn are joined into one write, flushed by one call scheduled per turn
(not a timer per connection), so a fan-out costs one ``transport.write``, and
one start/stop of writing, per member per turn instead of per line.

    python -m bench.bare_server --port N [--coalesce]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver

DEFAULT_ROOM = "lobby"
OK = b"+OK"


class BareChatProtocol(LineReceiver):
    """One connection: a name, a default room, and the rooms it is in."""

    MAX_LENGTH = 4096

    def __init__(self, factory: BareChatFactory) -> None:
        self.rooms = factory.rooms
        self.name = b"?"
        self.default_room = DEFAULT_ROOM
        self.joined: list[str] = []

    def connectionMade(self) -> None:
        # Without it, Nagle holds a small write until the client's delayed ACK
        # (up to 40 ms): a chat server sends small lines and wants them out now.
        self.transport.setTcpNoDelay(True)

    def connectionLost(self, reason: object = None) -> None:
        for room in self.joined:
            self.rooms[room].discard(self)

    def lineReceived(self, line: bytes) -> None:
        if not line.startswith(b"/"):
            self.deliver(self.default_room, line)
            return
        command, _, rest = line.partition(b" ")
        if command in (b"/register", b"/login"):
            self.name = rest.partition(b" ")[0]
            self.join(DEFAULT_ROOM)
        elif command in (b"/j", b"/c"):
            self.join(rest.strip().lstrip(b"#").decode())
        elif command == b"/cd":
            self.default_room = rest.strip().lstrip(b"#").decode()
        elif command == b"/public":
            room, _, text = rest.partition(b" ")
            self.deliver(room.strip(b"<>#").decode(), text)
            return
        self.sendLine(OK)

    def sendLine(self, line: bytes) -> None:
        self.send(line + self.delimiter)

    def send(self, data: bytes) -> None:
        """Every byte out goes here: at once, one write per line."""
        self.transport.write(data)

    def join(self, room: str) -> None:
        if room not in self.joined:
            self.joined.append(room)
            self.rooms.setdefault(room, set()).add(self)

    def deliver(self, room: str, text: bytes) -> None:
        # Serialise once per fan-out, as the real server is asked to.
        wire = b"[%s] %s: %s\r\n" % (room.encode(), self.name, text)
        for member in self.rooms.get(room, ()):
            if member is not self:
                member.send(wire)
        self.sendLine(OK)


class CoalescingChatProtocol(BareChatProtocol):
    """Output queued for the rest of the turn, then written in one piece."""

    def __init__(self, factory: CoalescingChatFactory) -> None:
        super().__init__(factory)
        self.flushes = factory
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> None:
        if not self.pending:
            self.flushes.flush_later(self)
        self.pending.append(data)

    def flush(self) -> None:
        data, self.pending = b"".join(self.pending), []
        self.transport.write(data)


class BareChatFactory(protocol.Factory):
    protocol = BareChatProtocol

    def __init__(self) -> None:
        self.rooms: dict[str, set[BareChatProtocol]] = {}

    def buildProtocol(self, addr: object) -> BareChatProtocol:
        return self.protocol(self)


class CoalescingChatFactory(BareChatFactory):
    """Knows which connections have output queued this turn, and flushes
    them all from one call."""

    protocol = CoalescingChatProtocol

    def __init__(self, reactor: object) -> None:
        super().__init__()
        self.reactor = reactor
        self.queued: list[CoalescingChatProtocol] = []

    def flush_later(self, connection: CoalescingChatProtocol) -> None:
        if not self.queued:
            # callLater(0) runs once the reactor has handled this turn's reads.
            self.reactor.callLater(0, self.flush)
        self.queued.append(connection)

    def flush(self) -> None:
        queued, self.queued = self.queued, []
        for connection in queued:
            connection.flush()


FactoryMaker = Callable[[argparse.Namespace, object], protocol.Factory]


def serve(
    description: str,
    make_factory: FactoryMaker,
    more_options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Parse --port/--interface (and C{more_options}), then serve the factory
    C{make_factory(options, reactor)} on the epoll reactor."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    if more_options:
        more_options(parser)
    args = parser.parse_args()
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    # A deep backlog so thousands of clients connecting at once are not dropped.
    reactor.listenTCP(
        args.port,
        make_factory(args, reactor),
        backlog=4096,
        interface=args.interface,
    )
    reactor.run()


def coalesce_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coalesce",
        action="store_true",
        help="join each connection's lines of one reactor turn into one write",
    )


def bare_factory(args: argparse.Namespace, reactor: object) -> BareChatFactory:
    return CoalescingChatFactory(reactor) if args.coalesce else BareChatFactory()


def main() -> None:
    serve(__doc__.splitlines()[0], bare_factory, coalesce_option)


if __name__ == "__main__":
    main()
