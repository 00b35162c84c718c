"""
The real server on 127.0.0.1 port 0, with real clients talking at once, and
across a restart on the same SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.asynctest import async_test
from tests.clients import NetClient
from tests.helpers import ADMIN_PASSWORD
from tests.realserver import RunningServer


class ManyClientsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.running = RunningServer(self, Path(self.mktemp()))
        return defer.ensureDeferred(self.running.start())

    @async_test
    async def test_room_message_reaches_every_other_member(self):
        alice, bob, carol = [
            await self.running.client(name) for name in ("alice", "bob", "carol")
        ]
        await alice.ok("/c dev")
        await bob.ok("/j dev")
        await carol.ok("/j #dev")
        await alice.ok("/public dev hello, dev")
        for client in (bob, carol):
            line = await client.wait_for("hello, dev")
            self.assertEqual(line, "[dev] alice: hello, dev")
        self.assertNotIn("[dev] alice: hello, dev", alice.pushed)

    @async_test
    async def test_private_message_reaches_only_its_recipient(self):
        alice, bob, carol = [
            await self.running.client(name) for name in ("alice", "bob", "carol")
        ]
        await alice.ok("/private <bob> just for you")
        self.assertEqual(
            await bob.wait_for("just for you"), "[private] alice: just for you"
        )
        await carol.ok("/ping")
        self.assertFalse([line for line in carol.pushed if "just for you" in line])

    @async_test
    async def test_clients_talking_at_once_each_get_every_message_in_order(self):
        clients = [await self.running.client(f"user{i}") for i in range(8)]
        count = 20

        async def chatter(index: int, client: NetClient) -> None:
            for n in range(count):
                await client.ok(f"from {index} number {n}")

        await defer.gatherResults(
            [defer.ensureDeferred(chatter(i, c)) for i, c in enumerate(clients)]
        )
        for index, client in enumerate(clients):
            # Each +OK came after its deliveries were written, so one round
            # trip on each connection is enough to have them all.
            await client.ok("/ping")
            for sender in range(len(clients)):
                if sender == index:
                    continue
                got = [
                    line
                    for line in client.pushed
                    if line.startswith(f"[lobby] user{sender}: ")
                ]
                self.assertEqual(
                    got,
                    [
                        f"[lobby] user{sender}: from {sender} number {n}"
                        for n in range(count)
                    ],
                )

    @async_test
    async def test_failed_login_creates_no_user(self):
        stranger = await self.running.client()
        reply, _ = await stranger.send("/login ghost guess")
        self.assertTrue(reply.startswith("-ERR auth-failed"), reply)
        reply, _ = await stranger.send("/history")
        self.assertTrue(reply.startswith("-ERR not-logged-in"), reply)
        admin = await self.running.client("admin", ADMIN_PASSWORD)
        users = await admin.ok("/users")
        self.assertNotIn("ghost", " ".join(users))
        log = await admin.ok("/log")
        self.assertTrue(log)

    @async_test
    async def test_many_clients_leaving_at_once_leave_the_server_up(self):
        crowd = [await self.running.client(f"crowd{i}") for i in range(30)]
        for client in crowd:
            client.transport.abortConnection()
        await defer.gatherResults([client.closed for client in crowd])
        await task.deferLater(reactor, 0.05, lambda: None)
        survivor = await self.running.client("survivor")
        self.assertEqual(await survivor.ok("/ping"), [])
        online = self.running.server.chat.online.values()
        self.assertEqual([account.name for account in online], ["survivor"])

    @async_test
    async def test_a_silent_client_does_not_hold_up_the_others(self):
        silent = await self.running.client("silent")
        silent.transport.write(b"/public lobby half a li")  # and never more
        alice, bob = [await self.running.client(name) for name in ("alice", "bob")]
        await alice.ok("still moving")
        self.assertEqual(
            await bob.wait_for("still moving"), "[lobby] alice: still moving"
        )


class RestartTests(unittest.TestCase):
    @async_test
    async def test_everything_survives_a_restart(self):
        data_dir = Path(self.mktemp())
        first = RunningServer(self, data_dir)
        await first.start()
        alice = await first.client("alice", "secret")
        bob = await first.client("bob", "hunter2")
        await alice.ok("/c dev")
        await bob.ok("/j dev")
        await alice.ok("/cd dev")
        await alice.ok("kept in history")
        await bob.ok("/logout")
        await alice.ok("/private bob while you were away")
        await alice.ok("/private bob and a second one")
        await first.stop()

        second = RunningServer(self, data_dir)
        await second.start()
        alice = await second.client("alice", "secret")
        rooms = await alice.ok("/rooms")
        self.assertEqual(rooms, ["dev (default)", "lobby"])
        history = await alice.ok("/history")
        self.assertEqual(len(history), 1)
        self.assertTrue(history[0].endswith("[dev] alice: kept in history"), history)
        self.assertEqual(await alice.ok("/who dev"), ["alice (online) (owner)", "bob"])

        bob = await second.client("bob", "hunter2")
        await bob.wait_for("and a second one")
        kept = [line for line in bob.pushed if line.startswith("[private]")]
        self.assertEqual(
            kept,
            [
                "[private] alice: while you were away",
                "[private] alice: and a second one",
            ],
        )
        await bob.ok("/logout")
        bob = await second.client("bob", "hunter2")
        await bob.ok("/ping")
        self.assertEqual([line for line in bob.pushed if "[private]" in line], [])


class ReservedRoomTests(unittest.TestCase):
    def setUp(self) -> None:
        self.running = RunningServer(self, Path(self.mktemp()))
        return defer.ensureDeferred(self.running.start())

    @async_test
    async def test_no_room_can_be_called_private(self):
        # "[private] x: hi" must only ever mean a private message.
        alice = await self.running.client("alice")
        reply, _ = await alice.send("/c #Private")
        self.assertTrue(reply.startswith("-ERR bad-name"), reply)
        self.assertEqual(await alice.ok("/rooms"), ["lobby (default)"])


class ShutdownTests(unittest.TestCase):
    @async_test
    async def test_shutdown_records_every_logout_before_storage_closes(self):
        data_dir = Path(self.mktemp())
        first = RunningServer(self, data_dir)
        await first.start()
        clients = [await first.client(name) for name in ("alice", "bob", "carol")]
        await first.server.stopService()
        for client in clients:
            self.assertIn("* the server is shutting down", client.pushed)

        second = RunningServer(self, data_dir)
        await second.start()
        admin = await second.client("admin", ADMIN_PASSWORD)
        for name in ("alice", "bob", "carol"):
            log = await admin.ok(f"/log {name}")
            self.assertEqual(log[-1].split()[1:3], ["logout", name], log)
