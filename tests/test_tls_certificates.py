"""
Tests for chatroom.tls: the generated certificate, its fingerprint and the
server-side TLS endpoint, over real loopback sockets.
"""

import datetime
import hashlib
import ipaddress
import os
import stat
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    connectProtocol,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.protocol import Factory
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import TestCase

from chatroom import tls
from tests.asynctest import async_test


class Greeter(LineReceiver):
    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.sendLine(b"* welcome")

    def connectionLost(self, reason: object) -> None:
        self.lost.callback(None)


class FirstLine(Greeter):
    def __init__(self) -> None:
        super().__init__()
        self.received: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        pass

    def lineReceived(self, line: bytes) -> None:
        self.received.callback(line)


class CertificateFileTests(TestCase):
    def setUp(self) -> None:
        self.data_dir = self.mktemp()

    def test_first_call_creates_certificate_and_key_in_data_dir(self) -> None:
        cert_path, key_path = tls.load_or_create_certificate(self.data_dir)
        self.assertEqual(cert_path.parent, key_path.parent)
        self.assertEqual(os.fspath(cert_path.parent), self.data_dir)
        self.assertIn(b"BEGIN CERTIFICATE", cert_path.read_bytes())
        self.assertIn(b"BEGIN PRIVATE KEY", key_path.read_bytes())

    def test_key_file_is_readable_by_owner_only(self) -> None:
        _, key_path = tls.load_or_create_certificate(self.data_dir)
        self.assertEqual(stat.S_IMODE(key_path.stat().st_mode), 0o600)

    def test_later_calls_reuse_the_certificate(self) -> None:
        cert_path, key_path = tls.load_or_create_certificate(self.data_dir)
        first = cert_path.read_bytes(), key_path.read_bytes()
        again = tls.load_or_create_certificate(self.data_dir)
        self.assertEqual((cert_path, key_path), again)
        self.assertEqual(first, (cert_path.read_bytes(), key_path.read_bytes()))

    def test_a_missing_key_makes_a_fresh_pair(self) -> None:
        cert_path, key_path = tls.load_or_create_certificate(self.data_dir)
        old_certificate = cert_path.read_bytes()
        key_path.unlink()
        tls.load_or_create_certificate(self.data_dir)
        self.assertTrue(key_path.exists())
        self.assertNotEqual(cert_path.read_bytes(), old_certificate)

    def test_certificate_names_host_localhost_and_loopback_addresses(self) -> None:
        cert_path, _ = tls.load_or_create_certificate(self.data_dir, "chat.example")
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
        self.assertEqual(
            names.get_values_for_type(x509.DNSName), ["chat.example", "localhost"]
        )
        self.assertEqual(
            names.get_values_for_type(x509.IPAddress),
            [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")],
        )

    def test_certificate_is_valid_now_and_for_about_ten_years(self) -> None:
        cert_path, _ = tls.load_or_create_certificate(self.data_dir)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        now = datetime.datetime.now(datetime.UTC)
        self.assertLess(certificate.not_valid_before_utc, now)
        lifetime = certificate.not_valid_after_utc - now
        self.assertGreater(lifetime, datetime.timedelta(days=9 * 365))


class FingerprintTests(TestCase):
    def test_fingerprint_is_uppercase_colon_separated_sha256_of_der(self) -> None:
        cert_path, _ = tls.load_or_create_certificate(self.mktemp())
        pem = cert_path.read_bytes()
        der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
        expected = ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())
        self.assertEqual(tls.fingerprint_sha256(pem), expected)
        self.assertEqual(len(expected.split(":")), 32)


class ServerEndpointTests(TestCase):
    def setUp(self) -> None:
        self.cert_path, self.key_path = tls.load_or_create_certificate(self.mktemp())

    def test_description_escapes_colons_in_paths_and_interface(self) -> None:
        description = tls.server_endpoint_description(
            5001, "/d:1/cert.pem", "/d:1/key.pem", interface="::1"
        )
        self.assertEqual(
            description,
            r"ssl:5001:privateKey=/d\:1/key.pem:certKey=/d\:1/cert.pem"
            r":interface=\:\:1",
        )

    async def _greeting_over_tls(self, endpoint: Any) -> str:
        """Connect trusting the certificate; return the TLS version used."""
        greeters: list[Greeter] = []

        def greeter() -> Greeter:
            greeters.append(Greeter())
            return greeters[-1]

        port = await endpoint.listen(Factory.forProtocol(greeter))
        self.addCleanup(port.stopListening)
        trust = Certificate.loadPEM(self.cert_path.read_bytes())
        client = wrapClientTLS(
            optionsForClientTLS("localhost", trustRoot=trust),
            HostnameEndpoint(reactor, "127.0.0.1", port.getHost().port),
        )
        protocol = await connectProtocol(client, FirstLine())
        self.assertEqual(await protocol.received, b"* welcome")
        version = protocol.transport.getHandle().get_protocol_version_name()
        protocol.transport.loseConnection()
        await protocol.lost
        await greeters[0].lost
        return version

    @async_test
    async def test_description_serves_tls_1_2_or_later_to_a_trusting_client(
        self,
    ) -> None:
        description = tls.server_endpoint_description(
            0, self.cert_path, self.key_path, interface="127.0.0.1"
        )
        version = await self._greeting_over_tls(serverFromString(reactor, description))
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
