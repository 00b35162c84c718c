"""The null server: accepts connections, answers ``+OK`` to every line, delivers
nothing. Driving it shows what the load generator can offer on its own.

    python -m bench.null_server --port N
"""

from __future__ import annotations

from twisted.internet import protocol

from bench.bare_server import serve


class NullProtocol(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        # Counting newlines is all the parsing a null server needs.
        lines = data.count(b"\n")
        if lines:
            self.transport.write(b"+OK\r\n" * lines)


def main() -> None:
    serve(
        __doc__.splitlines()[0],
        lambda args, reactor: protocol.Factory.forProtocol(NullProtocol),
    )


if __name__ == "__main__":
    main()
