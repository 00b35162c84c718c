"""
Renames and password changes: a former name stays its account's until an
admin releases it, and of two password changes at once exactly one wins.
"""

from twisted.internet import defer
from twisted.trial import unittest

from chatroom.auth import hash_password
from tests.clients import data_lines, final_replies
from tests.helpers import ADMIN_PASSWORD, BCRYPT_ROUNDS, ChatWorld, fired

KEPT = "-ERR name-taken alice was another account's name and is kept for it"


class FormerNameTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.alice = self.world.user("alice")
        self.assertEqual(self.alice.command("/u alicia"), "+OK you are now alicia")

    def admin(self):
        return self.world.user("admin", ADMIN_PASSWORD)

    def test_nobody_else_may_register_a_former_name(self):
        client = self.world.connect()
        self.assertEqual(client.command("/register alice pw"), KEPT)
        self.assertEqual(
            client.command("/register ALICE pw"), KEPT.replace("alice", "ALICE", 1)
        )
        self.assertIsNone(fired(self.world.chat.store.find_user("alice")))

    def test_the_interactive_form_refuses_it_before_the_password(self):
        client = self.world.connect()
        self.assertEqual(client.command("alice"), KEPT)
        self.assertEqual(client.command("/ping"), "+OK pong")

    def test_nobody_else_may_rename_to_it(self):
        bob = self.world.user("bob")
        self.assertEqual(bob.command("/u alice"), KEPT)
        self.assertEqual(bob.command("/u bobby"), "+OK you are now bobby")

    def test_a_former_name_does_not_log_in(self):
        client = self.world.connect()
        self.assertEqual(
            client.command("/login alice pw"), "-ERR auth-failed wrong name or password"
        )
        self.assertEqual(
            self.world.connect().command("/login alicia pw"), "+OK welcome, alicia"
        )

    def test_the_account_may_take_it_back_and_keeps_the_other(self):
        self.assertEqual(self.alice.command("/u Alice"), "+OK you are now Alice")
        self.assertEqual(
            self.world.connect().command("/register alicia pw"),
            KEPT.replace("alice", "alicia", 1),
        )

    def test_the_admins_log_of_a_former_name_is_the_accounts(self):
        entries = data_lines(self._log("alice"))
        self.assertTrue(any(" rename alicia from alice" in e for e in entries), entries)

    def _log(self, name: str) -> list[str]:
        admin = self.admin()
        admin.write(f"/log {name}")
        return admin.take()

    def test_the_admin_may_release_it(self):
        admin = self.admin()
        self.assertEqual(admin.command("/release alice"), "+OK released alice")
        self.assertEqual(
            self.world.connect().command("/register alice pw"), "+OK welcome, alice"
        )
        # The release is in the log of the account that kept the name.
        admin.write("/log alicia")
        self.assertTrue(
            any("name-released admin alice" in line for line in admin.take())
        )

    def test_release_of_a_name_nobody_keeps_is_refused(self):
        admin = self.admin()
        self.assertEqual(
            admin.command("/release alicia"),
            "-ERR no-such-user alicia is not a former name of any account",
        )
        self.assertEqual(
            admin.command("/release nobody"),
            "-ERR no-such-user nobody is not a former name of any account",
        )

    def test_release_is_for_the_admin(self):
        self.assertEqual(
            self.alice.command("/release alice"),
            "-ERR permission-denied /release is for the admin",
        )
        self.assertIn("/release NAME", "\n".join(data_lines(self._help(self.admin()))))
        self.assertNotIn("/release", "\n".join(data_lines(self._help(self.alice))))

    @staticmethod
    def _help(client) -> list[str]:
        client.write("/help")
        return client.take()

    def test_a_change_of_case_keeps_no_former_name(self):
        self.assertEqual(self.alice.command("/u Alicia"), "+OK you are now Alicia")
        self.assertEqual(
            self.admin().command("/release alicia"),
            "-ERR no-such-user alicia is not a former name of any account",
        )


class FormerNameRaceTests(unittest.TestCase):
    """The gate checks before the hash; the write checks again, in its transaction."""

    def test_a_name_that_became_a_former_name_meanwhile_is_not_taken(self):
        world = ChatWorld()
        held: defer.Deferred = defer.Deferred()
        hash_now = world.hasher.hash
        self.patch(
            world.hasher,
            "hash",
            lambda password, party=None: (
                held if password == "late" else hash_now(password)
            ),
        )
        newcomer = world.connect("10.0.0.2")
        # Past the gate (alice is free), waiting for its hash.
        newcomer.write("/register alice late")
        self.assertEqual(newcomer.take(), [])
        # Meanwhile someone else takes alice and gives it up (a second
        # registration of it would wait for none: the gate holds the name).
        quick = world.user("quick")
        self.assertEqual(quick.command("/u alice"), "+OK you are now alice")
        self.assertEqual(quick.command("/u alicia"), "+OK you are now alicia")
        held.callback(hash_password("late", BCRYPT_ROUNDS))
        self.assertEqual(final_replies(newcomer.take()), [KEPT])
        self.assertIsNone(fired(world.chat.store.find_user("alice")))
        holder = fired(world.chat.store.find_name_holder("alice"))
        self.assertEqual(holder.user_id, fired(world.chat.store.find_user("alicia")).id)


class PasswordChangeRaceTests(unittest.TestCase):
    def test_of_two_changes_at_once_one_wins_and_the_other_is_told(self):
        world = ChatWorld()
        first = world.user("alice", "old")
        second = world.user("alice", "old")
        held: list[tuple[str, defer.Deferred]] = []

        def hash_later(password, party=None):
            held.append((password, defer.Deferred()))
            return held[-1][1]

        self.patch(world.hasher, "hash", hash_later)
        # Both old passwords check out against the same stored hash.
        first.write("/p old new-one")
        second.write("/p old new-two")
        self.assertEqual([password for password, _ in held], ["new-one", "new-two"])
        for password, d in held:
            d.callback(hash_password(password, BCRYPT_ROUNDS))
        self.assertEqual(final_replies(first.take()), ["+OK password changed"])
        self.assertEqual(
            final_replies(second.take()),
            ["-ERR auth-failed the password was changed meanwhile: try again"],
        )
        self.assertEqual(
            world.connect().command("/login alice new-one"), "+OK welcome, alice"
        )
        self.assertTrue(
            world.connect().command("/login alice new-two").startswith("-ERR")
        )
