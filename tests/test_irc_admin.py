"""The admin's actions from the line protocol hold over IRC too."""

import base64

from tests.helpers import ADMIN_PASSWORD
from tests.test_irc import IRCTestCase, command_of


class SuspendedOverIRCTests(IRCTestCase):
    guests = False

    def setUp(self):
        super().setUp()
        self.world.user("carol", "secret").disconnect()
        admin = self.world.user("admin", ADMIN_PASSWORD)
        self.assertEqual(admin.command("/suspend carol"), "+OK suspended carol")
        self.admin = admin

    def test_pass_is_refused_and_closed(self):
        client = self.register("carol", "PASS secret")
        lines = client.take()
        self.assertEqual(self.commands(lines), ["465", "ERROR"])
        self.assertIn("this account is suspended", lines[0])
        self.assertTrue(client.closing)

    def test_sasl_is_refused(self):
        client = self.connect()
        client.write("CAP LS 302")
        client.write("CAP REQ :sasl")
        client.write("AUTHENTICATE PLAIN")
        client.write("AUTHENTICATE " + base64.b64encode(b"\0carol\0secret").decode())
        lines = client.take()
        self.assertEqual(command_of(lines[-1]), "904")
        self.assertIn("this account is suspended", lines[-1])

    def test_restored_it_logs_in(self):
        self.admin.command("/restore carol")
        client = self.register("carol", "PASS secret")
        self.assertIn("001", self.commands(client.take()))

    def test_a_suspension_ends_an_irc_session(self):
        self.admin.command("/restore carol")
        client = self.register("carol", "PASS secret")
        client.take()
        self.admin.command("/suspend carol")
        lines = client.take()
        self.assertTrue(any("suspended by the admin" in line for line in lines), lines)
        self.assertTrue(client.closing)

    def test_a_broadcast_reaches_irc(self):
        self.admin.command("/restore carol")
        client = self.register("carol", "PASS secret")
        client.take()
        self.admin.command("/broadcast maintenance at noon")
        self.assertEqual(
            [line.split(" ", 3)[1:] for line in client.take()],
            [["NOTICE", "carol", ":notice from admin: maintenance at noon"]],
        )
