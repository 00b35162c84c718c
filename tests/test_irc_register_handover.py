"""
A guest becoming an account (REGISTER): the name is held from the checks
until the account's session is online, so no one takes it while the
password is hashed, and the account is in the guest's channels when
REGISTER answers, with nothing shown to their members.
"""

from __future__ import annotations

from twisted.internet import defer

from chatroom.errors import NameTaken
from chatroom.names import name_key
from tests.test_irc import IRCTestCase, command_of, params


class HeldHash:
    """The world's hasher, with each hash held until the test lets it finish."""

    def __init__(self, case: IRCTestCase) -> None:
        self.hasher = case.world.hasher
        self.real = self.hasher.hash
        self.held: list[tuple[defer.Deferred, str]] = []
        case.patch(self.hasher, "hash", self._hold)

    def _hold(self, password: str, party=None) -> defer.Deferred:
        d = defer.Deferred()
        self.held.append((d, password))
        return d

    def finish(self) -> None:
        for d, password in self.held:
            self.real(password).addCallback(d.callback)
        self.held = []


class HandOverCase(IRCTestCase):
    def joined(self, nick: str, *channels: str):
        client = self.welcomed(nick)
        for channel in channels:
            client.write(f"JOIN {channel}")
        client.take()
        return client


class RegisterRaceTests(HandOverCase):
    def test_no_second_guest_takes_the_name_during_the_hash(self):
        bob = self.joined("bob", "#den")
        hashing = HeldHash(self)
        bob.write("REGISTER * * a-good-password")
        self.assertEqual(len(hashing.held), 1)
        # Still the guest meanwhile: only a hashed password hands it over.
        self.assertTrue(self.world.chat.online_by_key["bob"].is_guest)
        other = self.register("bob")
        self.assertEqual(self.commands(other.take()), ["433"])
        hashing.finish()
        self.assertEqual(self.commands(bob.take())[:2], ["REGISTER", "900"])
        named_bob = [
            a for a in self.world.chat.online.values() if a.key == name_key("bob")
        ]
        self.assertEqual(named_bob, [self.world.chat.online_by_key["bob"]])
        self.assertFalse(named_bob[0].is_guest)

    def test_no_guest_takes_a_name_the_line_port_is_registering(self):
        hashing = HeldHash(self)
        line = self.world.connect()
        line.write("/register bob a-good-password")
        guest = self.register("bob")
        self.assertEqual(self.commands(guest.take()), ["433"])
        hashing.finish()
        self.assertTrue(line.take()[0].startswith("+OK"))
        self.assertFalse(self.world.chat.online_by_key["bob"].is_guest)

    def test_a_second_registration_of_the_name_is_refused_at_once(self):
        hashing = HeldHash(self)
        first = self.world.connect()
        first.write("/register bob a-good-password")
        second = self.world.connect("10.0.0.3")
        self.assertEqual(
            second.command("/register bob another-password"),
            "-ERR name-taken bob is being registered",
        )
        self.assertEqual(len(hashing.held), 1)
        hashing.finish()
        self.assertTrue(first.take()[0].startswith("+OK"))

    def test_a_guest_that_has_an_accounts_name_goes_as_the_account_comes(self):
        # How a guest got the name (an older race) matters not: it goes.
        self.world.user("bob", "bob-secret").disconnect()
        watcher = self.joined("wendy", "#den")
        guest = self.joined("bobby", "#den")
        watcher.take()
        chat = self.world.chat
        guest_account = chat.online_by_key.pop("bobby")
        guest_account.key = name_key("bob")
        chat.online_by_key["bob"] = guest_account
        line = self.world.connect()
        self.assertTrue(line.command("/login bob bob-secret").startswith("+OK"))
        self.assertTrue(guest.closing)
        self.assertIn("an account's name", guest.take()[-1])
        self.assertEqual(self.commands(watcher.take()), ["QUIT"])
        self.assertFalse(chat.online_by_key["bob"].is_guest)

    def test_an_account_may_not_rename_itself_to_a_guests_name(self):
        guest = self.welcomed("gina")
        alice = self.world.user("alice")
        self.assertEqual(alice.command("/u gina"), "-ERR name-taken gina is in use")
        self.assertIs(
            guest.protocol.avatar.account, self.world.chat.online_by_key["gina"]
        )

    def test_an_account_renamed_to_a_guests_name_elsewhere_ends_the_guest(self):
        guest = self.welcomed("gina")
        alice = self.world.user("alice")
        alice_id = self.world.chat.online_by_key["alice"].id
        # Another node checked the name against its own guests only.
        self.world.chat.apply_renamed(alice_id, "gina")
        self.assertTrue(guest.closing)
        self.assertEqual(self.world.chat.online_by_key["gina"].id, alice_id)
        self.assertEqual(alice.command("/u Gina"), "+OK you are now Gina")


