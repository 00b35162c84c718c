"""
The admin's actions in the chat: suspend and restore an account, disconnect
a user, reset a password, broadcast a notice; each is in the activity log,
and each is refused to everyone else.
"""

from twisted.trial import unittest

from chatroom.cluster.messages import Broadcast, SessionsEnded
from chatroom.service import admin
from tests.clients import data_lines
from tests.helpers import ADMIN_PASSWORD, ChatWorld, fired, sqlite_file

SUSPENDED = "-ERR account-suspended this account is suspended: ask the admin"


class AdminActionTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.admin = self.world.user("admin", ADMIN_PASSWORD)

    def log_of(self, name: str) -> list[str]:
        self.admin.write(f"/log {name}")
        return data_lines(self.admin.take())

    def login(self, name: str, password: str = "pw") -> str:
        return self.world.connect().command(f"/login {name} {password}")

    def assertEnded(self, client, reason: str) -> None:
        self.assertEqual(client.take(), [f"* {reason}"])
        self.assertTrue(client.closing)

    # Suspend and restore

    def test_a_suspended_account_is_cut_and_cannot_log_in(self):
        self.assertEqual(self.admin.command("/suspend alice"), "+OK suspended alice")
        self.assertEnded(self.alice, admin.SUSPENDED)
        self.assertNotIn("alice", self.world.chat.online_by_key)
        self.assertEqual(self.login("alice"), SUSPENDED)
        # The stored flag is what login reads: a restart keeps it.
        self.assertTrue(fired(self.world.chat.store.find_user("alice")).suspended)
        self.assertFalse(self.bob.closing)

    def test_a_wrong_password_is_not_told_of_the_suspension(self):
        self.admin.command("/suspend alice")
        self.assertEqual(
            self.login("alice", "wrong"), "-ERR auth-failed wrong name or password"
        )

    def test_a_restored_account_logs_in_again(self):
        self.admin.command("/suspend alice")
        self.assertEqual(self.admin.command("/restore alice"), "+OK restored alice")
        self.assertEqual(self.login("alice"), "+OK welcome, alice")

    def test_suspend_and_restore_are_logged(self):
        self.admin.command("/suspend alice")
        self.login("alice")
        self.admin.command("/restore alice")
        log = self.log_of("alice")
        self.assertTrue(any(" suspend admin alice" in e for e in log), log)
        self.assertTrue(any(" login-refused-suspended alice" in e for e in log), log)
        self.assertTrue(any(" restore admin alice" in e for e in log), log)

    def test_the_admin_account_cannot_be_suspended(self):
        self.assertEqual(
            self.admin.command("/suspend admin"),
            "-ERR permission-denied the admin account cannot be suspended",
        )

    def test_an_unknown_account_is_refused(self):
        for line in ("/suspend nobody", "/restore nobody", "/disconnect nobody"):
            self.assertEqual(
                self.admin.command(line),
                "-ERR no-such-user there is no user called nobody",
            )

    # Disconnect

    def test_disconnect_ends_every_session_and_the_user_may_return(self):
        second = self.world.connect()
        second.command("/login alice pw")
        second.take()
        self.assertEqual(
            self.admin.command("/disconnect alice"), "+OK disconnected alice"
        )
        self.assertEnded(self.alice, admin.DISCONNECTED)
        self.assertEnded(second, admin.DISCONNECTED)
        self.assertEqual(self.login("alice"), "+OK welcome, alice")
        self.assertTrue(
            any(" disconnect admin alice" in e for e in self.log_of("alice"))
        )

    def test_disconnect_of_someone_offline_is_refused(self):
        self.bob.disconnect()
        self.assertEqual(
            self.admin.command("/disconnect bob"), "-ERR no-such-user bob is not online"
        )

    # Reset a password

    def test_a_reset_password_replaces_the_old_and_ends_the_sessions(self):
        self.assertEqual(
            self.admin.command("/resetpass alice new secret"),
            "+OK password of alice reset",
        )
        self.assertEnded(self.alice, admin.PASSWORD_RESET)
        self.assertEqual(self.login("alice"), "-ERR auth-failed wrong name or password")
        self.assertEqual(self.login("alice", "new secret"), "+OK welcome, alice")
        self.assertTrue(
            any(" password-reset admin alice" in e for e in self.log_of("alice"))
        )

    def test_a_bad_new_password_changes_nothing(self):
        reply = self.admin.command("/resetpass alice")
        self.assertTrue(reply.startswith("-ERR bad-arguments"), reply)
        self.assertEqual(self.alice.take(), [])
        self.assertEqual(self.login("alice"), "+OK welcome, alice")

    def test_the_admin_resets_no_password_of_its_own(self):
        reply = self.admin.command("/resetpass admin other")
        self.assertTrue(reply.startswith("-ERR permission-denied"), reply)

    # Broadcast

    def test_a_broadcast_reaches_everyone_online(self):
        self.assertEqual(
            self.admin.command("/broadcast restart at noon"), "+OK broadcast sent"
        )
        for client in (self.alice, self.bob):
            self.assertEqual(client.take(), ["* notice from admin: restart at noon"])
        self.assertTrue(
            any(" broadcast admin restart at noon" in e for e in self.log_of("admin"))
        )

    def test_an_empty_broadcast_is_refused(self):
        self.assertEqual(
            self.admin.command("/broadcast  "),
            "-ERR bad-arguments usage: /broadcast TEXT",
        )
        self.assertEqual(self.alice.take(), [])

    # Only the admin

    def test_each_is_for_the_admin(self):
        for line, name in [
            ("/suspend bob", "suspend"),
            ("/restore bob", "restore"),
            ("/disconnect bob", "disconnect"),
            ("/resetpass bob pw2", "resetpass"),
            ("/broadcast hi", "broadcast"),
        ]:
            self.assertEqual(
                self.alice.command(line),
                f"-ERR permission-denied /{name} is for the admin",
            )
        self.assertEqual(self.bob.take(), [])
        self.assertEqual(self.login("bob"), "+OK welcome, bob")


