"""
End-to-end encrypted private messages, the server's side, through the line
protocol's front door (docs/e2e.md): devices publish keys, ciphertexts go to
the sessions that are their device at once or wait for its next publish,
and the recipient's other sessions get one placeholder per message.
"""

from __future__ import annotations

import base64

from nacl.public import Box, PrivateKey
from nacl.signing import SigningKey
from twisted.trial import unittest

from chatroom.protocol.irc.factory import IRCFactory
from chatroom.protocol.line import wire
from chatroom.service.e2e import PREKEY_CONTEXT
from tests.asynctest import async_test
from tests.clients import MemoryClient
from tests.cluster_helpers import Schema, postgres_unavailable
from tests.helpers import (
    RELAXED,
    ChatWorld,
    HeldWrites,
    capture_log,
    sqlite_file,
    start_server,
)
from tests.test_irc import command_of, params

PLACEHOLDER = (
    "[private] alice: [end-to-end encrypted message: read it in the bundled client]"
)
# Any 100 bytes: the server never looks inside.
CIPHERTEXT = base64.b64encode(bytes(range(100))).decode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def device_keys(device: str, identity: SigningKey | None = None) -> list[str]:
    """IDENTITY PREKEY SIGNATURE of a new device, as a client makes them."""
    identity = identity or SigningKey.generate()
    prekey = bytes(PrivateKey.generate().public_key)
    signature = identity.sign(PREKEY_CONTEXT + device.encode() + b"\0" + prekey)
    return [b64(bytes(identity.verify_key)), b64(prekey), b64(signature.signature)]


def publish(device: str, keys: list[str] | None = None) -> str:
    return f"/keys publish {device} {' '.join(keys or device_keys(device))}"


def e2e_line(msgid: str, device: str = "phone", at: int = 0) -> str:
    return f"~ e2e alice laptop bob {device} {msgid} {wire.timestamp(at)} {CIPHERTEXT}"


class E2ETestCase(unittest.TestCase):
    rules: dict = {}

    def setUp(self):
        self.world = ChatWorld(**self.rules)
        self.now = self.world.chat.now()

    def device(self, name: str, device: str, keys=None) -> MemoryClient:
        """A session of C{name} that is its device C{device}, all read."""
        client = self.world.user(name)
        self.assertEqual(
            client.command(publish(device, keys)), f"+OK device {device} published"
        )
        client.take()
        return client

    def keys_of(self, client: MemoryClient, user: str = "") -> list[str]:
        client.write(f"/keys {user}".rstrip())
        return client.take()


