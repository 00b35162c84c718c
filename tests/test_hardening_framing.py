"""
Hostile framing and text: lines split anywhere, floods of bytes without a
newline, other protocols on the line port, text that could drive a terminal,
and names that try to pass for someone else.
"""

from OpenSSL import SSL
from twisted.trial import unittest

from chatroom.protocol.framing import MAX_LINE
from tests.clients import final_replies
from tests.helpers import ChatWorld


def client_hello() -> bytes:
    """The first bytes a real TLS client sends."""
    context = SSL.Context(SSL.TLS_METHOD)
    connection = SSL.Connection(context, None)
    connection.set_connect_state()
    try:
        connection.do_handshake()
    except SSL.WantReadError:
        pass
    return connection.bio_read(65536)


class SplitInputTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")

    def test_line_sent_one_byte_at_a_time_arrives_intact(self):
        for byte in "/public lobby héllo wörld ✓\r\n".encode():
            self.alice.write_bytes(bytes([byte]))
        self.assertEqual(self.alice.take(), ["+OK"])
        self.assertEqual(self.bob.take(), ["[lobby] alice: héllo wörld ✓"])

    def test_utf8_character_split_across_reads_arrives_intact(self):
        data = "€ and 😀\n".encode()
        euro_cut, emoji_cut = 1, data.index(b"\xf0") + 2
        self.alice.write_bytes(data[:euro_cut])
        self.alice.write_bytes(data[euro_cut:emoji_cut])
        self.alice.write_bytes(data[emoji_cut:])
        self.assertEqual(self.alice.take(), ["+OK"])
        self.assertEqual(self.bob.take(), ["[lobby] alice: € and 😀"])

    def test_20kb_without_newline_is_refused_without_memory_growth(self):
        for _ in range(20):
            self.alice.write_bytes(b"x" * 1024)
            # What is held for the line never grows past the limit.
            self.assertLessEqual(len(self.alice.protocol._buffer), MAX_LINE + 1)
        self.assertEqual(
            self.alice.take(), ["-ERR line-too-long lines are at most 4096 bytes"]
        )
        self.alice.write_bytes(b"still the long line\n/ping\n")
        self.assertEqual(self.alice.take(), ["+OK pong"])
        self.assertFalse(self.alice.closing)

    def test_20kb_in_one_read_then_a_command(self):
        self.alice.write_bytes(b"y" * 20480 + b"\n/ping\n")
        self.assertEqual(
            final_replies(self.alice.take()),
            ["-ERR line-too-long lines are at most 4096 bytes", "+OK pong"],
        )
        self.assertEqual(self.alice.protocol._buffer, b"")


class OtherProtocolTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()

    def test_http_request_gets_one_error_line_and_a_close(self):
        client = self.world.connect()
        client.take()
        client.write_bytes(b"GET / HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n")
        lines = client.take()
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("-ERR wrong-protocol "), lines)
        self.assertIn("not a web server", lines[0])
        self.assertTrue(client.closing)

    def test_tls_client_hello_gets_one_error_line_and_a_close(self):
        client = self.world.connect()
        client.take()
        client.write_bytes(client_hello())
        lines = client.take()
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("-ERR wrong-protocol "), lines)
        self.assertIn("TLS", lines[0])
        self.assertTrue(client.closing)

    def test_tls_client_hello_one_byte_at_a_time(self):
        client = self.world.connect()
        client.take()
        for byte in client_hello()[:8]:
            client.write_bytes(bytes([byte]))
        self.assertTrue(client.take()[0].startswith("-ERR wrong-protocol"))
        self.assertTrue(client.closing)

    def test_http_words_later_in_a_session_are_only_text(self):
        client = self.world.user("alice")
        self.assertEqual(client.command("GET / HTTP/1.1"), "+OK")
        self.assertFalse(client.closing)


class TextTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")

    def test_bidi_overrides_and_isolates_are_refused(self):
        for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
            reply = self.alice.command(f"/public lobby abc{chr(code)}def")
            self.assertTrue(reply.startswith("-ERR bad-text"), (hex(code), reply))
        self.assertEqual(self.bob.take(), [])

    def test_control_characters_never_reach_another_client(self):
        for code in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]:
            if code == 0x0D:
                continue  # a CR is part of the line end
            reply = self.alice.command(f"/private bob x{chr(code)}y")
            self.assertTrue(reply.startswith("-ERR bad-text"), (hex(code), reply))
        self.assertEqual(self.bob.take(), [])

    def test_tab_is_allowed(self):
        self.assertEqual(self.alice.command("a\tb"), "+OK")
        self.assertEqual(self.bob.take(), ["[lobby] alice: a\tb"])


class NameTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.alice = self.world.user("alice")

    def test_nobody_registers_a_reserved_name_in_any_case(self):
        for name in ["admin", "Admin", "ADMIN", "root", "Server", "system", "private"]:
            client = self.world.connect()
            reply = client.command(f"/register {name} pw")
            self.assertTrue(reply.startswith("-ERR name-taken"), (name, reply))

    def test_nobody_renames_to_admin_in_any_case(self):
        for name in ["admin", "Admin", "aDMIN", "ROOT"]:
            reply = self.alice.command(f"/u {name}")
            self.assertTrue(reply.startswith("-ERR name-taken"), (name, reply))

    def test_rename_to_a_name_that_differs_only_by_case_is_taken(self):
        self.world.user("bob")
        self.assertTrue(self.alice.command("/u BOB").startswith("-ERR name-taken"))
        self.assertTrue(self.alice.command("/u Bob").startswith("-ERR name-taken"))

    def test_register_a_name_that_differs_only_by_case_is_taken(self):
        client = self.world.connect()
        self.assertTrue(
            client.command("/register ALICE pw").startswith("-ERR name-taken")
        )

    def test_changing_the_case_of_your_own_name_is_allowed(self):
        self.assertEqual(self.alice.command("/u ALICE"), "+OK you are now ALICE")

    def test_the_admin_keeps_its_name(self):
        admin = self.world.connect()
        self.assertTrue(admin.command("/login admin admin-secret").startswith("+OK"))
        reply = admin.command("/u boss")
        self.assertTrue(reply.startswith("-ERR permission-denied"), reply)
        # So the next start still finds its admin, and the name stays reserved.
        self.assertTrue(admin.command("/users").startswith("+OK"))

    def test_names_outside_the_rules_are_refused(self):
        for name in ["-x", ".x", "a" * 33, "a b", "é", "a/b", "<b>", "#room"]:
            reply = self.alice.command(f"/u {name}")
            self.assertTrue(reply.startswith("-ERR"), (name, reply))
            self.assertFalse(reply.startswith("+OK"))

    def test_login_with_a_name_outside_the_rules_is_refused_before_any_check(self):
        client = self.world.connect()
        before = len(self.world.hasher.verified)
        reply = client.command("/login a\x1b[31m pw")
        self.assertTrue(reply.startswith("-ERR bad-name"), reply)
        self.assertEqual(len(self.world.hasher.verified), before)


class ArgumentTests(unittest.TestCase):
    def setUp(self):
        self.world = ChatWorld()
        self.alice = self.world.user("alice")

    def test_unicode_digits_are_not_counts(self):
        # "²".isdigit() is true but int("²") raises: that was a server-error.
        for line in ["/history ²", "/history lobby ³", "/log alice ٣"]:
            reply = self.alice.command(line)
            self.assertFalse(reply.startswith("-ERR server-error"), (line, reply))

    def test_huge_counts_are_clamped(self):
        reply = self.alice.command("/history lobby " + "9" * 4000)
        self.assertTrue(reply.startswith("+OK"), reply)
