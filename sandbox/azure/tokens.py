"""Access tokens the sandbox issues, and the client assertions it checks.

Access tokens are RS256 JWTs signed by a key the simulator makes at start (published at the tenant's
`jwks_uri`). Their lifetimes, and the validity of client assertions and keyCredentials, are judged on
the sandbox clock, never the wall clock.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.clock import Clock

ACCESS_TOKEN_LIFETIME = 3599
# appidacr / azpacr: how the client authenticated. "0 public client, 1 client secret, 2 client certificate"
# (learn.microsoft.com/entra/identity-platform/access-token-claims-reference).
PUBLIC_CLIENT, CLIENT_SECRET, CLIENT_CERTIFICATE = "0", "1", "2"
ALLOWED_ASSERTION_ALGORITHMS = ("RS256", "PS256")


def b64url_nopad(data: bytes) -> str:
    """base64url without padding (JWT style)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenRejected(Exception):
    """A bearer token that a resource must refuse (401 InvalidAuthenticationToken)."""


@dataclass(frozen=True)
class Caller:
    """Who made a request, from a verified access token."""

    tenant_id: str
    object_id: str   # the service principal's object id (oid)
    app_id: str
    roles: tuple[str, ...]
    audience: str
    claims: dict


class TokenIssuer:
    """Signs and verifies the sandbox's access tokens."""

    def __init__(self, clock: Clock, login_url: str) -> None:
        self.clock = clock
        self.login_url = login_url.rstrip("/")
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = b64url_nopad(hashlib.sha1(self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest())

    def issuer(self, tenant_id: str) -> str:
        """The `iss` of app-only v1 tokens, as Graph and Key Vault receive them."""
        return f"https://sts.windows.net/{tenant_id}/"

    def issue(self, *, tenant_id: str, object_id: str, app_id: str, audience: str, roles: list[str],
              client_auth: str = CLIENT_CERTIFICATE, lifetime: int = ACCESS_TOKEN_LIFETIME,
              issuer: str | None = None) -> tuple[str, int]:
        """An app-only access token and its expiry (sandbox epoch seconds). A v2.0 `issuer` (ending in /v2.0)
        makes a v2.0 token. The claims reference: `appid` / `appidacr` are "only present in v1.0 tokens",
        `azp` / `azpacr` "only present in v2.0 tokens"; a v2.0 `iss` ends in /v2.0."""
        now = int(self.clock.epoch())
        issuer = issuer or self.issuer(tenant_id)
        claims = {"aud": audience, "iss": issuer, "iat": now, "nbf": now, "exp": now + lifetime,
                  "aio": uuid.uuid4().hex}
        if issuer.rstrip("/").endswith("/v2.0"):
            claims |= {"azp": app_id, "azpacr": client_auth, "ver": "2.0"}
        else:
            claims |= {"appid": app_id, "appidacr": client_auth, "idp": self.issuer(tenant_id), "ver": "1.0"}
        claims |= {"idtyp": "app", "oid": object_id, "sub": object_id, "tid": tenant_id,
                   "uti": uuid.uuid4().hex[:22], "roles": sorted(roles)}
        if not roles:
            del claims["roles"]  # Entra omits an empty roles claim
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})
        return token, now + lifetime

    def _decode(self, token: str, failure: str) -> dict:
        """The claims of a token this sandbox signed; times are checked by the caller on the sandbox clock."""
        try:
            return jwt.decode(token, self._key.public_key(), algorithms=["RS256"],
                              options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                       "verify_aud": False})
        except jwt.PyJWTError as exc:
            raise TokenRejected(failure) from exc

    def verify_federated(self, token: str) -> dict:
        """Signature and lifetime of a sandbox-issued token presented as a federated assertion."""
        claims = self._decode(token, "signature validation failed")
        if self.clock.epoch() >= claims["exp"]:
            raise TokenRejected("the assertion is expired")
        return claims

    def verify(self, token: str, audiences: set[str]) -> Caller:
        """Check signature, audience and lifetime (sandbox clock); return the caller."""
        claims = self._decode(token, "IDX10511: Signature validation failed.")
        if claims.get("aud") not in audiences:
            raise TokenRejected("Invalid audience.")
        now = self.clock.epoch()
        if now >= claims["exp"]:
            raise TokenRejected("Lifetime validation failed, the token is expired.")
        if now + 300 < claims["nbf"]:  # Entra allows five minutes of clock skew
            raise TokenRejected("Lifetime validation failed, the token is not yet valid.")
        return Caller(tenant_id=claims["tid"], object_id=claims["oid"], app_id=claims.get("appid") or claims["azp"],
                      roles=tuple(claims.get("roles", ())), audience=claims["aud"], claims=claims)

    def jwks(self) -> dict:
        """The public key set (jwks_uri)."""
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "x5t": self.kid, "use": "sig"})
        return {"keys": [jwk]}


def certificate_thumbprints(der: bytes) -> tuple[str, str]:
    """(SHA-1, SHA-256) thumbprints of a DER certificate, base64url without padding (x5t, x5t#S256)."""
    return b64url_nopad(hashlib.sha1(der).digest()), b64url_nopad(hashlib.sha256(der).digest())


def load_der_certificate(der: bytes) -> x509.Certificate:
    """Parse DER X.509 (raises ValueError when it is not a certificate)."""
    return x509.load_der_x509_certificate(der)


def unverified_header(token: str) -> dict:
    """A JWT's header without checking anything (raises jwt.DecodeError on garbage)."""
    return jwt.get_unverified_header(token)


def verify_with_certificate(token: str, certificate: x509.Certificate, algorithms: tuple[str, ...] =
                            ALLOWED_ASSERTION_ALGORITHMS) -> dict:
    """Verify a JWT signed with the certificate's private key; returns the claims, no time checks."""
    return jwt.decode(token, certificate.public_key(), algorithms=list(algorithms),
                      options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                               "verify_aud": False, "verify_iss": False})