class PublishTests(E2ETestCase):
    def test_a_published_device_is_listed_with_its_keys(self):
        alice = self.world.user("alice")
        keys = device_keys("laptop")
        self.assertEqual(
            alice.command(publish("laptop", keys)), "+OK device laptop published"
        )
        self.assertEqual(
            self.keys_of(alice), [f"= laptop {' '.join(keys)}", "+OK 1 device"]
        )
        bob = self.world.user("bob")
        self.assertEqual(
            self.keys_of(bob, "ALICE"), [f"= laptop {' '.join(keys)}", "+OK 1 device"]
        )
        self.assertEqual(self.keys_of(bob), ["+OK 0 devices"])

    def test_devices_are_listed_the_first_published_first(self):
        alice = self.world.user("alice")
        for device in ("laptop", "desk", "phone"):
            self.world.clock.advance(1)
            alice.command(publish(device))
        lines = self.keys_of(alice)
        self.assertEqual(
            [line.split()[1] for line in lines[:-1]], ["laptop", "desk", "phone"]
        )
        self.assertEqual(lines[-1], "+OK 3 devices")

    def test_publishing_again_replaces_the_keys(self):
        alice = self.world.user("alice")
        alice.command(publish("laptop"))
        keys = device_keys("laptop")
        alice.command(publish("laptop", keys))
        self.assertEqual(
            self.keys_of(alice), [f"= laptop {' '.join(keys)}", "+OK 1 device"]
        )

    def assertRefused(self, client, line: str, code: str):
        reply = client.command(line)
        self.assertEqual(reply.split()[:2], ["-ERR", code], reply)
        self.assertEqual(self.keys_of(client), ["+OK 0 devices"])

    def test_bad_keys_are_refused_and_nothing_is_stored(self):
        alice = self.world.user("alice")
        identity, prekey, signature = device_keys("laptop")
        for keys in (
            ["not*base64", prekey, signature],
            [identity, prekey[:-1], signature],
            [identity, "QUJD", signature],
            [identity, prekey, b64(b"\0" * 63)],
            [prekey, prekey, signature],
            [identity, prekey, b64(b"\0" * 64)],
        ):
            self.assertRefused(alice, publish("laptop", keys), "bad-key")

    def test_a_signature_over_another_devices_name_is_refused(self):
        alice = self.world.user("alice")
        self.assertRefused(alice, publish("laptop", device_keys("desk")), "bad-key")

    def test_a_bad_device_name_is_bad_arguments(self):
        alice = self.world.user("alice")
        for device in ("a" * 33, "lap/top", "läptop"):
            self.assertRefused(alice, publish(device), "bad-arguments")
        self.assertRefused(alice, "/keys publish laptop onlyone", "bad-arguments")

    def test_a_ninth_device_is_refused_and_nothing_changes(self):
        alice = self.world.user("alice")
        for n in range(8):
            self.assertTrue(alice.command(publish(f"d{n}")).startswith("+OK"))
        reply = alice.command(publish("d8"))
        self.assertTrue(reply.startswith("-ERR too-many-devices"), reply)
        self.assertEqual(self.keys_of(alice)[-1], "+OK 8 devices")
        # One of the eight may still rotate its keys.
        self.assertTrue(alice.command(publish("d3")).startswith("+OK"))

    def test_keys_of_no_such_user_or_a_bad_name(self):
        alice = self.world.user("alice")
        self.assertTrue(alice.command("/keys nobody").startswith("-ERR no-such-user"))
        self.assertTrue(alice.command("/keys bad!name").startswith("-ERR bad-name"))
        self.assertTrue(alice.command("/keys a b").startswith("-ERR bad-arguments"))

    def test_removing_a_device(self):
        alice = self.device("alice", "laptop")
        self.assertEqual(
            alice.command("/keys remove laptop"), "+OK device laptop removed"
        )
        self.assertEqual(self.keys_of(alice), ["+OK 0 devices"])
        reply = alice.command("/keys remove laptop")
        self.assertTrue(reply.startswith("-ERR no-such-device"), reply)

    def test_help_lists_the_commands(self):
        alice = self.world.user("alice")
        alice.write("/help")
        shown = "\n".join(alice.take())
        self.assertIn("/keys [USER]", shown)
        self.assertIn("/e2e USER DEVICE MSGID CIPHERTEXT", shown)


