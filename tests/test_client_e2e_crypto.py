"""
The bundled client's end-to-end building blocks, each on its own: device
keys and their rotation, the sealed envelope, trust on first use and safety
numbers, the replay check, and the device files.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from nacl.public import Box, PublicKey
from twisted.trial.unittest import TestCase

from chatroom.client.e2e import files
from chatroom.client.e2e.contacts import (
    Contacts,
    DeviceKey,
    parse_listing,
    safety_number,
)
from chatroom.client.e2e.envelope import (
    MAX_TEXT_BYTES,
    Address,
    Envelope,
    Refused,
    TooLong,
    decrypt,
    seal,
    verify,
)
from chatroom.client.e2e.keys import (
    KEEP_REPLACED,
    ROTATE_AFTER,
    DeviceKeys,
    b64,
    prekey_signed,
    unb64,
)
from chatroom.client.e2e.replay import MAX_SEEN, SeenMessages

NOW = 1_800_000_000.0


def listing_line(keys: DeviceKeys) -> str:
    """The C{/keys} data line a server lists C{keys}' device with."""
    return keys.publish_command().removeprefix("/keys publish ")


def device_key(keys: DeviceKeys) -> DeviceKey:
    return DeviceKey(keys.device, keys.identity_public, keys.current.public)


def sealed(
    sender: DeviceKeys,
    recipient: DeviceKeys,
    text: str = "meet at noon",
    sender_name: str = "alice",
    recipient_name: str = "bob",
    msgid: str = "msgid-0001",
) -> tuple[bytes, Address]:
    address = Address(
        sender_name, sender.device, recipient_name, recipient.device, msgid
    )
    envelope = Envelope(address, recipient_name, 1_800_000_000_000, text)
    return seal(envelope, sender.identity, recipient.current.public), address


class DeviceKeyTests(TestCase):
    def test_published_prekey_is_signed_by_the_identity_for_this_device(self):
        keys = DeviceKeys.create("laptop", NOW)
        word, sub, device, identity, prekey, signature = keys.publish_command().split(
            " "
        )
        self.assertEqual((word, sub, device), ("/keys", "publish", "laptop"))
        self.assertTrue(
            prekey_signed(unb64(identity), "laptop", unb64(prekey), unb64(signature))
        )
        # Bound to the device name: the same signature does not vouch for
        # the key as another device's.
        self.assertFalse(
            prekey_signed(unb64(identity), "phone", unb64(prekey), unb64(signature))
        )

    def test_the_wire_is_standard_base64_with_padding(self):
        keys = DeviceKeys.create("laptop", NOW)
        for field in keys.publish_command().split(" ")[3:]:
            self.assertEqual(b64(unb64(field)), field)
            self.assertTrue(field.endswith("="))
        self.assertRaises(ValueError, unb64, "not base64!")
        self.assertRaises(ValueError, unb64, b64(b"x" * 31), 32)

    def test_a_new_prekey_every_week_and_the_old_one_kept_two_weeks(self):
        keys = DeviceKeys.create("laptop", NOW)
        first = keys.current.public
        self.assertFalse(keys.rotate(NOW + ROTATE_AFTER - 1))
        self.assertEqual(keys.next_change(NOW), ROTATE_AFTER)
        self.assertTrue(keys.rotate(NOW + ROTATE_AFTER))
        self.assertNotEqual(keys.current.public, first)
        self.assertEqual(len(keys.secrets()), 2)
        replaced = NOW + ROTATE_AFTER
        self.assertEqual(keys.next_change(replaced), ROTATE_AFTER)
        # Another week: a third key, the first still held.
        keys.rotate(replaced + ROTATE_AFTER)
        self.assertEqual(len(keys.secrets()), 3)
        # Two weeks after it was replaced, the first key is gone.
        self.assertTrue(keys.rotate(replaced + KEEP_REPLACED))
        publics = [bytes(secret.public_key) for secret in keys.secrets()]
        self.assertNotIn(first, publics)
        # The second (replaced a week ago), the third and a fourth, new.
        self.assertEqual(len(publics), 3)

    def test_survives_its_file_and_refuses_a_foreign_one(self):
        keys = DeviceKeys.create("laptop", NOW)
        keys.rotate(NOW + ROTATE_AFTER)
        again = DeviceKeys.from_json(json.loads(json.dumps(keys.to_json())))
        self.assertEqual(again.publish_command(), keys.publish_command())
        self.assertEqual(
            [bytes(s) for s in again.secrets()], [bytes(s) for s in keys.secrets()]
        )
        self.assertRaises(ValueError, DeviceKeys.from_json, {"v": 2, "prekeys": []})
        self.assertRaises(ValueError, DeviceKeys.from_json, {"v": 1})