class RestartTests(unittest.TestCase):
    def test_a_suspension_survives_a_restart(self):
        location = sqlite_file(self)
        world = ChatWorld(location=location)
        world.user("alice")
        admin_client = world.user("admin", ADMIN_PASSWORD)
        self.assertEqual(admin_client.command("/suspend alice"), "+OK suspended alice")
        world = ChatWorld(location=location)
        self.assertEqual(world.connect().command("/login alice pw"), SUSPENDED)
        admin_client = world.user("admin", ADMIN_PASSWORD)
        admin_client.command("/restore alice")
        world = ChatWorld(location=location)
        self.assertEqual(
            world.connect().command("/login alice pw"), "+OK welcome, alice"
        )


class FromOtherNodesTests(unittest.TestCase):
    """What another node's admin did arrives on the bus and is applied here."""

    def setUp(self):
        try:
            from chatroom.cluster.membership import RedisMembershipBus
        except ImportError:
            raise unittest.SkipTest("txredisapi is not installed") from None
        self.world = ChatWorld()
        self.membership = RedisMembershipBus("b", bus=None)
        self.membership.chat = self.world.chat
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")

    def test_sessions_ended_elsewhere_end_here(self):
        user_id = self.world.chat.online_by_key["alice"].id
        self.membership.received(SessionsEnded("a", user_id, admin.SUSPENDED))
        self.assertEqual(self.alice.take(), [f"* {admin.SUSPENDED}"])
        self.assertTrue(self.alice.closing)
        self.assertFalse(self.bob.closing)

    def test_a_broadcast_elsewhere_is_shown_here(self):
        self.membership.received(Broadcast("a", "notice from admin: hi"))
        for client in (self.alice, self.bob):
            self.assertEqual(client.take(), ["* notice from admin: hi"])

    def test_this_node_tells_the_others(self):
        told = []
        self.membership._tell = told.append
        self.world.chat.membership = self.membership
        self.world.chat.broadcast("notice from admin: hi")
        self.world.chat.end_sessions(7, admin.DISCONNECTED)
        self.assertEqual(
            told,
            [
                Broadcast("b", "notice from admin: hi"),
                SessionsEnded("b", 7, admin.DISCONNECTED),
            ],
        )