class SendTests(E2ETestCase):
    def test_a_session_with_no_device_may_not_send(self):
        self.device("bob", "phone")
        alice = self.world.user("alice")
        reply = alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        self.assertTrue(reply.startswith("-ERR no-device publish"), reply)

    def test_bad_sends_are_refused_and_nothing_is_delivered(self):
        bob = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        for line, code in (
            ("/e2e bob phone msgid-0001 not*base64", "bad-ciphertext"),
            (f"/e2e bob phone msgid-0001 {CIPHERTEXT[:-1]}", "bad-ciphertext"),
            (f"/e2e bob phone msgid-0001 {b64(bytes(71))}", "bad-ciphertext"),
            (f"/e2e bob phone msgid-0001 {b64(bytes(2801))}", "bad-ciphertext"),
            (f"/e2e bob phone short {CIPHERTEXT}", "bad-arguments"),
            (f"/e2e bob phone msgid.0001 {CIPHERTEXT}", "bad-arguments"),
            (f"/e2e bob phone msgid-0001 {CIPHERTEXT} more", "bad-arguments"),
            ("/e2e bob phone msgid-0001", "bad-arguments"),
            (f"/e2e nobody phone msgid-0001 {CIPHERTEXT}", "no-such-user"),
            (f"/e2e bob tablet msgid-0001 {CIPHERTEXT}", "no-such-device"),
        ):
            reply = alice.command(line)
            self.assertEqual(reply.split()[:2], ["-ERR", code], (line, reply))
        self.assertEqual(bob.take(), [])
        again = self.world.user("bob")
        self.assertEqual(again.command(publish("phone")), "+OK device phone published")
        self.assertEqual(again.take(), [])

    def test_the_largest_and_smallest_ciphertexts_are_taken(self):
        bob = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        for size in (72, 2800):
            self.assertEqual(
                alice.command(f"/e2e bob phone msgid-{size:04} {b64(bytes(size))}"),
                "+OK",
            )
        self.assertEqual(len(bob.take()), 2)

    def test_an_online_device_gets_it_at_once(self):
        bob = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        self.assertEqual(
            alice.command(f"/e2e BOB phone msgid-0001 {CIPHERTEXT}"), "+OK"
        )
        self.assertEqual(
            bob.take(),
            [
                f"~ e2e alice laptop BOB phone msgid-0001"
                f" {wire.timestamp(self.now)} {CIPHERTEXT}"
            ],
        )

    def test_only_the_sessions_that_are_the_device_get_the_ciphertext(self):
        phone = self.device("bob", "phone")
        other_phone = self.world.user("bob")
        other_phone.command(publish("phone"))
        desk = self.device("bob", "desk")
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        self.assertEqual(phone.take(), [e2e_line("msgid-0001", at=self.now)])
        self.assertEqual(other_phone.take(), [e2e_line("msgid-0001", at=self.now)])
        self.assertEqual(desk.take(), [])

    def test_an_offline_device_gets_it_after_the_publish_line_oldest_first(self):
        self.device("bob", "phone").disconnect()
        alice = self.device("alice", "laptop")
        for n in (1, 2):
            self.world.clock.advance(1)
            self.assertEqual(
                alice.command(f"/e2e bob phone msgid-000{n} {CIPHERTEXT}"), "+OK"
            )
        bob = self.world.user("bob")
        bob.take()
        bob.write(publish("phone"))
        self.assertEqual(
            bob.take(),
            [
                "+OK device phone published",
                e2e_line("msgid-0001", at=self.now + 1000),
                e2e_line("msgid-0002", at=self.now + 2000),
            ],
        )

    def test_a_delivered_ciphertext_is_not_delivered_again(self):
        bob = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        bob.take()
        bob.disconnect()
        again = self.world.user("bob")
        self.assertEqual(again.command(publish("phone")), "+OK device phone published")
        self.assertEqual(again.take(), [])

    def test_one_still_queued_as_the_device_goes_comes_again(self):
        bob = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        # Bob stops reading: what is queued for him passes the soft limit.
        for _ in range(20):
            alice.command("x" * 4000)
        self.assertEqual(bob.transport.producerState, "paused")
        self.assertEqual(
            alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}"), "+OK"
        )
        bob.close()
        again = self.world.user("bob")
        again.write(publish("phone"))
        self.assertEqual(
            again.take(),
            ["+OK device phone published", e2e_line("msgid-0001", at=self.now)],
        )

    def test_a_removed_device_drops_what_waits_and_its_session_is_none(self):
        bob = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        bob.disconnect()
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        bob = self.device("bob", "phone")
        self.assertEqual(bob.command("/keys remove phone"), "+OK device phone removed")
        self.assertTrue(
            bob.command(f"/e2e alice laptop msgid-0002 {CIPHERTEXT}").startswith(
                "-ERR no-device"
            )
        )
        self.assertTrue(
            alice.command(f"/e2e bob phone msgid-0003 {CIPHERTEXT}").startswith(
                "-ERR no-such-device"
            )
        )

    def test_a_sender_whose_device_was_removed_elsewhere_may_not_send(self):
        self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        other = self.world.user("alice")
        other.command("/keys remove laptop")
        reply = alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        self.assertTrue(reply.startswith("-ERR no-device"), reply)

    def test_to_ones_own_other_device(self):
        laptop = self.device("alice", "laptop")
        desk = self.device("alice", "desk")
        plain = self.world.user("alice")
        self.assertEqual(
            laptop.command(f"/e2e alice desk msgid-0001 {CIPHERTEXT}"), "+OK"
        )
        self.assertEqual(
            desk.take(),
            [
                f"~ e2e alice laptop alice desk msgid-0001"
                f" {wire.timestamp(self.now)} {CIPHERTEXT}"
            ],
        )
        # No placeholder for a message to oneself.
        self.assertEqual(plain.take(), [])

    def test_timestamps_on_leave_the_e2e_line_as_it_is(self):
        bob = self.device("bob", "phone")
        bob.command("/set timestamps on")
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        self.assertEqual(bob.take(), [e2e_line("msgid-0001", at=self.now)])


