"""
A server operator's status is vouched for by its operator account's
password: it ends, on every node, as that account's password or name
changes (a leaked password changed must take what it gave with it).
"""

from __future__ import annotations

from tests.clients import MemoryClient
from tests.helpers import ADMIN_PASSWORD
from tests.test_irc_misc import IRCCase


class OperatorRevocationTests(IRCCase):
    def setUp(self):
        super().setUp()
        self.opal = self.world.user("opal", "opal-secret")
        self.opal_id = self.world.chat.online_by_key["opal"].id

    def oper(self, nick: str, password: str = "opal-secret") -> MemoryClient:
        client = self.welcomed(nick)
        client.write(f"OPER opal {password}")
        self.assertEqual(self.commands(client.take()), ["381", "MODE"])
        return client

    def assert_no_operator(self, client: MemoryClient, lines: list[str]) -> None:
        (mode,) = self.only(lines, "MODE")
        self.assertEqual(mode.params, [client.protocol.nick, "-o"])
        self.assertIsNone(client.protocol.avatar.operator)
        self.assertNotIn(client.protocol, self.irc.operators)
        victim = self.welcomed("victim")
        client.write("KILL victim :gone")
        self.assertEqual(self.commands(client.take()), ["481"])
        self.assertFalse(victim.closing)
        client.write("WALLOPS :still here?")
        self.assertEqual(self.commands(client.take()), ["481"])

    def test_changing_the_oper_accounts_password_ends_operator_status(self):
        mallory = self.oper("mallory")
        # The owner notices the leak and changes the password.
        self.assertTrue(
            self.opal.command("/p opal-secret new-secret").startswith("+OK")
        )
        lines = mallory.take()
        self.assertIn("password was changed", self.only(lines, "NOTICE")[0].params[1])
        self.assert_no_operator(mallory, lines)
        mallory.write("LUSERS")
        (ops,) = self.only(mallory.take(), "252")
        self.assertEqual(ops.params[1], "0")

    def test_the_revocation_during_a_labeled_command_is_not_its_reply(self):
        mallory = self.oper("mallory")
        mallory.write("CAP REQ :labeled-response batch")
        mallory.take()
        conn = mallory.protocol
        conn._label, conn._replies = "c1", []  # as while a command runs
        self.world.chat.apply_password_changed(self.opal_id)
        lines = mallory.take()
        self.assertEqual(self.commands(lines), ["NOTICE", "MODE"])
        self.assertFalse(any(line.startswith("@") for line in lines), lines)

    def test_a_change_on_another_node_ends_it_here(self):
        mallory = self.oper("mallory")
        # What a node runs as the membership bus tells it of the change.
        self.world.chat.apply_password_changed(self.opal_id)
        self.assert_no_operator(mallory, mallory.take())

    def test_renaming_the_oper_account_ends_it(self):
        self.opal.disconnect()
        opal = self.connect()
        for line in ("PASS opal-secret", "NICK opal", "USER opal 0 * :Opal"):
            opal.write(line)
        opal.write("OPER opal opal-secret")
        self.assertIn("381", self.commands(opal.take()))
        olga = self.oper("olga")
        # OPER named the account by its name: renamed, it vouches no more.
        opal.write("NICK opaline")
        lines = opal.take()
        # Shown as it happens, to the nick the client had then.
        self.assertEqual(self.commands(lines)[-2:], ["MODE", "NICK"])
        self.assertEqual(self.only(lines, "MODE")[0].params, ["opal", "-o"])
        self.assertIsNone(opal.protocol.avatar.operator)
        self.assert_no_operator(olga, olga.take())

    def test_a_change_of_case_is_no_rename_of_the_operator_account(self):
        mallory = self.oper("mallory")
        self.assertEqual(self.opal.command("/u Opal"), "+OK you are now Opal")
        self.assertEqual(mallory.take(), [])
        self.assertEqual(mallory.protocol.avatar.operator, "Opal")
        self.assertIn(mallory.protocol, self.irc.operators)

    def test_a_rename_on_another_node_ends_it_here(self):
        mallory = self.oper("mallory")
        self.world.chat.apply_renamed(self.opal_id, "opaline")
        self.assert_no_operator(mallory, mallory.take())

    def test_other_operators_keep_theirs(self):
        mallory = self.oper("mallory")
        admin = self.welcomed("alice")
        admin.write(f"OPER admin {ADMIN_PASSWORD}")
        admin.take()
        self.world.chat.apply_password_changed(self.opal_id)
        mallory.take()
        self.assertEqual(admin.take(), [])
        self.assertEqual(admin.protocol.avatar.operator, "admin")
        self.assertIn(admin.protocol, self.irc.operators)