class KeptChannelsTests(HandOverCase):
    def test_the_channels_are_kept_and_their_members_see_nothing(self):
        gina = self.joined("gina", "#den", "#pit")
        otto = self.joined("otto", "#den")
        gina.take()
        gina.write("REGISTER * * a-long-passphrase")
        self.assertEqual(self.commands(gina.take()), ["REGISTER", "900"])
        self.assertEqual(otto.take(), [])
        account = gina.protocol.avatar.account
        rooms = self.world.chat.rooms
        for name in ("den", "pit"):
            self.assertEqual(rooms.find(name).members.get(account.id), "gina")
        # Stored: the account is in them at its next login too.
        gina.disconnect()
        line = self.world.connect()
        line.command("/login gina a-long-passphrase")
        line.write("/rooms")
        shown = [text.split()[1] for text in line.take() if text.startswith("= ")]
        self.assertEqual(shown, ["den", "lobby", "pit"])

    def test_a_channel_that_cannot_be_kept_is_parted_for_everyone(self):
        # The account's lobby and #den fill its rooms: #pit is one too many.
        self.world.chat.max_rooms = 2
        gina = self.joined("gina", "#den", "#pit")
        otto = self.joined("otto", "#pit")
        gina.take()
        gina.write("REGISTER * * a-long-passphrase")
        lines = gina.take()
        self.assertEqual(self.commands(lines), ["PART", "REGISTER", "900"])
        self.assertEqual(params(lines[0])[0], "#pit")
        (part,) = otto.take()
        self.assertEqual(command_of(part), "PART")
        self.assertTrue(part.startswith(":gina!"))
        account = gina.protocol.avatar.account
        self.assertNotIn(account.id, self.world.chat.rooms.find("pit").members)
        self.assertIn(account.id, self.world.chat.rooms.find("den").members)

    def test_a_refusal_after_the_hand_over_shows_the_guest_quit(self):
        gina = self.joined("gina", "#den")
        otto = self.joined("otto", "#den")
        # Another node made the account meanwhile: the write refuses it.
        self.patch(
            self.world.chat.store,
            "create_user",
            lambda *args: defer.fail(NameTaken("gina is taken")),
        )
        gina.write("REGISTER * * a-long-passphrase")
        self.assertTrue(gina.closing)
        (quit_,) = otto.take()
        self.assertEqual(command_of(quit_), "QUIT")
        self.assertIn("Registration failed", params(quit_)[0])
        self.assertNotIn("gina", self.world.chat.online_by_key)
        self.assertEqual(
            list(self.world.chat.rooms.find("den").members.values()), ["otto"]
        )

    def test_a_failed_hash_leaves_the_guest_as_it_was(self):
        gina = self.joined("gina", "#den")
        otto = self.joined("otto", "#den")
        hashing = HeldHash(self)
        gina.write("REGISTER * * a-long-passphrase")
        ((held, _),) = hashing.held
        held.errback(RuntimeError("the bcrypt pool is gone"))
        self.flushLoggedErrors(RuntimeError)
        gina.take()
        self.assertFalse(gina.closing)
        self.assertEqual(otto.take(), [])
        guest = self.world.chat.online_by_key["gina"]
        self.assertTrue(guest.is_guest)
        self.assertIs(gina.protocol.avatar.account, guest)
        self.assertIn(guest.id, self.world.chat.rooms.find("den").members)
