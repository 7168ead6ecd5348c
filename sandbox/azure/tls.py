"""A throw-away CA for the simulator's HTTPS origins, and a CA bundle clients can trust.

The CA is kept in the state directory and reused when it is already there: clients that load their
trust store once at start (aiohttp builds its default SSL context at import) keep trusting a
simulator that restarts, and a test session can make the CA before any client library is imported.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme

CA_CERT = "sandbox-ca.pem"
CA_KEY = "sandbox-ca.key"
BUNDLE = "ca-bundle.pem"


@dataclass(frozen=True)
class SandboxTLS:
    """Server context for 127.0.0.1/localhost and the path of the bundle (system roots + sandbox CA)."""

    server_context: ssl.SSLContext
    ca_bundle: Path
    ca_cert: Path


def ensure_ca(directory: Path) -> trustme.CA:
    """Load the CA kept in `directory`, or mint one and write it with the bundle (system roots + CA)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        return trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
    authority = trustme.CA(organization_name="certauth sandbox")
    key_path.touch(mode=0o600)
    os.chmod(key_path, 0o600)
    authority.private_key_pem.write_to_path(str(key_path))
    authority.cert_pem.write_to_path(str(cert_path))
    # System roots first so a process pointed at this bundle can still reach real registries.
    (directory / BUNDLE).write_bytes(Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n"
                                     + authority.cert_pem.bytes())
    return authority


def create_tls(directory: Path) -> SandboxTLS:
    """The CA (kept or new) and a loopback server certificate it signs."""
    authority = ensure_ca(directory)
    server_cert = authority.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return SandboxTLS(server_context=context, ca_bundle=directory / BUNDLE, ca_cert=directory / CA_CERT)
