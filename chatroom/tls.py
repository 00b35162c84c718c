"""
TLS helpers shared by the server and the bundled client.

The server generates a self-signed certificate on its first start and reuses
it; clients either pin its SHA-256 fingerprint or verify it against a CA.
Nothing here imports the global reactor.
"""

import datetime
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.endpoints import quoteStringArgument

CERTIFICATE_FILE = "tls-certificate.pem"
KEY_FILE = "tls-key.pem"
VALIDITY = datetime.timedelta(days=3650)
# Tolerates clients whose clocks run a little behind the server's.
CLOCK_SKEW = datetime.timedelta(hours=1)


def load_or_create_certificate(
    data_dir: str | os.PathLike[str], hostname: str = "localhost"
) -> tuple[Path, Path]:
    """
    Return the paths of the PEM certificate and key in C{data_dir}, first
    generating a self-signed pair there if either file is missing.

    The certificate names C{hostname}, C{localhost}, 127.0.0.1 and ::1, so
    clients verifying with C{--ca} can use any of them.
    """
    directory = Path(data_dir)
    cert_path = directory / CERTIFICATE_FILE
    key_path = directory / KEY_FILE
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key goes first: a crash between the two writes leaves no
    # certificate, so the next start makes a fresh, matching pair.
    _write_atomically(key_path, key_pem, mode=0o600)
    certificate = _self_signed_certificate(key, hostname)
    _write_atomically(
        cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644
    )
    return cert_path, key_path


def fingerprint_sha256(cert_pem: bytes) -> str:
    """
    The SHA-256 fingerprint of a PEM certificate as C{openssl x509
    -fingerprint -sha256} shows it: colon-separated uppercase hex pairs.
    """
    certificate = x509.load_pem_x509_certificate(cert_pem)
    return ":".join(f"{byte:02X}" for byte in certificate.fingerprint(hashes.SHA256()))


def check_certificate_and_key(
    cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]
) -> None:
    """
    Raise L{ValueError}, saying what is wrong in one line, unless C{cert_path}
    holds a PEM certificate (chain) and C{key_path} the unencrypted PEM key
    of its first certificate.
    """
    cert_pem, key_pem = _read(cert_path, "--cert"), _read(key_path, "--key")
    try:
        certificate = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise ValueError(f"--cert {cert_path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ValueError(
            f"--key {key_path} holds no unencrypted PEM private key"
        ) from None
    if _public_bytes(key.public_key()) != _public_bytes(certificate.public_key()):
        raise ValueError(
            f"--key {key_path} is not the key of --cert {cert_path}:"
            " give the key the certificate was made for"
        )


def _read(path: str | os.PathLike[str], option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {option} {path}: {e.strerror}") from None


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def server_endpoint_description(
    port: int,
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    interface: str | None = None,
) -> str:
    """
    A C{ssl:} strports description serving the certificate and key on
    C{port}, for C{serverFromString}. Twisted's endpoint parser applies its
    default minimum of TLS 1.2 and its default ciphers.
    """
    parts = [
        f"ssl:{port}",
        f"privateKey={quoteStringArgument(os.fspath(key_path))}",
        f"certKey={quoteStringArgument(os.fspath(cert_path))}",
    ]
    if interface is not None:
        parts.append(f"interface={quoteStringArgument(interface)}")
    return ":".join(parts)


def _self_signed_certificate(
    key: ec.EllipticCurvePrivateKey, hostname: str
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16)) >> 1)
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(_subject_alternative_names(hostname), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _subject_alternative_names(hostname: str) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for entry in (hostname, "localhost", "127.0.0.1", "::1"):
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(entry))
        except ValueError:
            name = x509.DNSName(entry)
        if name not in names:
            names.append(name)
    return x509.SubjectAlternativeName(names)


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    # Written under a temporary name and renamed, so no reader ever sees half
    # a key, and the key is never readable by others, not even briefly.
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(content)
    os.replace(temporary, path)