class MailboxTests(E2ETestCase):
    rules = {"mailbox_size": 3, "mailbox_per_sender": 2}

    def test_a_full_device_mailbox_refuses_and_stores_nothing(self):
        self.device("bob", "phone").disconnect()
        alice = self.device("alice", "laptop")
        carol = self.device("carol", "desk")
        for n in (1, 2):
            self.assertEqual(
                alice.command(f"/e2e bob phone msgid-000{n} {CIPHERTEXT}"), "+OK"
            )
        reply = alice.command(f"/e2e bob phone msgid-0003 {CIPHERTEXT}")
        self.assertTrue(reply.startswith("-ERR mailbox-full you have 2"), reply)
        carol.command(f"/e2e bob phone msgid-0004 {CIPHERTEXT}")
        reply = carol.command(f"/e2e bob phone msgid-0005 {CIPHERTEXT}")
        self.assertTrue(reply.startswith("-ERR mailbox-full 3 messages"), reply)
        bob = self.world.user("bob")
        bob.take()
        bob.write(publish("phone"))
        self.assertEqual(len(bob.take()), 4)

    def test_placeholders_leave_room_for_plain_private_messages(self):
        self.world.user("bob").disconnect()
        self.device("bob", "phone").disconnect()
        alice = self.device("alice", "laptop")
        carol = self.device("carol", "desk")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        alice.command(f"/e2e bob phone msgid-0002 {CIPHERTEXT}")
        carol.command(f"/e2e bob phone msgid-0003 {CIPHERTEXT}")
        self.assertEqual(alice.command("/msg bob plain one"), "+OK")
        self.assertEqual(alice.command("/msg bob plain two"), "+OK")


