"""
Tests for how the client trusts a server: the known_hosts pin store, and
connecting with pinning or --ca verification to a real TLS listener.
"""

import datetime
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL.SSL import Error as TLSError
from service_identity import VerificationError
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import TestCase

from chatroom import tls
from chatroom.client.connect import PinnedTLS, TrustPolicy, VerifiedTLS, connect
from chatroom.client.lines import Notice, Ok, ServerLine
from chatroom.client.pinning import KnownHosts, PinMismatch, default_known_hosts_path
from chatroom.client.protocol import ChatClientProtocol
from tests.asynctest import async_test

FINGERPRINT_A = ":".join(["AA"] * 32)
FINGERPRINT_B = ":".join(["BB"] * 32)


class KnownHostsTests(TestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp()) / "chatroom" / "known_hosts"
        self.store = KnownHosts(self.path)

    def test_default_path_is_under_xdg_config_home(self) -> None:
        self.assertEqual(
            default_known_hosts_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}),
            Path("/x/chatroom/known_hosts"),
        )

    def test_default_path_falls_back_to_dot_config(self) -> None:
        self.assertEqual(
            default_known_hosts_path({"HOME": "/h"}),
            Path("/h/.config/chatroom/known_hosts"),
        )

    def test_first_use_pins_the_fingerprint_in_a_private_file(self) -> None:
        self.assertIsNone(self.store.lookup("Chat.Example", 5001))
        self.assertTrue(self.store.check("Chat.Example", 5001, FINGERPRINT_A))
        self.assertEqual(self.store.lookup("chat.example", 5001), FINGERPRINT_A)
        self.assertEqual(stat.S_IMODE(self.path.stat().st_mode), 0o600)

    def test_matching_fingerprint_passes_without_pinning_again(self) -> None:
        self.store.check("chat.example", 5001, FINGERPRINT_A)
        self.assertFalse(self.store.check("chat.example", 5001, FINGERPRINT_A))
        self.assertEqual(len(self.path.read_text().splitlines()), 1)

    def test_mismatch_is_refused_naming_both_fingerprints_and_the_file(self) -> None:
        self.store.check("chat.example", 5001, FINGERPRINT_A)
        error = self.assertRaises(
            PinMismatch, self.store.check, "chat.example", 5001, FINGERPRINT_B
        )
        for part in (FINGERPRINT_A, FINGERPRINT_B, str(self.path), "chat.example"):
            self.assertIn(part, str(error))

    def test_pins_are_per_port_and_comments_are_ignored(self) -> None:
        self.path.parent.mkdir(parents=True)
        self.path.write_text(f"# mine\nchat.example 5001 {FINGERPRINT_A}  # ok\n")
        self.assertEqual(self.store.lookup("chat.example", 5001), FINGERPRINT_A)
        self.assertIsNone(self.store.lookup("chat.example", 5002))


