"""A throw-away CA for the simulator's HTTPS origins, and a CA bundle clients can trust."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme


@dataclass(frozen=True)
class SandboxTLS:
    """Server context for 127.0.0.1/localhost and the path of the bundle (system roots + sandbox CA)."""

    server_context: ssl.SSLContext
    ca_bundle: Path
    ca_cert: Path


def create_tls(directory: Path) -> SandboxTLS:
    """Mint a CA and a loopback server certificate; write the CA and the combined bundle under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="certauth sandbox")
    server_cert = authority.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca_cert = directory / "sandbox-ca.pem"
    authority.cert_pem.write_to_path(str(ca_cert))
    bundle = directory / "ca-bundle.pem"
    # System roots first so a process pointed at this bundle can still reach real registries.
    bundle.write_bytes(Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + authority.cert_pem.bytes())
    return SandboxTLS(server_context=context, ca_bundle=bundle, ca_cert=ca_cert)