class EnvelopeTests(TestCase):
    def setUp(self):
        self.alice = DeviceKeys.create("alice-laptop", NOW)
        self.bob = DeviceKeys.create("bob-phone", NOW)

    def open(self, ciphertext: bytes, delivered: Address, keys=None, identity=None):
        signed = decrypt(ciphertext, (keys or self.bob).secrets())
        return verify(signed, identity or self.alice.identity_public, delivered)

    def test_the_recipient_reads_what_the_sender_sealed(self):
        ciphertext, address = sealed(self.alice, self.bob, "meet at noon")
        self.assertNotIn(b"meet at noon", ciphertext)
        envelope = self.open(ciphertext, address)
        self.assertEqual(envelope.text, "meet at noon")
        self.assertEqual(envelope.peer, "bob")
        self.assertEqual(envelope.address, address)

    def test_each_ciphertext_comes_from_a_fresh_ephemeral_key(self):
        one, _ = sealed(self.alice, self.bob)
        two, _ = sealed(self.alice, self.bob)
        self.assertNotEqual(one[:32], two[:32])

    def test_names_compare_as_the_server_compares_them(self):
        ciphertext, _ = sealed(self.alice, self.bob, sender_name="Alice")
        delivered = Address("alice", "alice-laptop", "BOB", "bob-phone", "msgid-0001")
        self.assertEqual(self.open(ciphertext, delivered).text, "meet at noon")

    def test_every_altered_byte_is_refused(self):
        ciphertext, address = sealed(self.alice, self.bob, "hi")
        for index in range(len(ciphertext)):
            altered = bytearray(ciphertext)
            altered[index] ^= 0x01
            with self.assertRaises(Refused, msg=f"byte {index}"):
                self.open(bytes(altered), address)

    def test_a_truncated_or_empty_ciphertext_is_refused(self):
        ciphertext, address = sealed(self.alice, self.bob)
        for cut in (ciphertext[:-1], ciphertext[:100], b""):
            self.assertRaises(Refused, self.open, cut, address)

    def test_another_device_cannot_open_it(self):
        other = DeviceKeys.create("bob-laptop", NOW)
        ciphertext, address = sealed(self.alice, self.bob)
        error = self.assertRaises(Refused, self.open, ciphertext, address, other)
        self.assertIn("does not decrypt", str(error))

    def test_delivered_as_another_message_or_to_another_is_refused(self):
        ciphertext, address = sealed(self.alice, self.bob)
        for changed in (
            Address("alice", "alice-laptop", "carol", "bob-phone", "msgid-0001"),
            Address("alice", "alice-laptop", "bob", "bob-tablet", "msgid-0001"),
            Address("alice", "alice-laptop", "bob", "bob-phone", "msgid-0002"),
            Address("alice", "alice-phone", "bob", "bob-phone", "msgid-0001"),
            Address("mallory", "alice-laptop", "bob", "bob-phone", "msgid-0001"),
        ):
            error = self.assertRaises(Refused, self.open, ciphertext, changed)
            self.assertIn("re-addressed", str(error))

    def test_a_message_resealed_for_someone_else_is_refused_by_them(self):
        # bob opens alice's message and seals the signed body for carol.
        carol = DeviceKeys.create("carol-pc", NOW)
        ciphertext, _ = sealed(self.alice, self.bob, "for bob only")
        signed = decrypt(ciphertext, self.bob.secrets())
        ephemeral = self.bob.prekeys[0].secret
        forwarded = bytes(ephemeral.public_key) + bytes(
            Box(ephemeral, PublicKey(carol.current.public)).encrypt(signed)
        )
        to_carol = Address("alice", "alice-laptop", "carol", "carol-pc", "msgid-0001")
        error = self.assertRaises(Refused, self.open, forwarded, to_carol, carol)
        self.assertIn("re-addressed", str(error))

    def test_a_signature_by_another_identity_is_refused(self):
        mallory = DeviceKeys.create("alice-laptop", NOW)
        ciphertext, address = sealed(mallory, self.bob)
        error = self.assertRaises(
            Refused, self.open, ciphertext, address, None, self.alice.identity_public
        )
        self.assertIn("signature", str(error))

    def test_opens_with_a_replaced_prekey_still_held(self):
        ciphertext, address = sealed(self.alice, self.bob)
        self.bob.rotate(NOW + ROTATE_AFTER)
        self.assertEqual(self.open(ciphertext, address).text, "meet at noon")
        self.bob.rotate(NOW + ROTATE_AFTER + KEEP_REPLACED)
        self.assertRaises(Refused, self.open, ciphertext, address)

    def test_text_over_the_limit_is_not_sealed(self):
        self.assertRaises(TooLong, sealed, self.alice, self.bob, "x" * 2001)
        ciphertext, address = sealed(self.alice, self.bob, "é" * 1000)
        self.assertLessEqual(len(ciphertext), 2800)
        self.assertEqual(self.open(ciphertext, address).text, "é" * 1000)

    def test_text_that_would_seal_beyond_the_servers_limit_is_not_sealed(self):
        # Under 2000 bytes, but JSON escapes each quote: over 2800 sealed.
        self.assertRaises(TooLong, sealed, self.alice, self.bob, '"' * MAX_TEXT_BYTES)

    def test_the_smallest_envelope_is_within_the_servers_limits(self):
        ciphertext, _ = sealed(self.alice, self.bob, "x")
        self.assertGreaterEqual(len(ciphertext), 72)


