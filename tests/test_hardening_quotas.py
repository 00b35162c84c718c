"""
What one address or one account may make the server keep or spend: new
accounts (each a bcrypt hash), private messages waiting for an offline user,
rooms joined.  Each limit with its wire answer, and that a refusal leaves
nothing behind.
"""

from twisted.internet import defer, task
from twisted.trial import unittest

from chatroom.options import limits_from
from chatroom.protocol.limits import Limits
from chatroom.service.avatar import KEPT_PAGE
from chatroom.service.throttle import RegistrationLimit, address_block
from tests.asynctest import async_test
from tests.clients import data_lines
from tests.helpers import (
    ADMIN_PASSWORD,
    RELAXED,
    ChatWorld,
    ServerTestCase,
    fired,
    parse_options,
)


def limits(**changes) -> Limits:
    return Limits(**{**RELAXED.__dict__, **changes})


class RegistrationLimitTests(unittest.TestCase):
    def setUp(self):
        # Three a minute, two at once.
        self.world = ChatWorld(limits(register_rate=3, register_burst=2))

    def register(self, name: str, host: str = "10.0.0.1") -> str:
        return self.world.connect(host).command(f"/register {name} pw-{name}")

    def exists(self, name: str) -> bool:
        return fired(self.world.chat.store.find_user(name)) is not None

    def test_registrations_past_the_burst_are_refused_and_create_nothing(self):
        self.assertEqual(self.register("ann"), "+OK welcome, ann")
        self.assertEqual(self.register("bob"), "+OK welcome, bob")
        hashed = self.world.hasher.hashed
        self.assertEqual(
            self.register("cat"),
            "-ERR rate-limited too many new accounts from your address:"
            " try again in 20 s",
        )
        self.assertFalse(self.exists("cat"))
        self.assertEqual(self.world.hasher.hashed, hashed, "a refusal costs no hash")

    def test_the_limit_recovers_at_its_rate(self):
        self.register("ann")
        self.register("bob")
        self.world.clock.advance(19)
        self.assertTrue(self.register("cat").startswith("-ERR rate-limited"))
        self.world.clock.advance(1)
        self.assertEqual(self.register("cat"), "+OK welcome, cat")
        self.assertTrue(self.register("dan").startswith("-ERR rate-limited"))

    def test_other_addresses_have_their_own_allowance(self):
        self.register("ann")
        self.register("bob")
        self.assertEqual(self.register("cat", "10.0.0.2"), "+OK welcome, cat")

    def test_ipv6_addresses_count_by_their_64_bit_network(self):
        self.register("ann", "2001:db8:1:2::1")
        self.register("bob", "2001:db8:1:2:ffff::9")
        self.assertTrue(self.register("cat", "2001:db8:1:2::77").startswith("-ERR"))
        self.assertEqual(self.register("dan", "2001:db8:1:3::1"), "+OK welcome, dan")

    def test_the_interactive_form_is_refused_before_the_password(self):
        self.register("ann")
        self.register("bob")
        client = self.world.connect()
        self.assertTrue(client.command("cat").startswith("-ERR rate-limited"))
        # The refusal did not take the next line as a password.
        self.assertEqual(client.command("/ping"), "+OK pong")
        self.assertFalse(self.exists("cat"))

    def test_the_interactive_form_counts_when_the_password_comes(self):
        waiting = self.world.connect()
        self.assertEqual(
            waiting.command("cat"),
            "+OK cat is new: type a password to create the account",
        )
        self.register("ann")
        self.register("bob")
        # The address spent its allowance while cat was typing.
        self.assertTrue(waiting.command("pw-cat").startswith("-ERR rate-limited"))
        self.assertFalse(self.exists("cat"))

    def test_taken_names_and_bad_passwords_spend_nothing(self):
        self.register("ann")
        for _ in range(5):
            self.assertTrue(self.register("ANN").startswith("-ERR name-taken"))
            self.assertTrue(self.register("admin").startswith("-ERR name-taken"))
        client = self.world.connect()
        self.assertTrue(
            client.command("/register bob \x1b[2J").startswith("-ERR bad-password")
        )
        self.assertEqual(self.register("bob"), "+OK welcome, bob")

    def test_logins_are_not_counted(self):
        self.register("ann")
        for _ in range(5):
            self.assertEqual(
                self.world.connect().command("/login ann pw-ann"), "+OK welcome, ann"
            )
        self.assertEqual(self.register("bob"), "+OK welcome, bob")

    def test_rate_zero_turns_the_limit_off(self):
        world = ChatWorld(limits(register_rate=0, register_burst=1))
        for n in range(20):
            client = world.connect()
            self.assertTrue(client.command(f"/register u{n} pw").startswith("+OK"))


