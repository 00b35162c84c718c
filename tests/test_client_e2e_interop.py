"""
Two bundled clients through a real C{twistd chatroom} on 127.0.0.1 port 0:
end-to-end messages both ways, one kept for a device while it was offline,
and afterwards not a byte of their plaintext in the server's database, its
activity log or its log.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SkipTest, TestCase

from chatroom.client.connect import PlainTCP, connect
from chatroom.client.e2e.messenger import PLACEHOLDER, E2eMessenger, E2eSettings
from chatroom.client.render import Style
from chatroom.client.session import ChatSession
from chatroom.options import DATABASE_FILE
from chatroom.protocol.line import commands
from tests.clients import connect as connect_line
from tests.clients import count_of, log_in
from tests.realserver import TwistdProcess, poll

LOCK = "🔒"
# Words no server would write on its own, to search its files for.
FIRST = "first-plaintext-quokka"
OFFLINE = "offline-plaintext-narwhal"
REPLY = "reply-plaintext-axolotl"
PLAINTEXTS = (FIRST, OFFLINE, REPLY)


def server_has_e2e() -> bool:
    return {"keys", "e2e"} <= commands.COMMANDS.keys()


class ScriptedUI:
    """Answers the login questions with a password; keeps what is shown."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.handler = None

    def ask(self, prompt: str, secret: bool = False) -> Deferred[str]:
        return succeed("correct horse")

    def show(self, text: str) -> None:
        self.shown.append(text)

    def text(self) -> str:
        return "\n".join(self.shown)


class BundledClient:
    """A bundled client's session and messenger, without the terminal."""

    def __init__(self, ui: ScriptedUI, session: ChatSession, ended: Deferred) -> None:
        self.ui, self.session, self.ended = ui, session, ended

    @classmethod
    async def log_in(
        cls, port: int, name: str, config: Path, device: str
    ) -> BundledClient:
        protocol, _ = await connect(reactor, "127.0.0.1", port, PlainTCP())
        ui = ScriptedUI()
        style = Style(colour=False)
        settings = E2eSettings(
            config, "127.0.0.1", port, threads.deferToThread, reactor, device
        )
        messenger = E2eMessenger(protocol, ui, style, settings)
        session = ChatSession(protocol, ui, style, name, messenger)
        client = cls(ui, session, session.run())
        await poll(lambda: "end-to-end encryption on" in ui.text(), timeout=10)
        return client

    def type(self, line: str) -> None:
        self.session.line_entered(line)

    async def leave(self) -> None:
        self.type("/logout")
        await self.ended


class BundledClientsThroughARealServerTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        if not server_has_e2e():
            raise SkipTest(
                "this server has no /keys and /e2e commands yet: the server side "
                "of issue 15 (branch e2e-server) is not merged"
            )

    async def test_sealed_both_ways_offline_too_and_no_plaintext_on_the_server(self):
        here = Path(self.mktemp()).absolute()
        # debug: the log gets a line per message too, ciphertexts' included.
        server = TwistdProcess(self, here / "server", "--log-level", "debug")
        port = await server.start()
        alice = await BundledClient.log_in(port, "alice", here / "alice", "alice-pc")
        laptop = await BundledClient.log_in(port, "alice", here / "laptop", "laptop")
        bob = await BundledClient.log_in(port, "bob", here / "bob", "bob-phone")
        # bob on telnet as well: a session that is no device.
        telnet = await log_in(await connect_line(port), "bob", "correct horse")
        self.addCleanup(telnet.transport.loseConnection)

        alice.type(f"/msg bob {FIRST}")
        await poll(lambda: f"{LOCK} [private] alice: {FIRST}" in bob.ui.text())
        self.assertIn(f"✓ {LOCK} [private to bob] you: {FIRST}", alice.ui.text())
        own_copy = f"{LOCK} [private to bob] you (on alice-pc): {FIRST}"
        await poll(lambda: own_copy in laptop.ui.text())
        await telnet.until(count_of(1, "[private] alice: "), 10)
        self.assertIn(f"[private] alice: {PLACEHOLDER}", telnet.pushed)
        telnet.transport.loseConnection()

        await bob.leave()
        alice.type(f"/msg bob {OFFLINE}")
        await poll(lambda: f"[private to bob] you: {OFFLINE}" in alice.ui.text())
        bob = await BundledClient.log_in(port, "bob", here / "bob", "bob-phone")
        await poll(lambda: f"{LOCK} [private] alice: {OFFLINE}" in bob.ui.text())
        # The placeholder kept for bob's login came first, as a note.
        self.assertIn("alice sent you an end-to-end encrypted message", bob.ui.text())
        self.assertNotIn(PLACEHOLDER, bob.ui.text())

        bob.type(f"/msg alice {REPLY}")
        await poll(lambda: f"{LOCK} [private] bob: {REPLY}" in alice.ui.text())
        for client in (alice, laptop, bob):
            self.assertNotIn("REFUSED", client.ui.text())
            self.assertNotIn("WARNING", client.ui.text())
        for client in (alice, laptop, bob):
            await client.leave()
        await server.stop()

        stored = {
            path: path.read_bytes()
            for path in sorted(server.directory.rglob("*"))
            if path.is_file()
        }
        names = {path.name for path in stored}
        # The database, the activity log (a table of it) and the log were
        # searched, and they did record this run's devices.
        self.assertIn(DATABASE_FILE, names)
        self.assertIn(server.log, stored)
        self.assertTrue(any(b"bob-phone" in data for data in stored.values()))
        database = sqlite3.connect(server.directory / "twistd" / DATABASE_FILE)
        self.addCleanup(database.close)
        events = {row[0] for row in database.execute("SELECT event FROM activity")}
        self.assertIn("device-published", events)
        self.assertIn(b"e2e by alice to bob", server.log.read_bytes())
        for path, data in stored.items():
            for plaintext in PLAINTEXTS:
                self.assertNotIn(plaintext.encode(), data, f"{plaintext} in {path}")
