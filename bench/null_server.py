"""The null server: accepts connections, answers ``+OK`` to every line, delivers
nothing. Driving it shows what the load generator can offer on its own.

    python -m bench.null_server --port N
"""

from __future__ import annotations

import argparse

from twisted.internet import protocol


class NullProtocol(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        # Counting newlines is all the parsing a null server needs.
        lines = data.count(b"\n")
        if lines:
            self.transport.write(b"+OK\r\n" * lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args()
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    factory = protocol.Factory.forProtocol(NullProtocol)
    reactor.listenTCP(args.port, factory, backlog=4096, interface=args.interface)
    reactor.run()


if __name__ == "__main__":
    main()
