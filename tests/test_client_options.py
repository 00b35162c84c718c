"""Tests for the chatroom-client command line."""

import io
import sys
from pathlib import Path

from twisted.trial.unittest import TestCase

from chatroom.client.__main__ import build_parser, parse_options, trust_policy
from chatroom.client.connect import PinnedTLS, PlainTCP, UnverifiedTLS, VerifiedTLS
from chatroom.tls import load_or_create_certificate


class OptionsTests(TestCase):
    def test_plain_tcp_on_port_5000_by_default(self) -> None:
        options = parse_options(["chat.example"])
        self.assertEqual(
            (options.host, options.port, options.tls), ("chat.example", 5000, False)
        )
        self.assertIsInstance(trust_policy(options), PlainTCP)

    def test_tls_pins_on_first_use_and_defaults_to_port_5001(self) -> None:
        options = parse_options(["--tls", "chat.example"])
        self.assertEqual(options.port, 5001)
        self.assertIsInstance(trust_policy(options), PinnedTLS)

    def test_ca_implies_tls_and_verifies(self) -> None:
        cert_path, _ = load_or_create_certificate(self.mktemp())
        options = parse_options(["--ca", str(cert_path), "chat.example", "6000"])
        self.assertEqual((options.tls, options.port), (True, 6000))
        self.assertIsInstance(trust_policy(options), VerifiedTLS)

    def test_insecure_implies_tls_without_verification(self) -> None:
        options = parse_options(["--insecure", "chat.example"])
        self.assertIsInstance(trust_policy(options), UnverifiedTLS)

    def usage_error(self, argv: list[str]) -> str:
        self.patch(sys, "stderr", io.StringIO())
        error = self.assertRaises(SystemExit, parse_options, argv)
        self.assertEqual(error.code, 2)
        return sys.stderr.getvalue()

    def test_ca_and_insecure_exclude_each_other(self) -> None:
        message = self.usage_error(["--ca", "x.pem", "--insecure", "h"])
        self.assertIn("not allowed with", message)

    def test_a_missing_ca_file_is_a_usage_error(self) -> None:
        missing = str(Path(self.mktemp()) / "ca.pem")
        self.assertIn("no such file", self.usage_error(["--ca", missing, "h"]))

    def test_help_documents_trust_login_keys_colour_and_exit_status(self) -> None:
        text = build_parser().format_help()
        for topic in (
            "--tls",
            "--ca",
            "--insecure",
            "--user",
            "known_hosts",
            "NO_COLOR",
            "Ctrl-D",
            "/logout",
            "/p",
            "exit status",
            "--e2e-device",
            "--e2e-history",
            "/fingerprint",
            "/trust",
            "/plain",
        ):
            self.assertIn(topic, text)

    def test_e2e_is_on_without_history_and_a_generated_device_by_default(self) -> None:
        options = parse_options(["chat.example"])
        self.assertEqual((options.e2e_device, options.e2e_history), (None, False))
        options = parse_options(["--e2e-device", "pc.1", "--e2e-history", "h"])
        self.assertEqual((options.e2e_device, options.e2e_history), ("pc.1", True))

    def test_a_device_name_off_the_wire_syntax_is_a_usage_error(self) -> None:
        for name in ("has space", "x" * 33, "a/b", ""):
            self.assertIn("--e2e-device", self.usage_error(["--e2e-device", name, "h"]))
