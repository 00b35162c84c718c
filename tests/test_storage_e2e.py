"""
End-to-end encryption's storage on each engine: devices and their keys,
ciphertexts waiting for a device, and the placeholder stored with a
message's first ciphertext.  Written once; SQLite and PostgreSQL subclass it.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial import unittest

from chatroom.errors import MailboxFull, NoDevice, NoSuchDevice, TooManyDevices
from chatroom.storage.database import Database
from chatroom.storage.opening import open_database
from chatroom.storage.schema import migrate
from chatroom.storage.store import ChatStore, DeviceKeys, StoredE2E
from tests.asynctest import async_test
from tests.cluster_helpers import Schema, postgres_unavailable
from tests.helpers import sqlite_file

PLACEHOLDER = "[end-to-end encrypted message]"


def keys(device: str, at: int, prekey: str = "cHJla2V5") -> DeviceKeys:
    return DeviceKeys(device, "aWRlbnRpdHk=", prekey, "c2lnbmF0dXJl", at)


def ciphertext(
    sender: str, sender_device: str, recipient: str, device: str, msgid: str
) -> StoredE2E:
    return StoredE2E(0, sender, sender_device, recipient, device, msgid, 7, "Y2lwaGVy")


class E2EStorageMixin:
    timeout = 20

    def open_database(self) -> Database:
        raise NotImplementedError

    @async_test
    async def setUp(self) -> None:
        self.db = self.open_database()
        self.addCleanup(lambda: self.db.close() if self.db.pool.running else None)
        self.store = ChatStore(self.db)
        await migrate(self.db)
        self.alice = await self.store.create_user("alice", "alice", "h", 1)
        self.bob = await self.store.create_user("bob", "bob", "h", 1)
        await self.store.publish_device(self.alice.id, keys("laptop", 1), 8)
        await self.store.publish_device(self.bob.id, keys("phone", 2), 8)

    def send(self, msgid: str = "msgid-0001", device: str = "phone", **limits):
        return self.store.store_e2e(
            ciphertext("alice", "laptop", "bob", device, msgid),
            self.alice.id,
            self.bob.id,
            limits.get("mailbox_size", 0),
            limits.get("per_sender", 0),
            PLACEHOLDER,
        )

    async def placeholders(self) -> list[tuple[str, str]]:
        kept = await self.store.undelivered_private(self.bob.id, 100)
        return [(m.text, m.kind) for m in kept]

    @async_test
    async def test_devices_are_listed_the_first_published_first(self):
        await self.store.publish_device(self.alice.id, keys("desk", 3), 8)
        devices = await self.store.devices(self.alice.id)
        self.assertEqual([d.device for d in devices], ["laptop", "desk"])
        self.assertEqual(devices[0], keys("laptop", 1))

    @async_test
    async def test_publishing_a_device_again_replaces_its_keys(self):
        await self.store.publish_device(self.alice.id, keys("laptop", 5, "bmV3"), 8)
        self.assertEqual(
            await self.store.devices(self.alice.id), [keys("laptop", 5, "bmV3")]
        )

    @async_test
    async def test_a_device_past_the_most_is_refused_and_nothing_changes(self):
        await self.store.publish_device(self.alice.id, keys("desk", 3), 2)
        await self.assertFailure(
            self.store.publish_device(self.alice.id, keys("tablet", 4), 2),
            TooManyDevices,
        )
        # Replacing one of the two is still allowed.
        await self.store.publish_device(self.alice.id, keys("desk", 5, "bmV3"), 2)
        devices = await self.store.devices(self.alice.id)
        self.assertEqual([d.device for d in devices], ["laptop", "desk"])

    @async_test
    async def test_a_ciphertext_waits_for_its_device_with_one_placeholder(self):
        stored = await self.send()
        self.assertIsNotNone(stored.placeholder_id)
        [waiting] = await self.store.waiting_e2e(self.bob.id, "phone", 10)
        self.assertEqual(
            (waiting.id, waiting.sender, waiting.msgid, waiting.ciphertext),
            (stored.id, "alice", "msgid-0001", "Y2lwaGVy"),
        )
        self.assertEqual(await self.placeholders(), [(PLACEHOLDER, "e2e")])

    @async_test
    async def test_a_second_ciphertext_of_a_message_makes_no_second_placeholder(self):
        await self.store.publish_device(self.bob.id, keys("desk", 3), 8)
        await self.send()
        second = await self.send(device="desk")
        self.assertIsNone(second.placeholder_id)
        self.assertEqual(len(await self.placeholders()), 1)

    @async_test
    async def test_a_ciphertext_to_ones_own_device_has_no_placeholder(self):
        await self.store.publish_device(self.alice.id, keys("desk", 3), 8)
        stored = await self.store.store_e2e(
            ciphertext("alice", "laptop", "alice", "desk", "msgid-0001"),
            self.alice.id,
            self.alice.id,
            0,
            0,
            PLACEHOLDER,
        )
        self.assertIsNone(stored.placeholder_id)
        self.assertEqual(await self.store.undelivered_private(self.alice.id, 10), [])

    @async_test
    async def test_delivery_to_a_device_ends_the_wait_and_the_placeholder(self):
        stored = await self.send()
        await self.store.mark_e2e_delivered([stored.id], 9)
        self.assertEqual(await self.store.waiting_e2e(self.bob.id, "phone", 10), [])
        self.assertEqual(await self.placeholders(), [])

    @async_test
    async def test_no_such_device_or_a_removed_sender_device_stores_nothing(self):
        await self.assertFailure(self.send(device="tablet"), NoSuchDevice)
        await self.store.remove_device(self.alice.id, "laptop")
        await self.assertFailure(self.send(), NoDevice)
        self.assertEqual(await self.store.waiting_e2e(self.bob.id, "phone", 10), [])
        self.assertEqual(await self.placeholders(), [])

    @async_test
    async def test_a_full_device_mailbox_refuses_and_stores_nothing(self):
        await self.send("msgid-0001", mailbox_size=2)
        await self.send("msgid-0002", mailbox_size=2)
        await self.assertFailure(self.send("msgid-0003", mailbox_size=2), MailboxFull)
        await self.assertFailure(self.send("msgid-0004", per_sender=2), MailboxFull)
        self.assertEqual(len(await self.store.waiting_e2e(self.bob.id, "phone", 10)), 2)
        self.assertEqual(len(await self.placeholders()), 2)

    @async_test
    async def test_placeholders_count_in_no_private_mailbox(self):
        for number in range(3):
            await self.send(f"msgid-000{number}")
        await self.store.store_private(
            self.alice.id, "alice", self.bob.id, "hi", 8, False, 2, 2
        )

    @async_test
    async def test_removing_a_device_drops_what_waits_for_it(self):
        await self.send()
        self.assertTrue(await self.store.remove_device(self.bob.id, "phone"))
        self.assertFalse(await self.store.remove_device(self.bob.id, "phone"))
        self.assertEqual(await self.store.devices(self.bob.id), [])
        # Published again, the device finds nothing of the old one's.
        await self.store.publish_device(self.bob.id, keys("phone", 4), 8)
        self.assertEqual(await self.store.waiting_e2e(self.bob.id, "phone", 10), [])


class SQLiteE2EStorageTests(E2EStorageMixin, unittest.TestCase):
    def open_database(self) -> Database:
        return open_database(sqlite_file(self), reactor)


class PostgresE2EStorageTests(E2EStorageMixin, unittest.TestCase):
    skip = postgres_unavailable()

    def open_database(self) -> Database:
        self.schema = Schema()
        self.addCleanup(self.schema.drop)
        database = open_database(self.schema.url, reactor)
        database.start()
        return database
