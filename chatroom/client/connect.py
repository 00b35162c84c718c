"""
How the client reaches the server and decides to trust it: plain TCP, TLS
verified against a CA, TLS pinned on first use, or TLS unverified.
"""

from typing import Protocol

from OpenSSL import SSL
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IReactorTCP,
    IStreamClientEndpoint,
)
from twisted.internet.ssl import Certificate, CertificateOptions, optionsForClientTLS
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from chatroom.client.pinning import KnownHosts
from chatroom.client.protocol import ChatClientProtocol
from chatroom.tls import fingerprint_sha256

CONNECT_TIMEOUT = 15


class TrustPolicy(Protocol):
    """How to reach a server, and whether to trust it once connected."""

    def endpoint(
        self, reactor: IReactorTCP, host: str, port: int
    ) -> IStreamClientEndpoint: ...

    def accept(self, host: str, port: int, protocol: ChatClientProtocol) -> str | None:
        """Judge the connected server: a note for the user, or raise."""


def _tcp(reactor: IReactorTCP, host: str, port: int) -> IStreamClientEndpoint:
    return HostnameEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)


class PlainTCP:
    """No encryption at all, for a server's plain port."""

    def endpoint(
        self, reactor: IReactorTCP, host: str, port: int
    ) -> IStreamClientEndpoint:
        return _tcp(reactor, host, port)

    def accept(self, host: str, port: int, protocol: ChatClientProtocol) -> None:
        return None


class VerifiedTLS:
    """TLS; the certificate must chain to C{ca_pem} and name the host."""

    def __init__(self, ca_pem: bytes) -> None:
        self._trust_root = Certificate.loadPEM(ca_pem)

    def endpoint(
        self, reactor: IReactorTCP, host: str, port: int
    ) -> IStreamClientEndpoint:
        # service_identity, through optionsForClientTLS, checks the host name
        # during the handshake, so a failure never reaches accept().
        options = optionsForClientTLS(host, trustRoot=self._trust_root)
        return wrapClientTLS(options, _tcp(reactor, host, port))

    def accept(self, host: str, port: int, protocol: ChatClientProtocol) -> None:
        return None


class UnverifiedTLS:
    """TLS that accepts any certificate: encryption without authentication."""

    def endpoint(
        self, reactor: IReactorTCP, host: str, port: int
    ) -> IStreamClientEndpoint:
        return wrapClientTLS(_AnyCertificate(host), _tcp(reactor, host, port))

    def accept(self, host: str, port: int, protocol: ChatClientProtocol) -> None:
        return None


class PinnedTLS(UnverifiedTLS):
    """
    TLS trusted on first use: the certificate's fingerprint must match the
    one pinned in C{known_hosts}, and is pinned if there is none.

    The check runs after the handshake rather than in an OpenSSL verify
    callback: by then the server has proved it holds the certificate's key,
    the certificate is always at hand (verify callbacks do not run on a
    resumed session), and a mismatch is reported plainly rather than as a
    handshake alert. The protocol sends nothing before it passes.
    """

    def __init__(self, known_hosts: KnownHosts) -> None:
        self.known_hosts = known_hosts

    def accept(self, host: str, port: int, protocol: ChatClientProtocol) -> str | None:
        fingerprint = fingerprint_sha256(protocol.peer_certificate_pem())
        if not self.known_hosts.check(host, port, fingerprint):
            return None
        return (
            f"First connection to {host}:{port}: pinned its certificate,\n"
            f"  SHA256 {fingerprint}\n"
            f"in {self.known_hosts.path}. Check it against the fingerprint the "
            "server logged."
        )


@implementer(IOpenSSLClientConnectionCreator)
class _AnyCertificate:
    """TLS client connections that leave judging the certificate to later."""

    def __init__(self, host: str) -> None:
        # TLS 1.2 at least and no certificate verification are the defaults.
        self._context = CertificateOptions().getContext()
        literal_address = isIPAddress(host) or isIPv6Address(host)
        self._server_name = None if literal_address else host.encode("idna")

    def clientConnectionForTLS(
        self, tlsProtocol: TLSMemoryBIOProtocol
    ) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if self._server_name is not None:
            connection.set_tlsext_host_name(self._server_name)
        return connection


async def connect(
    reactor: IReactorTCP, host: str, port: int, policy: TrustPolicy
) -> tuple[ChatClientProtocol, str | None]:
    """
    Connect and judge the server by C{policy}; return the protocol, ready
    for requests, and any note for the user.

    @raise Exception: the connection failed, was cancelled, or the server
        was not trusted; any connection made is aborted.
    """
    endpoint = policy.endpoint(reactor, host, port)
    protocol = await connectProtocol(endpoint, ChatClientProtocol())
    try:
        await protocol.ready
        note = policy.accept(host, port, protocol)
    except BaseException:
        protocol.transport.abortConnection()
        raise
    return protocol, note