class CommitTests(E2ETestCase):
    def test_ok_and_delivery_only_once_committed(self):
        bob = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        writes = HeldWrites(self.world)
        alice.write(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        self.assertEqual((alice.take(), bob.take()), ([], []))
        writes.commit_all()
        self.assertEqual(alice.take(), ["+OK"])
        self.assertEqual(bob.take(), [e2e_line("msgid-0001", at=self.now)])

    def stored(self, table: str) -> list:
        return list(self.world.pool.connection.execute(f"SELECT * FROM {table}"))

    def test_a_failed_write_is_an_error_and_nothing_is_delivered(self):
        bob = self.device("bob", "phone")
        plain = self.world.user("bob")
        alice = self.device("alice", "laptop")
        writes = HeldWrites(self.world)
        alice.write(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        writes.fail(RuntimeError("disk full"))
        self.assertEqual(alice.take()[-1].split()[:2], ["-ERR", "server-error"])
        self.assertTrue(self.flushLoggedErrors(RuntimeError))
        self.assertEqual((bob.take(), plain.take()), ([], []))
        self.assertEqual(self.stored("e2e_messages"), [])
        self.assertEqual(self.stored("private_messages"), [])

    def test_a_failed_publish_changes_nothing(self):
        alice = self.world.user("alice")
        writes = HeldWrites(self.world)
        alice.write(publish("laptop"))
        writes.fail(RuntimeError("disk full"))
        self.assertEqual(alice.take()[-1].split()[:2], ["-ERR", "server-error"])
        self.assertTrue(self.flushLoggedErrors(RuntimeError))
        self.assertEqual(self.stored("devices"), [])
        # Nor is the session a device.
        reply = alice.command(f"/e2e alice laptop msgid-0001 {CIPHERTEXT}")
        self.assertTrue(reply.startswith("-ERR no-device"), reply)


class RestartTests(unittest.TestCase):
    def test_waiting_ciphertexts_and_devices_outlive_a_restart(self):
        location = sqlite_file(self)
        world = ChatWorld(location=location)
        bob = world.user("bob")
        keys = device_keys("phone")
        bob.command(publish("phone", keys))
        bob.disconnect()
        alice = world.user("alice")
        alice.command(publish("laptop"))
        self.assertEqual(
            alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}"), "+OK"
        )
        world.pool.close()

        world = ChatWorld(location=location)
        bob = world.user("bob")
        bob.write("/keys")
        self.assertEqual(bob.take(), [f"= phone {' '.join(keys)}", "+OK 1 device"])
        bob.write(publish("phone"))
        lines = bob.take()
        self.assertEqual(lines[0], "+OK device phone published")
        self.assertEqual(
            [line.split()[:6] for line in lines[1:]],
            [["~", "e2e", "alice", "laptop", "bob", "phone"]],
        )


class PlaceholderTests(E2ETestCase):
    def test_a_plain_session_gets_one_placeholder_per_message(self):
        self.device("bob", "phone")
        self.device("bob", "desk")
        plain = self.world.user("bob")
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        alice.command(f"/e2e bob desk msgid-0001 {CIPHERTEXT}")
        alice.command(f"/e2e bob phone msgid-0002 {CIPHERTEXT}")
        self.assertEqual(plain.take(), [PLACEHOLDER, PLACEHOLDER])

    def test_a_device_session_gets_no_placeholder(self):
        phone = self.device("bob", "phone")
        desk = self.device("bob", "desk")
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        self.assertEqual(phone.take(), [e2e_line("msgid-0001", at=self.now)])
        self.assertEqual(desk.take(), [])

    def test_an_offline_plain_session_gets_it_once_at_its_next_login(self):
        self.device("bob", "phone").disconnect()
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        bob = self.world.connect()
        bob.write("/login bob pw")
        self.assertEqual(bob.take(), ["+OK welcome, bob", PLACEHOLDER])
        bob.disconnect()
        again = self.world.connect()
        again.write("/login bob pw")
        self.assertEqual(again.take(), ["+OK welcome, bob"])

    def test_no_placeholder_once_a_device_has_the_message(self):
        phone = self.device("bob", "phone")
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        self.assertEqual(phone.take(), [e2e_line("msgid-0001", at=self.now)])
        # Bob read it on his device: a plain login later is not told of it.
        later = self.world.connect()
        later.write("/login bob pw")
        self.assertEqual(later.take(), ["+OK welcome, bob"])

    def test_an_irc_session_gets_the_placeholder_as_a_notice(self):
        self.device("bob", "phone")
        irc = MemoryClient(
            IRCFactory(self.world.factory.admission, RELAXED, guests=False), "10.0.0.2"
        )
        for line in ("PASS pw", "NICK bob", "USER bob 0 * :bob", "CAP END"):
            irc.write(line)
        irc.take()
        alice = self.device("alice", "laptop")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        alice.command(f"/e2e bob phone msgid-0001 {CIPHERTEXT}")
        [line] = irc.take()
        self.assertEqual(command_of(line), "NOTICE")
        self.assertTrue(line.startswith(":alice!"), line)
        self.assertEqual(
            params(line),
            ["bob", "[end-to-end encrypted message: read it in the bundled client]"],
        )


class NothingReadableTests(E2ETestCase):
    def test_the_plaintext_is_nowhere_on_the_server(self):
        events = capture_log(self)
        bob_prekey = PrivateKey.generate()
        bob = self.world.user("bob")
        identity = SigningKey.generate()
        public = bytes(bob_prekey.public_key)
        signature = identity.sign(PREKEY_CONTEXT + b"phone\0" + public).signature
        keys = [b64(bytes(identity.verify_key)), b64(public), b64(signature)]
        bob.command(publish("phone", keys))
        bob.take()
        plain = self.world.user("bob")
        alice = self.device("alice", "laptop")
        secret = b"the eagle lands at dawn"
        ephemeral = PrivateKey.generate()
        box = Box(ephemeral, bob_prekey.public_key).encrypt(secret + bytes(60))
        ciphertext = b64(bytes(ephemeral.public_key) + bytes(box))
        self.assertEqual(
            alice.command(f"/e2e bob phone msgid-0001 {ciphertext}"), "+OK"
        )
        # Bob's device reads it; the server only passed it on.
        [line] = bob.take()
        raw = base64.b64decode(line.split()[-1])
        opened = Box(bob_prekey, PrivateKey(bytes(ephemeral)).public_key).decrypt(
            raw[32:]
        )
        self.assertTrue(opened.startswith(secret))
        self.assertEqual(plain.take(), [PLACEHOLDER])
        connection = self.world.pool.connection
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        stored = repr(
            [list(connection.execute(f"SELECT * FROM {table}")) for table in tables]
        )
        self.assertIn(ciphertext, stored)
        self.assertNotIn(secret.decode(), stored)
        self.assertNotIn(secret.decode(), repr(events))


class PostgresE2ETests(unittest.TestCase):
    """The same path on PostgreSQL, through a whole server: stored, then read."""

    skip = postgres_unavailable()
    timeout = 20

    @async_test
    async def test_a_ciphertext_waits_on_postgresql_for_its_devices_publish(self):
        schema = Schema()
        self.addCleanup(schema.drop)
        server = await start_server(self, schema.url)
        bob = await server.register("bob")
        self.assertEqual(
            await bob.send(publish("phone")), ["+OK device phone published"]
        )
        bob.disconnect()
        plain = await server.login("bob", "pw-bob")
        await plain.send("/ping")
        plain.take()
        alice = await server.register("alice")
        await alice.send(publish("laptop"))
        self.assertEqual(
            await alice.send(f"/e2e bob phone msgid-0001 {CIPHERTEXT}"), ["+OK"]
        )
        self.assertEqual(plain.take(), [PLACEHOLDER])
        again = await server.login("bob", "pw-bob")
        await again.send("/ping")
        again.take()
        reply = await again.send(publish("phone"))
        # The reply to the next line comes after what was waiting.
        lines = reply + await again.send("/ping")
        self.assertEqual(
            [line.split()[:7] if line.startswith("~ ") else line for line in lines],
            [
                "+OK device phone published",
                ["~", "e2e", "alice", "laptop", "bob", "phone", "msgid-0001"],
                "+OK pong",
            ],
        )
