"""A per-install self-signed TLS certificate, so password logins (Trino) never travel in clear text."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: names the certificate is valid for: the native host and the compose service name
NAMES = ("localhost", "trino")
ADDRESSES = ("127.0.0.1",)


def ensure_certificate(directory: Path, days: int = 825) -> tuple[Path, Path]:
    """Return (key+certificate PEM for the server, certificate PEM for clients), creating them once."""
    server_pem, client_pem = directory / "server.pem", directory / "cert.pem"
    if server_pem.exists() and client_pem.exists():
        return server_pem, client_pem
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lakehouse local")])
    now = dt.datetime.now(dt.UTC)
    san = [x509.DNSName(n) for n in NAMES] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(server_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem + cert_pem)
    client_pem.write_bytes(cert_pem)
    return server_pem, client_pem
