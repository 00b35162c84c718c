"""
Issue 11's paste burst on the real server, production limits, real sockets:
ten senders on ten loopback addresses each paste 180 lines of 3.9 KB (within
the line-rate burst) into the lobby, where one more client only reads.  The
senders are slowed, not refused; nobody who reads is cut; the server's
memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import endpoints, reactor, task
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial import unittest

from tests.asynctest import async_test
from tests.clients import TIMEOUT, NetClient, count_of, log_in
from tests.realserver import TwistdProcess, poll

SENDERS = 10
LINES = 180
LINE_SIZE = 3900
# Growth of the server's resident memory over the burst that it may show.
# Eleven connections may queue up to --output-hard (1 MiB) each, while each
# is sent about 7 MB: bounded by the queues, not by what goes through them.
RSS_GROWTH_MAX = 32 * 1024 * 1024
# The paste takes about ten seconds at the default --byte-rate; everything
# must have arrived by this deadline.
DEADLINE = 30.0


def paste_line(sender: int, n: int) -> bytes:
    head = f"p{sender} {n:03d} ".encode()
    return head + b"x" * (LINE_SIZE - len(head))


class PasteClient(NetClient):
    """
    A NetClient that, once L{pasting}, counts instead of keeping: the final
    replies to its own paste, and which pasted lines of others it received.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pasting = False
        self.replies: list[bytes] = []
        self.heard: set[tuple[bytes, bytes]] = set()
        self.lost: Failure | None = None

    def lineReceived(self, raw: bytes) -> None:
        if not self.pasting:
            super().lineReceived(raw)
        elif raw.startswith(b"[lobby] "):
            _room, who, _tag, n, _text = raw.split(b" ", 4)
            self.heard.add((who, n))
        elif raw.startswith((b"+OK", b"-ERR")):
            self.replies.append(raw)
        else:
            self.pushed.append(raw.decode("utf-8"))

    def connectionLost(self, reason: Failure) -> None:
        self.lost = reason
        super().connectionLost(reason)


async def connect_from(source: str, port: int) -> PasteClient:
    endpoint = endpoints.TCP4ClientEndpoint(
        reactor, "127.0.0.1", port, bindAddress=(source, 0)
    )
    client = await endpoints.connectProtocol(endpoint, PasteClient())
    await client.until(count_of(1, "* welcome"), TIMEOUT)
    return client


def rss(pid: int) -> int:
    """Resident memory of process C{pid}, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class PasteBurstTests(unittest.TestCase):
    timeout = 60

    @async_test
    async def test_a_paste_burst_cuts_nobody_who_reads(self):
        server = TwistdProcess(self, Path(self.mktemp()).resolve())
        port = await server.start()
        reader = await log_in(await connect_from("127.0.0.1", port), "reader", "pw")
        senders = [
            await log_in(await connect_from(f"127.0.0.{i + 2}", port), f"p{i}", "pw")
            for i in range(SENDERS)
        ]
        clients = [reader, *senders]
        for client in clients:
            self.addCleanup(client.transport.loseConnection)
            await client.ok("/ping")
            client.pasting = True
        before = peak = rss(server.process.pid)

        def sample() -> None:
            nonlocal peak
            peak = max(peak, rss(server.process.pid))

        sampler = task.LoopingCall(sample)
        sampler.start(0.05)
        started = reactor.seconds()
        for i, sender in enumerate(senders):
            sender.transport.write(
                b"".join(paste_line(i, n) + b"\n" for n in range(LINES))
            )

        def acknowledged() -> set[tuple[bytes, bytes]]:
            return {
                (f"p{i}:".encode(), f"{n:03d}".encode())
                for i, sender in enumerate(senders)
                for n, reply in enumerate(sender.replies)
                if reply.startswith(b"+OK")
            }

        def settled() -> bool:
            if any(client.lost is not None for client in clients):
                return True
            if any(len(sender.replies) < LINES for sender in senders):
                return False
            return acknowledged() <= reader.heard

        try:
            await poll(settled, DEADLINE, every=0.1)
        finally:
            sampler.stop()
        took = reactor.seconds() - started
        sample()

        log = server.read_log()
        cut = [i for i, client in enumerate(clients) if client.lost is not None]
        self.assertEqual(
            cut,
            [],
            f"{len(cut)} of {len(clients)} connections cut after {took:.1f} s;"
            f" the server logged {log.count('not reading')} 'not reading' cuts",
        )
        for sender in senders:
            self.assertEqual(sender.replies, [b"+OK"] * LINES)
        wanted = acknowledged()
        self.assertEqual(len(wanted), SENDERS * LINES)
        self.assertEqual(wanted - reader.heard, set())
        # Every sender got everyone else's paste too.
        for i, sender in enumerate(senders):
            mine = {key for key in wanted if key[0] == f"p{i}:".encode()}
            self.assertEqual(wanted - mine - sender.heard, set())
        self.assertLess(peak - before, RSS_GROWTH_MAX)
        self.assertNotIn("not reading", log)
        # What the run measured, for the record, in _trial_temp/test.log.
        Logger().info(
            "paste burst: {took:.1f} s, server RSS {before} -> peak {peak} KiB,"
            " reader got {lines} lines",
            took=took,
            before=before // 1024,
            peak=peak // 1024,
            lines=len(reader.heard),
        )