class ContactTests(TestCase):
    def setUp(self):
        self.phone = DeviceKeys.create("phone", NOW)
        self.laptop = DeviceKeys.create("laptop", NOW)

    def test_a_listing_is_checked_whatever_the_server_says(self):
        good = listing_line(self.phone)
        device, identity, prekey, signature = listing_line(self.laptop).split(" ")
        # The laptop's prekey, vouched for by the phone's signature.
        forged = " ".join([device, identity, good.split(" ")[2], signature])
        listed, bad = parse_listing([good, forged, "junk", "bad/name a b c"])
        self.assertEqual([key.device for key in listed], ["phone"])
        self.assertEqual(bad, ["laptop", "junk", "bad/name"])

    def test_first_use_pins_and_a_new_device_is_added(self):
        contacts = Contacts()
        review = contacts.review("Bob", [device_key(self.phone)])
        self.assertEqual(
            (review.first, review.added, review.changed), (["phone"], [], [])
        )
        review = contacts.review(
            "bob", [device_key(self.phone), device_key(self.laptop)]
        )
        self.assertEqual((review.first, review.added), ([], ["laptop"]))
        self.assertEqual(len(review.usable), 2)
        self.assertEqual(contacts.identity("BOB", "phone"), self.phone.identity_public)
        self.assertEqual(contacts.blocked("bob"), [])

    def test_a_changed_identity_blocks_until_trusted(self):
        contacts = Contacts()
        contacts.review("bob", [device_key(self.phone)])
        reinstalled = DeviceKeys.create("phone", NOW)
        review = contacts.review("bob", [device_key(reinstalled)])
        self.assertEqual((review.changed, review.usable), (["phone"], []))
        self.assertEqual(contacts.blocked("bob"), ["phone"])
        # Noticed once: the next listing does not warn again, but still blocks.
        self.assertEqual(contacts.review("bob", [device_key(reinstalled)]).changed, [])
        self.assertEqual(contacts.blocked("bob"), ["phone"])
        self.assertEqual(contacts.identity("bob", "phone"), self.phone.identity_public)
        self.assertEqual(contacts.trust("bob"), ["phone"])
        self.assertEqual(contacts.blocked("bob"), [])
        self.assertEqual(contacts.identity("bob", "phone"), reinstalled.identity_public)
        self.assertEqual(
            len(contacts.review("bob", [device_key(reinstalled)]).usable), 1
        )

    def test_the_old_identity_listed_again_unblocks(self):
        contacts = Contacts()
        contacts.review("bob", [device_key(self.phone)])
        contacts.review("bob", [device_key(DeviceKeys.create("phone", NOW))])
        contacts.review("bob", [device_key(self.phone)])
        self.assertEqual(contacts.blocked("bob"), [])

    def test_pins_survive_a_restart(self):
        contacts = Contacts()
        contacts.review("bob", [device_key(self.phone)])
        again = Contacts(json.loads(json.dumps(contacts.save_data())))
        self.assertEqual(again.identity("bob", "phone"), self.phone.identity_public)

    def test_both_sides_see_the_same_safety_number(self):
        alice = [self.laptop.identity_public]
        bob = [self.phone.identity_public, DeviceKeys.create("x", NOW).identity_public]
        number = safety_number("alice", alice, "Bob", bob)
        self.assertEqual(
            number, safety_number("bob", list(reversed(bob)), "alice", alice)
        )
        groups = number.split(" ")
        self.assertEqual([len(group) for group in groups], [5] * 12)
        self.assertTrue("".join(groups).isdigit())
        # Another key on either side, another number.
        other = [DeviceKeys.create("y", NOW).identity_public]
        self.assertNotEqual(number, safety_number("alice", other, "bob", bob))
        self.assertNotEqual(number, safety_number("alice", alice, "bob", bob[:1]))