class RegistrationLimitUnitTests(unittest.TestCase):
    def test_address_blocks(self):
        self.assertEqual(address_block("192.0.2.7"), "192.0.2.7")
        self.assertEqual(address_block("::ffff:192.0.2.7"), "192.0.2.7")
        self.assertEqual(address_block("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(address_block("unix socket"), "unix socket")

    def test_refilled_buckets_are_forgotten(self):
        clock = task.Clock()
        limit = RegistrationLimit(clock, per_minute=60, burst=2, tracked=3)
        for n in range(3):
            limit.take(f"10.0.0.{n}")
        clock.advance(2)
        limit.take("10.0.1.1")
        self.assertEqual(list(limit._buckets), ["10.0.1.1"])

    def test_at_most_tracked_addresses_are_remembered(self):
        limit = RegistrationLimit(task.Clock(), per_minute=1, burst=2, tracked=3)
        for n in range(10):
            limit.take(f"10.0.0.{n}")
        self.assertEqual(len(limit._buckets), 3)


class RegistrationOptionTests(unittest.TestCase):
    def test_defaults(self):
        limits = limits_from(
            parse_options(
                self,
            )
        )
        self.assertEqual((limits.register_rate, limits.register_burst), (3.0, 10))

    def test_the_bench_can_lift_or_turn_it_off(self):
        limits = limits_from(
            parse_options(self, "--register-rate", "600", "--register-burst", "1000")
        )
        self.assertEqual((limits.register_rate, limits.register_burst), (600, 1000))
        self.assertEqual(
            limits_from(parse_options(self, "--register-rate", "0")).register_rate, 0
        )


SOFT, HARD = 4096, 16384


class MailboxTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld(mailbox_size=3)
        self.alice = self.world.user("alice")
        self.world.user("bob").close()

    def kept_for_bob(self) -> list[str]:
        store = self.world.chat.store
        bob = fired(store.find_user("bob"))
        return [m.text for m in fired(store.undelivered_private(bob.id, 100))]

    def test_past_the_mailbox_size_the_sender_hears_mailbox_full(self):
        for n in range(3):
            self.assertEqual(self.alice.command(f"/msg bob m{n}"), "+OK")
        self.assertEqual(
            self.alice.command("/msg bob one too many"),
            "-ERR mailbox-full that user has too many messages waiting:"
            " try again once they have logged in",
        )
        self.assertEqual(self.kept_for_bob(), ["m0", "m1", "m2"])
        bob = self.world.connect()
        bob.take()  # the greeting
        bob.write("/login bob pw")
        self.assertEqual(
            bob.take(),
            [
                "+OK welcome, bob",
                "[private] alice: m0",
                "[private] alice: m1",
                "[private] alice: m2",
            ],
        )
        # Delivered, the mailbox is empty again.
        bob.close()
        self.assertEqual(self.alice.command("/msg bob again"), "+OK")

    def test_messages_to_an_online_user_are_not_counted(self):
        bob = self.world.connect()
        bob.command("/login bob pw")
        for n in range(10):
            self.assertEqual(self.alice.command(f"/msg bob m{n}"), "+OK")

    def test_size_zero_keeps_everything(self):
        world = ChatWorld(mailbox_size=0)
        alice = world.user("alice")
        world.user("bob").close()
        for n in range(20):
            self.assertEqual(alice.command(f"/msg bob m{n}"), "+OK")


class MailboxPerSenderTests(unittest.TestCase):
    """One sender may fill its share of another's mailbox, not all of it."""

    def setUp(self):
        self.world = ChatWorld(mailbox_size=5, mailbox_per_sender=2)
        self.alice = self.world.user("alice")
        self.carol = self.world.user("carol")
        self.world.user("bob").close()

    def kept_for_bob(self) -> list[str]:
        store = self.world.chat.store
        bob = fired(store.find_user("bob"))
        return [m.text for m in fired(store.undelivered_private(bob.id, 100))]

    def test_past_its_share_a_sender_hears_mailbox_full_and_others_still_get_in(self):
        for n in range(2):
            self.assertEqual(self.alice.command(f"/msg bob a{n}"), "+OK")
        self.assertEqual(
            self.alice.command("/msg bob a2"),
            "-ERR mailbox-full you have 2 messages waiting for that user, the most"
            " one sender may leave: try again once they have logged in",
        )
        self.assertEqual(self.carol.command("/msg bob c0"), "+OK")
        self.assertEqual(self.kept_for_bob(), ["a0", "a1", "c0"])

    def test_the_total_still_holds_over_every_sender(self):
        for sender in ("alice", "carol"):
            client = getattr(self, sender)
            for n in range(2):
                self.assertEqual(client.command(f"/msg bob {sender}{n}"), "+OK")
        dave = self.world.user("dave")
        self.assertEqual(dave.command("/msg bob d0"), "+OK")
        self.assertTrue(
            dave.command("/msg bob d1").startswith(
                "-ERR mailbox-full that user has too many messages waiting"
            )
        )
        self.assertEqual(len(self.kept_for_bob()), 5)

    def test_zero_turns_the_share_off(self):
        world = ChatWorld(mailbox_size=5, mailbox_per_sender=0)
        alice = world.user("alice")
        world.user("bob").close()
        for n in range(5):
            self.assertEqual(alice.command(f"/msg bob m{n}"), "+OK")

    def test_the_default_is_well_below_the_mailbox(self):
        config = parse_options(self)
        self.assertEqual(config["mailbox-per-sender"], 100)
        self.assertLess(config["mailbox-per-sender"], config["mailbox-size"] / 5)


class KeptDeliveryTests(unittest.TestCase):
    """
    300 kept messages of about 220 bytes: 66 KB, four times the hard limit of
    the output queue.  Delivered all at once, they would get bob dropped.
    """

    COUNT = 300

    def setUp(self):
        # All from one sender: its share of the mailbox is not what is tested.
        self.world = ChatWorld(
            limits(output_soft=SOFT, output_hard=HARD), mailbox_per_sender=0
        )
        alice = self.world.user("alice")
        self.world.user("bob").close()
        self.sent = [f"{n:04d} " + "x" * 200 for n in range(self.COUNT)]
        for text in self.sent:
            assert alice.command(f"/msg bob {text}") == "+OK"

    def kept(self) -> list[str]:
        store = self.world.chat.store
        bob = fired(store.find_user("bob"))
        return [m.text for m in fired(store.undelivered_private(bob.id, 1000))]

    def log_in(self):
        """bob's new connection, and the kept messages it has got at once."""
        bob = self.world.connect()
        bob.take()  # the greeting
        bob.write("/login bob pw")
        lines = bob.take()
        self.assertEqual(lines[0], "+OK welcome, bob")
        return bob, self.received(lines)

    @staticmethod
    def received(lines: list[str]) -> list[str]:
        prefix = "[private] alice: "
        return [line[len(prefix) :] for line in lines if line.startswith(prefix)]

    def test_kept_messages_come_at_the_pace_the_client_reads(self):
        bob, got = self.log_in()
        # One soft limit's worth, and at most one message past it.
        self.assertLess(len(got) * 220, SOFT + 500)
        self.assertEqual(bob.transport.producerState, "paused")
        for _ in range(200):
            if len(got) == self.COUNT:
                break
            bob.transport.drain()
            got += self.received(bob.take())
        self.assertFalse(bob.transport.aborted)
        self.assertEqual(got, self.sent)
        self.assertEqual(self.kept(), [])
        self.assertEqual(bob.command("/ping"), "+OK pong")

    def test_a_connection_lost_midway_keeps_what_was_not_drained(self):
        bob, first = self.log_in()
        for _ in range(5):
            bob.transport.drain()
            first += self.received(bob.take())
        bob.close()
        kept = self.kept()
        # Nothing lost: what the first connection did not get is still kept,
        # from the page it was in the middle of.
        self.assertTrue(kept)
        self.assertEqual(self.sent[self.COUNT - len(kept) :], kept)
        self.assertGreaterEqual(len(first) + len(kept), self.COUNT)
        again, second = self.log_in()
        for _ in range(200):
            if len(second) == len(kept):
                break
            again.transport.drain()
            second += self.received(again.take())
        self.assertEqual(second, kept)
        self.assertEqual(self.kept(), [])

    def test_a_client_dropped_at_the_hard_limit_loses_nothing(self):
        # Room traffic fills bob's queue while kept messages wait for it.
        bob, _ = self.log_in()
        carol = self.world.user("carol")
        for n in range(40):
            carol.command(f"{n:03d} " + "r" * 500)
        self.assertTrue(bob.transport.aborted)
        bob.close()
        self.assertEqual(self.sent[self.COUNT - len(self.kept()) :], self.kept())
        self.assertGreater(len(self.kept()), self.COUNT - KEPT_PAGE)


class RoomCapTests(unittest.TestCase):
    def setUp(self):
        # The lobby is one of the three.
        self.world = ChatWorld(max_rooms=3)
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.bob.command("/c open")
        for room in ("one", "two"):
            self.assertTrue(self.alice.command(f"/c {room}").startswith("+OK"))

    def test_create_past_the_cap_is_refused_and_makes_no_room(self):
        self.assertEqual(
            self.alice.command("/c three"),
            "-ERR too-many-rooms you are in 3 rooms, the most one may be in",
        )
        self.assertNotIn("three", self.world.chat.rooms.by_key)
        rooms = [r.name for r in fired(self.world.chat.store.load_rooms())]
        self.assertNotIn("three", rooms)

    def test_join_past_the_cap_is_refused(self):
        self.assertTrue(self.alice.command("/j open").startswith("-ERR too-many-rooms"))
        self.assertNotIn(
            fired(self.world.chat.store.find_user("alice")).id,
            self.world.chat.rooms.by_key["open"].members,
        )
        self.assertEqual(self.bob.take(), [])

    def test_leaving_a_room_makes_place_for_another(self):
        self.alice.command("/l one")
        self.assertEqual(self.alice.command("/j open"), "+OK joined #open")

    def test_cap_zero_turns_it_off(self):
        world = ChatWorld(max_rooms=0, max_rooms_created=0)
        alice = world.user("alice")
        for n in range(150):
            self.assertTrue(alice.command(f"/c r{n}").startswith("+OK"))


class RoomsCreatedTests(unittest.TestCase):
    """Rooms are never removed yet: how many one account may create is capped."""

    def setUp(self):
        self.world = ChatWorld(max_rooms_created=2)
        self.alice = self.world.user("alice")
        for room in ("one", "two"):
            self.assertTrue(self.alice.command(f"/c {room}").startswith("+OK"))

    def test_create_past_the_cap_is_refused_and_makes_no_room(self):
        self.assertEqual(
            self.alice.command("/c three"),
            "-ERR too-many-rooms-created you have created 2 rooms,"
            " the most one account may create",
        )
        self.assertNotIn("three", self.world.chat.rooms.by_key)
        rooms = [r.name for r in fired(self.world.chat.store.load_rooms())]
        self.assertNotIn("three", rooms)

    def test_leaving_does_not_make_room_for_more(self):
        self.alice.command("/l one")
        self.alice.command("/l two")
        self.assertTrue(
            self.alice.command("/c three").startswith("-ERR too-many-rooms-created")
        )

    def test_others_and_joins_are_not_limited_by_it(self):
        bob = self.world.user("bob")
        self.assertEqual(bob.command("/c bobs"), "+OK created #bobs")
        self.assertEqual(self.alice.command("/j bobs"), "+OK joined #bobs")

    def test_the_admin_is_exempt(self):
        admin = self.world.user("admin", ADMIN_PASSWORD)
        for n in range(5):
            self.assertEqual(admin.command(f"/c staff{n}"), f"+OK created #staff{n}")

    def test_zero_turns_it_off(self):
        world = ChatWorld(max_rooms_created=0)
        alice = world.user("alice")
        for n in range(30):
            self.assertTrue(alice.command(f"/c r{n}").startswith("+OK"))


class RoomsCreatedRaceTests(ServerTestCase):
    """On the threaded pool: two sessions of one account create at once."""

    @async_test
    async def test_racing_creations_cannot_pass_the_cap_together(self):
        self.server.chat.max_rooms_created = 1
        first = await self.server.register("alice")
        second = await self.server.login("alice", "pw-alice")
        replies = await defer.gatherResults(
            [first.send("/c one"), second.send("/c two")]
        )
        finals = sorted(reply[-1].split()[1] for reply in replies)
        self.assertEqual(finals, ["created", "too-many-rooms-created"])


class DrainedTests(unittest.TestCase):
    """IChatClient.drained, how the service paces what it sends."""

    def setUp(self):
        self.world = ChatWorld(limits(output_soft=SOFT, output_hard=HARD))
        self.bob = self.world.user("bob")
        self.bob.transport.bufferSize = SOFT

    def fill(self) -> None:
        self.bob.protocol.notice("x" * (SOFT + 1))

    def test_fires_at_once_while_the_client_keeps_up(self):
        self.assertTrue(fired(self.bob.protocol.drained()))

    def test_fires_once_the_queue_drains(self):
        self.fill()
        results = []
        self.bob.protocol.drained().addCallback(results.append)
        self.assertEqual(results, [])
        self.bob.transport.drain()
        self.assertEqual(results, [True])

    def test_fires_false_when_the_connection_goes_first(self):
        self.fill()
        results = []
        self.bob.protocol.drained().addCallback(results.append)
        self.bob.close()
        self.assertEqual(results, [False])
        self.assertFalse(fired(self.bob.protocol.drained()))

    def test_fires_false_at_the_hard_limit(self):
        self.fill()
        results = []
        self.bob.protocol.drained().addCallback(results.append)
        self.bob.protocol.notice("x" * HARD)
        self.assertTrue(self.bob.transport.aborted)
        self.assertEqual(results, [False])


class RoomCapRaceTests(ServerTestCase):
    """On the threaded pool: two sessions of one account create at once."""

    @async_test
    async def test_racing_creations_cannot_pass_the_cap_together(self):
        self.server.chat.max_rooms = 2
        first = await self.server.register("alice")
        second = await self.server.login("alice", "pw-alice")
        replies = await defer.gatherResults(
            [first.send("/c one"), second.send("/c two")]
        )
        finals = sorted(reply[-1].split()[1] for reply in replies)
        self.assertEqual(finals[0], "created")
        self.assertEqual(finals[1], "too-many-rooms")
        self.assertEqual(len(data_lines(await first.send("/rooms"))), 2)
