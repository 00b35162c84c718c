"""
End-to-end private messages between bundled clients' messengers, through a
fake server on StringTransports that can be made to lie: what each person
sees, what is sent, and what is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nacl.public import PrivateKey
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from chatroom.client.e2e import files, incoming, messenger, replay
from chatroom.client.e2e.contacts import Contacts
from chatroom.client.e2e.envelope import Address, Envelope, seal
from chatroom.client.e2e.keys import DAY, KEEP_REPLACED, ROTATE_AFTER, b64, unb64
from chatroom.client.e2e.messenger import PLACEHOLDER
from chatroom.client.lines import parse_line
from tests.e2e_fakes import Device, FakeE2eServer, Waiting

LOCK = "🔒"


class MessengerTestCase(TestCase):
    def setUp(self) -> None:
        self.server = FakeE2eServer()
        self.root = Path(self.mktemp())

    def device(self, user: str, name: str, history: bool = False) -> Device:
        """A client of C{user} whose device, on first use, is C{name}."""
        return Device(
            self.server, user, self.root / f"{user}-{name}", name, history
        ).start()

    def again(self, device: Device) -> Device:
        """The same machine's client logging in again, in a new session."""
        device.leave()
        return Device(self.server, device.user, device.config).start()

    def disk_full_for(self, name: str) -> None:
        """From now on, writing the file called C{name} fails: disk full."""
        write_json = files.write_json

        def disk_full(path, data):
            if path.name != name:
                return write_json(path, data)
            raise OSError(28, "No space left on device")

        self.patch(files, "write_json", disk_full)