class RecordingServer(LineReceiver):
    """Greets, answers every line with +OK, and remembers what it got."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.sendLine(b"* welcome to the test server")

    def lineReceived(self, line: bytes) -> None:
        self.received.append(line)
        self.sendLine(b"+OK " + line)

    def connectionLost(self, reason: object) -> None:
        self.lost.callback(None)


def certificate_naming_only(name: str, directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate whose only name is C{name}."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir()
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TLSConnectionTests(TestCase):
    """The client's trust policies against a TLS listener on 127.0.0.1."""

    def setUp(self) -> None:
        self.cert_path, key_path = tls.load_or_create_certificate(self.mktemp())
        self.known_hosts = KnownHosts(Path(self.mktemp()) / "known_hosts")
        return self.listen(self.cert_path, key_path)

    async def _listen(self, cert_path: Path, key_path: Path) -> None:
        self.servers: list[RecordingServer] = []

        def server() -> RecordingServer:
            self.servers.append(RecordingServer())
            return self.servers[-1]

        description = tls.server_endpoint_description(
            0, cert_path, key_path, interface="127.0.0.1"
        )
        port = await serverFromString(reactor, description).listen(
            Factory.forProtocol(server)
        )
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def listen(self, cert_path: Path, key_path: Path) -> Deferred[None]:
        return Deferred.fromCoroutine(self._listen(cert_path, key_path))

    async def connect(
        self, policy: TrustPolicy, host: str = "127.0.0.1"
    ) -> tuple[ChatClientProtocol, str | None]:
        protocol, note = await connect(reactor, host, self.port, policy)
        self.addCleanup(self.disconnect, protocol)
        return protocol, note

    async def _disconnect(self, protocol: ChatClientProtocol) -> None:
        protocol.transport.loseConnection()
        await protocol.closed
        for server in self.servers:
            await server.lost

    def disconnect(self, protocol: ChatClientProtocol) -> Deferred[None]:
        return Deferred.fromCoroutine(self._disconnect(protocol))

    async def refused(self, policy: TrustPolicy, exception: type) -> Exception:
        """Connecting with C{policy} fails; the server got not one line."""
        try:
            await connect(reactor, "127.0.0.1", self.port, policy)
        except exception as error:
            await self.servers[-1].lost
            self.assertEqual(self.servers[-1].received, [])
            return error
        self.fail(f"connecting did not raise {exception}")

    @async_test
    async def test_first_connection_pins_and_shows_the_fingerprint(self) -> None:
        protocol, note = await self.connect(PinnedTLS(self.known_hosts))
        fingerprint = tls.fingerprint_sha256(self.cert_path.read_bytes())
        self.assertIn(fingerprint, note)
        self.assertIn(str(self.known_hosts.path), note)
        self.assertEqual(self.known_hosts.lookup("127.0.0.1", self.port), fingerprint)
        reply = await protocol.request("/ping")
        self.assertEqual(reply.final, Ok("/ping"))

    @async_test
    async def test_server_lines_wait_until_the_connection_is_accepted(self) -> None:
        protocol, _ = await self.connect(PinnedTLS(self.known_hosts))
        events: list[ServerLine] = []
        await protocol.request("/ping")
        protocol.deliver_events_to(events.append)
        self.assertEqual(events, [Notice("welcome to the test server")])

    @async_test
    async def test_matching_pin_connects_quietly(self) -> None:
        fingerprint = tls.fingerprint_sha256(self.cert_path.read_bytes())
        self.known_hosts.check("127.0.0.1", self.port, fingerprint)
        protocol, note = await self.connect(PinnedTLS(self.known_hosts))
        self.assertIsNone(note)
        self.assertEqual((await protocol.request("hi")).final, Ok("hi"))

    @async_test
    async def test_mismatched_pin_is_refused_before_anything_is_sent(self) -> None:
        self.known_hosts.check("127.0.0.1", self.port, FINGERPRINT_A)
        error = await self.refused(PinnedTLS(self.known_hosts), PinMismatch)
        self.assertEqual(error.pinned, FINGERPRINT_A)
        self.assertEqual(
            error.offered, tls.fingerprint_sha256(self.cert_path.read_bytes())
        )

    @async_test
    async def test_ca_verification_accepts_the_server_by_name_and_address(
        self,
    ) -> None:
        policy = VerifiedTLS(self.cert_path.read_bytes())
        for host in ("localhost", "127.0.0.1"):
            protocol, note = await self.connect(policy, host)
            self.assertIsNone(note)
            self.assertEqual((await protocol.request("hi")).final, Ok("hi"))
            await self.disconnect(protocol)

    @async_test
    async def test_ca_verification_refuses_a_certificate_from_another_ca(
        self,
    ) -> None:
        other_cert, _ = tls.load_or_create_certificate(self.mktemp())
        await self.refused(VerifiedTLS(other_cert.read_bytes()), TLSError)

    @async_test
    async def test_ca_verification_refuses_a_certificate_for_another_host(
        self,
    ) -> None:
        cert_path, key_path = certificate_naming_only(
            "elsewhere.example", Path(self.mktemp())
        )
        await self.listen(cert_path, key_path)
        await self.refused(VerifiedTLS(cert_path.read_bytes()), VerificationError)