class ReplayTests(TestCase):
    def test_a_message_is_admitted_once(self):
        seen = SeenMessages()
        self.assertTrue(seen.admit("alice", "laptop", "m1", 10))
        self.assertFalse(seen.admit("Alice", "laptop", "m1", 10))
        self.assertTrue(seen.admit("alice", "phone", "m1", 10))
        self.assertTrue(seen.admit("alice", "laptop", "m2", 10))

    def test_remembered_across_a_restart(self):
        seen = SeenMessages()
        seen.admit("alice", "laptop", "m1", 10)
        again = SeenMessages(json.loads(json.dumps(seen.save_data())))
        self.assertFalse(again.admit("alice", "laptop", "m1", 10))

    def test_bounded_and_what_was_forgotten_stays_refused(self):
        seen = SeenMessages()
        for n in range(1, MAX_SEEN + 6):
            self.assertTrue(seen.admit("alice", "laptop", f"m{n}", n))
        self.assertEqual(len(seen.save_data()["seen"]), MAX_SEEN)
        self.assertEqual(seen.floor, 5)
        self.assertFalse(seen.admit("alice", "laptop", "m1", 1))
        self.assertFalse(seen.admit("alice", "laptop", "never-seen", 5))
        self.assertTrue(seen.admit("alice", "laptop", "late-but-newer", 6))


class FileTests(TestCase):
    def test_written_atomically_for_the_owner_only(self):
        path = Path(self.mktemp()) / "a" / "device-keys.json"
        files.write_json(path, {"one": 1})
        files.write_json(path, {"two": 2})
        self.assertEqual(files.read_json(path), {"two": 2})
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(path.parent.stat().st_mode) & 0o077, 0)
        self.assertEqual(os.listdir(path.parent), ["device-keys.json"])
        self.assertIsNone(files.read_json(path.parent / "missing.json"))

    def test_the_file_then_its_directory_are_synced(self):
        path = Path(self.mktemp()) / "device-keys.json"
        synced = []
        fsync = os.fsync

        def record(descriptor):
            synced.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
            fsync(descriptor)

        self.patch(os, "fsync", record)
        files.write_json(path, {"one": 1})
        # The data before the rename, the directory (the rename) after it.
        self.assertEqual(synced, [False, True])

    def test_a_file_system_without_locks_does_not_stop_the_device(self):
        def no_locks(descriptor, operation):
            raise OSError(37, "No locks available")

        self.patch(files.fcntl, "flock", no_locks)
        descriptor = files.lock_directory(Path(self.mktemp()))
        os.close(descriptor)

    def test_one_directory_per_server_and_account(self):
        config = Path("/c")
        self.assertEqual(
            files.account_directory(config, "Chat.Example", 5001, "Alice"),
            Path("/c/e2e/chat.example_5001/alice"),
        )

    def test_default_device_name_is_valid(self):
        for host in ("my laptop.local", "", "-" * 80, "ünïcode"):
            name = files.default_device_name(host, "ab12")
            self.assertRegex(name, files.DEVICE_NAME)
            self.assertTrue(name.endswith("-ab12"))
        self.assertEqual(files.default_device_name("box", "ab12"), "box-ab12")

    def test_jobs_run_in_order_and_a_failure_does_not_stop_the_next(self):
        from twisted.internet.defer import Deferred

        started: list[Deferred] = []
        ran: list[str] = []

        def runner(function, *args):
            waiting = Deferred()
            started.append(waiting)
            return waiting.addCallback(lambda _: function(*args))

        worker = files.FileWorker(runner)

        def fail():
            raise OSError("disk full")

        first = worker.run(fail)
        second = worker.run(ran.append, "second")
        self.assertEqual(len(started), 1)
        started[0].callback(None)
        self.failureResultOf(first, OSError)
        self.assertEqual(len(started), 2)
        started[1].callback(None)
        self.successResultOf(second)
        self.assertEqual(ran, ["second"])
