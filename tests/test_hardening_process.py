"""
The real server in a real process: killed with SIGKILL in the middle of a
flood, or stopped with SIGTERM under load, it loses nothing it acknowledged.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from twisted.internet import defer, error, reactor
from twisted.trial import unittest

from tests.asynctest import async_test
from tests.clients import NetClient, connect, log_in
from tests.helpers import ADMIN_PASSWORD
from tests.realserver import TwistdProcess, poll

SHUTDOWN_NOTICE = "* the server is shutting down"


class Writer:
    """
    Sends C{count} numbered messages, at most C{window} unanswered at a time,
    and records each +OK.  The window bounds how far the server can get
    ahead of what this side has seen, so a kill on the Nth +OK lands
    mid-flood however fast the server is.
    """

    def __init__(
        self,
        client: NetClient,
        name: str,
        count: int,
        window: int = 50,
        on_acknowledged: Callable[[], object] = lambda: None,
    ) -> None:
        self.client = client
        self.name, self.count, self.window = name, count, window
        self.on_acknowledged = on_acknowledged
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self.replied: defer.Deferred = defer.Deferred()
        self._sent = self._unanswered_count = 0
        self._cut = False

    @property
    def notices(self) -> list[str]:
        return [line for line in self.client.pushed if line.startswith("* ")]

    def start(self) -> None:
        for _ in range(min(self.window, self.count)):
            self._send_next()

    def _send_next(self) -> None:
        text = f"{self.name}-{self._sent:04d}"
        self._sent += 1
        self._unanswered_count += 1
        self.client.send(text).addCallbacks(
            self._replied, self._unanswered, (text,)
        ).addBoth(self._answered)

    def _replied(self, reply: tuple[str, list[str]], text: str) -> None:
        if reply[0] == "+OK":
            self.acknowledged.append(text)
            self.on_acknowledged()
        elif reply[0].startswith("-ERR"):
            self.errors.append(reply[0])

    def _unanswered(self, failure) -> None:
        # The server went away first: not acknowledged, so nothing is owed.
        failure.trap(error.ConnectionClosed, error.TimeoutError)
        self._cut = True

    def _answered(self, _: object) -> None:
        self._unanswered_count -= 1
        if not self._cut and self._sent < self.count:
            self._send_next()
        elif self._unanswered_count == 0 and not self.replied.called:
            self.replied.callback(None)


async def history(port: int) -> set[str]:
    client = await connect(port)
    await client.ok(f"/login admin {ADMIN_PASSWORD}")
    data = await client.ok("/history lobby 1000")
    client.transport.loseConnection()
    await client.closed
    return {line.rsplit(": ", 1)[1] for line in data}


class CrashSafetyTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.server = TwistdProcess(
            self, Path(self.mktemp()).resolve(), "--rate=0", "--max-per-address=0"
        )
        return defer.ensureDeferred(self.server.start())

    async def flood(
        self,
        writers: int = 3,
        count: int = 300,
        on_acknowledged: Callable[[], object] = lambda: None,
    ) -> list[Writer]:
        flood = []
        for i in range(writers):
            client = await log_in(await connect(self.server.port), f"w{i}", "pw")
            flood.append(
                Writer(client, f"w{i}", count, on_acknowledged=on_acknowledged)
            )
        for writer in flood:
            writer.start()
        return flood

    async def finish(self, flood: list[Writer]) -> None:
        for writer in flood:
            await writer.client.closed.addTimeout(30, reactor)
            await writer.replied
            self.assertTrue(writer.replied.called)

    @async_test
    async def test_sigkill_mid_flood_loses_no_acknowledged_message(self):
        acknowledged_so_far = 0

        def kill_on_the_150th() -> None:
            nonlocal acknowledged_so_far
            acknowledged_so_far += 1
            if acknowledged_so_far == 150:
                self.server.signal(signal.SIGKILL)

        flood = await self.flood(on_acknowledged=kill_on_the_150th)
        await self.server.ended()
        await self.finish(flood)
        acknowledged = {text for w in flood for text in w.acknowledged}
        self.assertLess(len(acknowledged), 900, "the flood ended before the kill")

        await self.server.start()
        stored = await history(self.server.port)
        self.assertEqual(acknowledged - stored, set())

    @async_test
    async def test_sigterm_under_load_says_goodbye_and_keeps_everything(self):
        idle = await connect(self.server.port)  # not logged in
        first_port = self.server.port
        flood = await self.flood()
        await poll(lambda: sum(len(w.acknowledged) for w in flood) >= 150, 30)
        self.server.signal(signal.SIGTERM)
        # twistd stops cleanly, then exits with the signal it was sent.
        self.assertIn(await self.server.ended(), (0, -signal.SIGTERM))
        self.assertIn("Server Shut Down.", self.server.read_log()[-3000:])
        # It stopped listening first: Twisted's own line as the port closes.
        self.assertIn(f"(TCP Port {first_port} Closed)", self.server.read_log())
        await self.finish(flood)
        # Every client heard why, logged in or not.
        for writer in flood:
            self.assertIn(SHUTDOWN_NOTICE, writer.notices)
        await idle.closed.addTimeout(30, reactor)
        self.assertEqual(idle.pushed[1:], [SHUTDOWN_NOTICE])  # after the greeting
        acknowledged = {text for w in flood for text in w.acknowledged}

        await self.server.start()
        stored = await history(self.server.port)
        self.assertEqual(acknowledged - stored, set())
