"""The baseline: a bare Twisted line server that forwards lines within a room.

It understands just the command lines the load generator sends, so the same
generator drives it and the real server: every command gets ``+OK``, plain text
and ``/public ROOM TEXT`` go to the room's other members as
``[room] sender: text``, formatted once per fan-out. No auth, no storage: this is
the limit for this reactor, the yardstick the real server is measured against.

    python -m bench.bare_server --port N
"""

from __future__ import annotations

import argparse

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver

DEFAULT_ROOM = "lobby"
OK = b"+OK"


class BareChatProtocol(LineReceiver):
    """One connection: a name, a default room, and the rooms it is in."""

    MAX_LENGTH = 4096

    def __init__(self, rooms: dict[str, set[BareChatProtocol]]) -> None:
        self.rooms = rooms
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

    def join(self, room: str) -> None:
        if room not in self.joined:
            self.joined.append(room)
            self.rooms.setdefault(room, set()).add(self)

    def deliver(self, room: str, text: bytes) -> None:
        # Serialise once per fan-out, as the real server is asked to.
        wire = b"[%s] %s: %s\r\n" % (room.encode(), self.name, text)
        for member in self.rooms.get(room, ()):
            if member is not self:
                member.transport.write(wire)
        self.sendLine(OK)


class BareChatFactory(protocol.Factory):
    def __init__(self) -> None:
        self.rooms: dict[str, set[BareChatProtocol]] = {}

    def buildProtocol(self, addr: object) -> BareChatProtocol:
        return BareChatProtocol(self.rooms)


def serve(description: str, factory: protocol.Factory) -> None:
    """Parse --port/--interface and serve C{factory} on the epoll reactor."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args()
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    # A deep backlog so thousands of clients connecting at once are not dropped.
    reactor.listenTCP(args.port, factory, backlog=4096, interface=args.interface)
    reactor.run()


def main() -> None:
    serve(__doc__.splitlines()[0], BareChatFactory())


if __name__ == "__main__":
    main()