class SendingTests(MessengerTestCase):
    def test_a_private_message_reaches_the_recipient_sealed(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        alice.type("/msg bob meet at noon")
        self.assertIn(f"✓ {LOCK} [private to bob] you: meet at noon", alice.ui.text())
        self.assertIn(f"{LOCK} [private] alice: meet at noon", bob.ui.text())
        # The server only ever saw ciphertext, and no plain /private.
        self.assertEqual(len(alice.sent_e2e()), 1)
        self.assertNotIn("meet at noon", "\n".join(alice.link.sent))
        self.assertEqual(self.server.plain, [])

    def test_private_and_the_angle_bracket_form_are_sealed_too(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        alice.type("/private <bob> one")
        alice.type("/msg Bob two")
        self.assertIn(f"{LOCK} [private] alice: one", bob.ui.text())
        self.assertIn(f"{LOCK} [private] alice: two", bob.ui.text())
        self.assertEqual(self.server.plain, [])

    def test_every_spelling_the_server_takes_as_private_is_sealed(self):
        # The server reads /MSG as /msg and splits at any whitespace: had
        # the client not, these would have gone out in the clear.
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        for line in (
            "/MSG bob one",
            "/Private bob two",
            "/msg bob\tthree",
            "/msg bob\u00a0four",
            "/msg   <bob>   five  ",
        ):
            alice.type(line)
        for text in ("one", "two", "three", "four", "five"):
            self.assertIn(f"{LOCK} [private] alice: {text}\n", bob.ui.text() + "\n")
        self.assertEqual(self.server.plain, [])

    def test_every_device_of_the_recipient_reads_it(self):
        alice = self.device("alice", "laptop")
        phone = self.device("bob", "phone")
        desktop = self.device("bob", "desktop")
        alice.type("/msg bob hello both")
        for bob in (phone, desktop):
            self.assertIn(f"{LOCK} [private] alice: hello both", bob.ui.text())
        sent = alice.sent_e2e()
        self.assertEqual(
            sorted(line.split(" ")[2] for line in sent), ["desktop", "phone"]
        )
        # One message: the same id on every copy.
        self.assertEqual(len({line.split(" ")[3] for line in sent}), 1)

    def test_the_senders_other_devices_get_a_copy_to_peer(self):
        laptop = self.device("alice", "laptop")
        phone = self.device("alice", "phone")
        bob = self.device("bob", "pc")
        laptop.type("/msg bob see you")
        self.assertIn(
            f"{LOCK} [private to bob] you (on laptop): see you", phone.ui.text()
        )
        self.assertIn(f"{LOCK} [private] alice: see you", bob.ui.text())
        # Not to the sending device itself.
        targets = [line.split(" ")[1:3] for line in laptop.sent_e2e()]
        self.assertEqual(sorted(targets), [["alice", "phone"], ["bob", "pc"]])

    def test_a_note_to_self_goes_to_the_other_devices_only(self):
        laptop = self.device("alice", "laptop")
        phone = self.device("alice", "phone")
        laptop.type("/msg alice buy milk")
        self.assertIn(
            f"{LOCK} [private to alice] you (on laptop): buy milk", phone.ui.text()
        )
        self.assertEqual([line.split(" ")[2] for line in laptop.sent_e2e()], ["phone"])

    def test_offline_devices_get_it_at_their_next_login(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        bob.leave()
        alice.type("/msg bob while you were out")
        self.assertNotIn("while you were out", bob.ui.text())
        bob = self.again(bob)
        self.assertIn(f"{LOCK} [private] alice: while you were out", bob.ui.text())

    def test_a_user_without_devices_gets_nothing_unless_plain(self):
        alice = self.device("alice", "laptop")
        alice.type("/msg carol hi")
        self.assertIn("NOT SENT: carol has no end-to-end devices", alice.ui.text())
        self.assertIn("/plain carol TEXT sends it unencrypted", alice.ui.text())
        self.assertEqual((alice.sent_e2e(), self.server.plain), ([], []))
        alice.type("/plain carol hi in the clear")
        self.assertEqual(self.server.plain, [("alice", "carol", "hi in the clear")])
        self.assertIn(
            "[private to carol, not encrypted] you: hi in the clear", alice.ui.text()
        )

    def test_a_known_contact_listed_without_devices_is_a_warning(self):
        alice = self.device("alice", "laptop")
        self.device("bob", "phone")
        alice.type("/msg bob one")
        # The server hides bob's devices to talk alice into /plain.
        self.server.devices["bob"] = {}
        sent = len(alice.sent_e2e())
        alice.type("/msg bob two")
        shown = alice.ui.text()
        self.assertIn("NOT SENT: the server lists no end-to-end device of bob", shown)
        self.assertIn("bob's phone was pinned here", shown)
        self.assertNotIn("no bundled client", shown)
        self.assertEqual((len(alice.sent_e2e()), self.server.plain), (sent, []))

    def test_an_unknown_user_is_the_servers_error(self):
        alice = self.device("alice", "laptop")
        alice.type("/msg nobody hi")
        self.assertIn("error no-such-user", alice.ui.text())
        self.assertEqual(alice.sent_e2e(), [])

    def test_too_long_is_refused_and_nothing_sent(self):
        alice = self.device("alice", "laptop")
        self.device("bob", "phone")
        alice.type("/msg bob " + "x" * 2001)
        self.assertIn(
            "NOT SENT: an end-to-end message holds at most 2000 bytes", alice.ui.text()
        )
        self.assertEqual(alice.sent_e2e(), [])
        self.assertFalse(any(line.startswith("/keys bob") for line in alice.link.sent))

    def test_a_server_without_e2e_gets_no_plaintext(self):
        self.server.has_e2e = False
        alice = self.device("alice", "laptop")
        self.assertIn("this server offers no end-to-end encryption", alice.ui.text())
        alice.type("/msg bob secret")
        self.assertIn("NOT SENT: end-to-end encryption is off", alice.ui.text())
        self.assertEqual([line for line in alice.link.sent if "secret" in line], [])

    def test_the_servers_placeholder_becomes_a_note(self):
        alice = self.device("alice", "laptop")
        note = alice.messenger.placeholder_note(
            parse_line(f"2026-11-25T07:26:16Z [private] bob: {PLACEHOLDER}")
        )
        self.assertEqual(
            note,
            f"-- bob sent you an end-to-end encrypted message: it shows with {LOCK} "
            "if it was sealed for this device",
        )
        for line in (f"[private] * bob {PLACEHOLDER}", "[private] bob: hi"):
            self.assertIsNone(alice.messenger.placeholder_note(parse_line(line)))

    def test_other_commands_are_left_to_the_server(self):
        alice = self.device("alice", "laptop")
        for line in ("/keys", "/describe bob waves", "/msg bob", "hello", "/plainly x"):
            self.assertIsNone(alice.messenger.command(line), line)
        alice.type("/plain")
        self.assertIn("usage: /plain USER TEXT", alice.ui.text())


class RefusalTests(MessengerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice = self.device("alice", "laptop")
        self.bob = self.device("bob", "phone")

    def refused(self, device: Device) -> str:
        shown = device.ui.text()
        self.assertIn("REFUSED an end-to-end message from", shown)
        self.assertNotIn("the secret", shown)
        return shown

    def test_a_ciphertext_altered_by_the_server_is_refused(self):
        def flip(line: str) -> str:
            head, ciphertext = line.rsplit(" ", 1)
            raw = bytearray(unb64(ciphertext))
            raw[-1] ^= 1
            return f"{head} {b64(bytes(raw))}"

        self.server.tamper = flip
        self.alice.type("/msg bob the secret")
        self.assertIn("does not decrypt", self.refused(self.bob))

    def test_garbage_from_the_server_is_refused_never_shown(self):
        self.server.tamper = lambda line: line.rsplit(" ", 1)[0] + " !!notbase64!!"
        self.alice.type("/msg bob the secret")
        self.assertIn("not base64", self.refused(self.bob))

    def test_delivered_under_another_message_id_is_refused(self):
        self.server.tamper = lambda line: line.replace(
            line.split(" ")[6], "forged-msgid-1", 1
        )
        self.alice.type("/msg bob the secret")
        self.assertIn("re-addressed", self.refused(self.bob))

    def test_re_addressed_to_another_user_is_refused(self):
        carol = self.device("carol", "pc")
        self.alice.type("/msg bob the secret")
        line = self.server.waiting[0].line()
        carol.link.deliver(line.replace(" bob phone ", " carol pc ", 1))
        self.server.pump()
        self.assertIn("does not decrypt", self.refused(carol))
        # Delivered to carol's session as addressed to bob: not for this device.
        carol.link.deliver(line)
        self.server.pump()
        self.assertIn("not to this device", self.refused(carol))

    def test_claimed_to_be_from_someone_else_is_refused(self):
        self.device("carol", "pc")
        self.server.tamper = lambda line: line.replace(
            "~ e2e alice laptop", "~ e2e carol pc", 1
        )
        self.alice.type("/msg bob the secret")
        self.assertIn(
            "signature is not the sending device's key", self.refused(self.bob)
        )

    def test_a_replay_is_refused_even_after_a_restart(self):
        self.alice.type("/msg bob the secret")
        self.assertIn("alice: the secret", self.bob.ui.text())
        line = self.server.waiting[0].line()
        self.bob.ui.take()
        self.bob.link.deliver(line)
        self.server.pump()
        self.assertIn("a replay", self.refused(self.bob))
        self.server.waiting[0].delivered = False
        bob = self.again(self.bob)
        self.assertIn("a replay", self.refused(bob))

    def test_a_sender_cannot_push_the_replay_floor_into_the_future(self):
        self.patch(replay, "MAX_SEEN", 1)
        keys = self.alice.messenger.device.keys
        phone = self.bob.messenger.device.keys
        future = int(self.server.clock.seconds() * 1000) + 10**12
        to = Address("alice", keys.device, "bob", phone.device, "from-the-future")
        sealed = seal(
            Envelope(to, "bob", future, "later"), keys.identity, phone.current.public
        )
        at = self.server.clock.seconds()
        self.bob.link.deliver(
            Waiting(
                "alice", keys.device, "bob", "phone", "from-the-future", at, b64(sealed)
            ).line()
        )
        self.server.pump()
        # Each evicts the one before it, and the floor rises to its time.
        self.server.clock.advance(1)
        self.alice.type("/msg bob one")
        self.server.clock.advance(1)
        self.alice.type("/msg bob two")
        self.assertIn("alice: later", self.bob.ui.text())
        self.assertIn("alice: one", self.bob.ui.text())
        self.assertIn("alice: two", self.bob.ui.text())
        self.assertNotIn("REFUSED", self.bob.ui.text())

    def test_a_message_from_an_unlisted_device_is_refused(self):
        self.alice.type("/msg bob the secret")
        line = self.server.waiting[0].line()
        self.server.devices["alice"].clear()
        self.bob.ui.take()
        self.bob.messenger.device.contacts = Contacts()
        self.bob.link.deliver(line)
        self.server.pump()
        self.assertIn("lists no such device", self.refused(self.bob))


class KeyChangeTests(MessengerTestCase):
    def test_first_contact_pins_and_says_how_to_check(self):
        alice = self.device("alice", "laptop")
        self.device("bob", "phone")
        alice.type("/msg bob hi")
        self.assertIn(
            "first end-to-end contact with bob: pinned the keys of phone",
            alice.ui.text(),
        )

    def test_a_changed_key_warns_and_blocks_until_trust(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        alice.type("/msg bob before")
        # bob reinstalls: a new identity under the same device name.
        bob.leave()
        bob = Device(self.server, "bob", self.root / "bob-new", "phone").start()
        alice.ui.take()
        sent = len(alice.sent_e2e())
        alice.type("/msg bob after")
        shown = alice.ui.text()
        self.assertIn(
            "WARNING: the identity key of bob's device phone has CHANGED", shown
        )
        self.assertIn("NOT SENT", shown)
        self.assertEqual(len(alice.sent_e2e()), sent)
        # Still blocked, after a restart too.
        alice = self.again(alice)
        alice.type("/msg bob after")
        self.assertIn("NOT SENT", alice.ui.text())
        self.assertEqual(len(alice.sent_e2e()), 0)
        alice.type("/trust bob")
        self.assertIn("trusted the new keys of bob's phone", alice.ui.text())
        alice.ui.take()
        alice.type("/msg bob after")
        self.assertIn(f"✓ {LOCK} [private to bob] you: after", alice.ui.text())
        self.assertIn(f"{LOCK} [private] alice: after", bob.ui.text())
        self.assertNotIn("WARNING", alice.ui.text())

    def test_a_message_from_a_reinstalled_contact_blocks_the_reply(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        alice.type("/msg bob first")
        bob.type("/msg alice back")
        alice.leave()
        # alice on a new machine, same device name: a new identity, which
        # pins bob on first use and so can write to him.
        new_alice = Device(self.server, "alice", self.root / "alice-new", "laptop")
        new_alice.start().type("/msg bob from the new one")
        self.assertIn("CHANGED", bob.ui.text())
        self.assertNotIn("from the new one", bob.ui.text())
        bob.ui.take()
        bob.type("/msg alice hello?")
        self.assertIn("NOT SENT", bob.ui.text())
        self.assertEqual(new_alice.ui.text().count("hello?"), 0)

    def test_held_messages_are_shown_after_trust(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        alice.type("/msg bob first")
        bob.type("/fingerprint alice")
        alice.leave()
        bob.ui.take()
        # bob's session learns of the change before the message arrives.
        new_alice = Device(self.server, "alice", self.root / "alice-new", "laptop")
        new_alice.start()
        bob.type("/fingerprint alice")
        self.assertIn("CHANGED", bob.ui.text())
        new_alice.type("/msg bob from the new one")
        self.assertIn("HELD an end-to-end message from alice", bob.ui.text())
        self.assertNotIn("from the new one", bob.ui.text())
        bob.type("/trust alice")
        self.assertIn(f"{LOCK} [private] alice: from the new one", bob.ui.text())

    def test_what_is_held_from_a_changed_key_is_bounded(self):
        self.patch(incoming, "HELD_MAX", 2)
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        alice.type("/msg bob first")
        alice.leave()
        new_alice = Device(self.server, "alice", self.root / "alice-new", "laptop")
        new_alice.start()
        for n in range(3):
            new_alice.type(f"/msg bob held {n}")
        shown = bob.ui.text()
        self.assertEqual(shown.count("HELD an end-to-end message from alice"), 2)
        self.assertIn("2 such messages are held already", shown)
        self.assertNotIn("held 2", shown)
        bob.type("/trust alice")
        self.assertIn(f"{LOCK} [private] alice: held 1", bob.ui.text())
        self.assertNotIn("held 2", bob.ui.text())

    def test_a_new_device_of_a_known_contact_is_announced(self):
        alice = self.device("alice", "laptop")
        self.device("bob", "phone")
        alice.type("/msg bob one")
        self.device("bob", "tablet")
        alice.type("/msg bob two")
        self.assertIn("bob has a new end-to-end device: tablet", alice.ui.text())
        self.assertEqual(len(alice.sent_e2e()), 3)

    def test_both_see_the_same_safety_number(self):
        alice = self.device("alice", "laptop")
        self.device("alice", "phone")
        bob = self.device("bob", "pc")
        alice.type("/fingerprint bob")
        bob.type("/fingerprint alice")
        numbers = [safety_digits(device.ui.text()) for device in (alice, bob)]
        self.assertEqual(numbers[0], numbers[1])
        self.assertEqual(len(numbers[0].replace(" ", "")), 60)
        self.assertIn("2 device(s) of yours, 1 of theirs", alice.ui.text())

    def test_a_changed_own_device_blocks_every_sealed_message(self):
        laptop = self.device("alice", "laptop")
        phone = self.device("alice", "phone")
        self.device("bob", "pc")
        laptop.type("/msg bob one")
        phone.leave()
        Device(self.server, "alice", self.root / "alice-new", "phone").start()
        laptop.ui.take()
        sent = len(laptop.sent_e2e())
        laptop.type("/msg bob two")
        shown = laptop.ui.text()
        self.assertIn(
            "the identity key of your account's device phone has CHANGED", shown
        )
        self.assertIn("NOT SENT: the identity key of alice's phone changed", shown)
        self.assertEqual(len(laptop.sent_e2e()), sent)
        laptop.type("/trust alice")
        laptop.type("/msg bob two")
        self.assertEqual(len(laptop.sent_e2e()), sent + 2)

    def test_trust_with_nothing_changed_says_so(self):
        alice = self.device("alice", "laptop")
        alice.type("/trust bob")
        self.assertIn("nothing to trust", alice.ui.text())


def safety_digits(shown: str) -> str:
    lines = shown.split("\n")
    start = next(i for i, line in enumerate(lines) if "safety number with" in line)
    return " ".join(line.strip() for line in lines[start + 1 : start + 3])


class RotationTests(MessengerTestCase):
    def test_a_week_on_a_new_prekey_is_published_and_old_messages_still_open(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        first = self.server.devices["bob"]["phone"][1]
        bob.leave()
        alice.type("/msg bob sealed to the first prekey")
        self.server.clock.advance(ROTATE_AFTER)
        bob = self.again(bob)
        self.assertNotEqual(self.server.devices["bob"]["phone"][1], first)
        self.assertIn("sealed to the first prekey", bob.ui.text())

    def test_a_running_client_rotates_on_time_and_deletes_old_keys(self):
        bob = self.device("bob", "phone")
        published = bob.published()
        self.assertEqual(len(published), 1)
        self.server.clock.advance(ROTATE_AFTER - 1)
        self.server.pump()
        self.assertEqual(len(bob.published()), 1)
        self.server.clock.advance(1)
        self.server.pump()
        publishes = bob.published()
        self.assertEqual(len(publishes), 2)
        self.assertNotEqual(publishes[0].split(" ")[4], publishes[1].split(" ")[4])
        self.assertEqual(len(bob.messenger.device.keys.prekeys), 2)
        self.server.clock.advance(KEEP_REPLACED)
        self.server.pump()
        stored = files.read_json(bob.messenger.device.directory / files.KEYS_FILE)
        self.assertEqual(len(stored["prekeys"]), 2)
        self.assertGreaterEqual(
            self.server.clock.seconds() - stored["prekeys"][0]["created"], 14 * DAY
        )

    def test_a_refused_rotation_is_published_again_later(self):
        bob = self.device("bob", "phone")
        publish = self.server.publish

        def refuse_once(link, *words):
            self.server.publish = publish
            link.deliver("-ERR server-error the server failed; try again")

        self.server.publish = refuse_once
        self.server.clock.advance(ROTATE_AFTER)
        self.server.pump()
        shown = bob.ui.text()
        self.assertIn("refused this device's new prekey (server-error", shown)
        self.assertNotIn("OFF", shown)
        self.assertTrue(bob.messenger.active)
        self.server.clock.advance(messenger.REPUBLISH_AFTER)
        self.server.pump()
        kept = bob.messenger.device.keys
        self.assertEqual(
            self.server.devices["bob"]["phone"][1], b64(kept.current.public)
        )
        # Rotating on schedule again: the replaced prekey is deleted on time.
        self.server.clock.advance(KEEP_REPLACED)
        self.server.pump()
        self.assertEqual(len(bob.messenger.device.keys.prekeys), 2)
        self.assertEqual(len(bob.published()), 4)

    def test_new_keys_that_cannot_be_saved_are_not_published_until_they_are(self):
        bob = self.device("bob", "phone")
        write_json = files.write_json

        def disk_full(path, data):
            self.patch(files, "write_json", write_json)
            raise OSError(28, "No space left on device")

        self.patch(files, "write_json", disk_full)
        self.server.clock.advance(ROTATE_AFTER)
        self.server.pump()
        self.assertIn("cannot save this device's new keys", bob.ui.text())
        self.assertEqual(len(bob.published()), 1)
        self.server.clock.advance(messenger.REPUBLISH_AFTER)
        self.server.pump()
        [_, published] = bob.published()
        kept = files.read_json(bob.messenger.device.directory / files.KEYS_FILE)
        prekey = bytes(PrivateKey(unb64(kept["prekeys"][-1]["secret"])).public_key)
        self.assertEqual(published.split(" ")[4], b64(prekey))

    def test_stopping_cancels_the_rotation_timer(self):
        bob = self.device("bob", "phone")
        bob.messenger.stop()
        self.assertEqual(self.server.clock.getDelayedCalls(), [])


class FileTests(MessengerTestCase):
    def test_file_work_runs_off_the_reactor_and_keys_are_kept_before_published(self):
        jobs: list[tuple[Deferred, object, tuple]] = []

        def later(function, *args):
            jobs.append((Deferred(), function, args))
            return jobs[-1][0]

        bob = Device(self.server, "bob", self.root / "bob", "phone", runner=later)
        started = Deferred.fromCoroutine(bob.messenger.start("bob"))
        self.server.pump()
        directory = files.account_directory(
            self.root / "bob", "chat.example", 5000, "bob"
        )
        self.assertFalse(directory.exists())
        while jobs:
            # Nothing on disk, nothing published, until the runner runs it.
            self.assertEqual(bob.published(), [])
            done, function, args = jobs.pop(0)
            done.callback(function(*args))
            self.server.pump()
        self.successResultOf(started)
        [published] = bob.published()
        kept = files.read_json(directory / files.KEYS_FILE)
        prekey = bytes(PrivateKey(unb64(kept["prekeys"][-1]["secret"])).public_key)
        self.assertEqual(published.split(" ")[4], b64(prekey))

    def test_device_files_are_the_owners_only_and_hold_no_plaintext(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        alice.type("/msg bob plaintext-never-on-disk")
        bob.type("/msg alice also-never-on-disk")
        for device in (alice, bob):
            directory = device.messenger.device.directory
            names = sorted(os.listdir(directory))
            self.assertEqual(
                names, [".lock", "contacts.json", "device-keys.json", "seen.json"]
            )
            for name in names:
                path = directory / name
                self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
                self.assertNotIn(b"never-on-disk", path.read_bytes())

    def test_every_directory_made_for_the_device_is_the_owners_only(self):
        alice = self.device("alice", "laptop")
        directory = alice.messenger.device.directory
        made = [directory, *directory.parents]
        made = made[: made.index(self.root)]
        # USER, HOST_PORT, e2e, and the config directory itself.
        self.assertEqual(len(made), 4)
        for path in made:
            self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o700, path)

    def test_history_only_when_asked(self):
        alice = self.device("alice", "laptop", history=True)
        bob = self.device("bob", "phone")
        alice.type("/msg bob kept")
        bob.type("/msg alice also kept\x1b[2J")
        history = alice.messenger.device.directory / files.HISTORY_FILE
        lines = history.read_text().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].endswith("alice -> bob: kept"))
        self.assertTrue(lines[1].endswith("bob -> alice: also kept^[[2J"))
        self.assertEqual(stat.S_IMODE(history.stat().st_mode), 0o600)
        self.assertFalse((bob.messenger.device.directory / files.HISTORY_FILE).exists())

    def test_a_crash_left_temporary_key_file_is_deleted_at_the_next_login(self):
        alice = self.device("alice", "laptop")
        directory = alice.messenger.device.directory
        # What a crash between writing and renaming leaves: keys that the
        # real file will later drop at rotation, and this one would keep.
        leftover = directory / f".{files.KEYS_FILE}.0badf00d"
        leftover.write_bytes((directory / files.KEYS_FILE).read_bytes())
        (directory / f".{files.SEEN_FILE}.0badf00d").write_text("{}")
        alice = self.again(alice)
        self.assertIn("end-to-end encryption on", alice.ui.text())
        self.assertEqual(
            sorted(os.listdir(directory)), [files.LOCK_FILE, files.KEYS_FILE]
        )

    def test_a_second_client_on_the_same_device_leaves_its_files_alone(self):
        # Both would rotate, save and publish prekeys of their own, and the
        # one published last might not be the one kept on disk.
        alice = self.device("alice", "laptop")
        directory = alice.messenger.device.directory
        kept = (directory / files.KEYS_FILE).read_bytes()
        second = Device(self.server, "alice", alice.config).start()
        self.assertIn("another chatroom-client is using this device", second.ui.text())
        self.assertEqual((second.published(), second.messenger.active), ([], False))
        self.assertEqual((directory / files.KEYS_FILE).read_bytes(), kept)
        alice.leave()
        third = Device(self.server, "alice", alice.config).start()
        self.assertIn("end-to-end encryption on", third.ui.text())

    def test_a_message_is_shown_even_if_its_id_cannot_be_saved(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        self.disk_full_for(files.SEEN_FILE)
        alice.type("/msg bob delivered, so shown")
        self.assertIn(f"{LOCK} [private] alice: delivered, so shown", bob.ui.text())
        self.assertIn("Cannot save seen.json", bob.ui.text())

    def test_pins_that_cannot_be_saved_hold_for_the_session(self):
        alice = self.device("alice", "laptop")
        bob = self.device("bob", "phone")
        self.disk_full_for(files.CONTACTS_FILE)
        alice.type("/msg bob first contact")
        for device in (alice, bob):
            self.assertIn("Cannot save contacts.json", device.ui.text())
        self.assertIn(f"{LOCK} [private] alice: first contact", bob.ui.text())
        self.assertIsNotNone(bob.messenger.device.contacts.identity("alice", "laptop"))

    def test_the_same_device_and_keys_at_every_login(self):
        alice = self.device("alice", "laptop")
        publish = alice.published()
        again = self.again(alice)
        self.assertEqual(
            again.published(),
            publish,
        )

    def test_malformed_contacts_or_seen_files_turn_e2e_off(self):
        for name, text in (("contacts.json", "[1]"), ("seen.json", '{"seen": [1]}')):
            config = self.root / name
            directory = files.account_directory(config, "chat.example", 5000, "bob")
            directory.mkdir(parents=True)
            (directory / name).write_text(text)
            bob = Device(self.server, "bob", config, "phone").start()
            self.assertIn("OFF: cannot use the device files in", bob.ui.text())
            self.assertIn(f"{name} is malformed", bob.ui.text())
            self.assertEqual(bob.published(), [])

    def test_unreadable_device_files_turn_e2e_off_and_are_kept(self):
        directory = files.account_directory(
            self.root / "x", "chat.example", 5000, "alice"
        )
        directory.mkdir(parents=True)
        (directory / files.KEYS_FILE).write_text('{"v": 1}')
        alice = Device(self.server, "alice", self.root / "x", "laptop").start()
        self.assertIn("End-to-end encryption is OFF", alice.ui.text())
        self.assertEqual((directory / files.KEYS_FILE).read_text(), '{"v": 1}')
        self.assertFalse(alice.published())
        alice.type("/msg bob hi")
        self.assertIn("NOT SENT", alice.ui.text())
