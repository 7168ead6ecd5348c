"""Key rotation of an onboarded app (issue 11 item 5) as idempotent steps over JSON-safe dicts.

The app rolls its own key: Graph's addKey / removeKey need no permission when the app calls them with its own
app-only token, given a proof-of-possession JWT signed by a currently valid key of the app
(learn.microsoft.com/graph/api/application-addkey, learn.microsoft.com/graph/application-rollkey-prooftoken).
Both the token's client assertion and the proof are signed inside Key Vault, so a non-exportable key never
leaves it. That works for apps of either method: the manual method's verifier has no Graph write permission.

Each step reads before it writes, so a retried activity changes nothing twice; like shared/onboarding.py, a step
never raises (the one classifier judges what it raised). Nothing returns or logs key material or tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from . import catalog
from .credentials import keyvault_signed_assertion, onboarded_app_credential
from .failures import Permanent, Transient
from .graph import Directory, OffLoopCredential, directory_for, graph_client
from .keyvault import CertificateInfo, CreationPending, certificate_name
from .onboarding import DEFAULT_CSR_VALIDITY_MONTHS, Onboarding, certificate_subject, parse_time, step_outcome
from .settings import Settings

log = logging.getLogger(__name__)

# The proof's audience is Azure AD Graph's app id, whatever the cloud (application-rollkey-prooftoken).
PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
# "The lifetime of the proof token must not exceed 10 minutes" (application-rollkey-prooftoken).
PROOF_LIFETIME_SECONDS = 600
ROTATION_PREFIX = "rotation-"
MANUAL_ACTION = "manualActionNeeded"
# Rotation states on the onboarding record's `Rotation` field (read by the expiry monitor).
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rotation_instance_id(onboarding_id: str) -> str:
    """The rotation's deterministic Durable instance id: one rotation per onboarding (its certificate) at a time."""
    return f"{ROTATION_PREFIX}{onboarding_id}"


def proof_token(application_object_id: str, certificate_der: bytes, sign: Callable[[bytes], bytes],
                now: int) -> str:
    """The proof-of-possession JWT for addKey / removeKey: RS256 by the key of `certificate_der` (through `sign`,
    which gets the SHA-256 digest of the signing input), aud Azure AD Graph, iss the application's object id,
    valid 10 minutes from `now` (epoch seconds), base64url without padding."""
    header = {"alg": "RS256", "typ": "JWT", "x5t": _b64url(hashlib.sha1(certificate_der).digest())}
    claims = {"aud": PROOF_AUDIENCE, "iss": application_object_id, "nbf": now, "exp": now + PROOF_LIFETIME_SECONDS}
    signing_input = (f"{_b64url(json.dumps(header, separators=(',', ':')).encode())}."
                     f"{_b64url(json.dumps(claims, separators=(',', ':')).encode())}")
    return f"{signing_input}.{_b64url(sign(hashlib.sha256(signing_input.encode()).digest()))}"


def rotation_request(onboarding_id: str, record: dict) -> dict:
    """The onboarding request (the steps' input) rebuilt from a completed onboarding's record."""
    options = _loads(record.get("CertificateOptions"))
    return {"onboardingId": onboarding_id, "tenantId": record["TenantId"], "serviceMailbox": record["ServiceMailbox"],
            "method": record.get("Method") or "automatic", "permissionProfile": record.get("PermissionProfile"),
            "directoryRole": _role_key(record.get("DirectoryRole")), "certificate": options}


def _role_key(value: str | None) -> str | None:
    """The catalog key of the record's DirectoryRole: the request's key, or the display name the automatic method's
    role step writes there."""
    if not value:
        return None
    if value in catalog.DIRECTORY_ROLES:
        return value
    return next((key for key, role in catalog.DIRECTORY_ROLES.items() if role.display_name == value), value)


def source_of(options: dict) -> str:
    """Where the onboarding's certificate comes from: keyVault, imported (a PFX) or customerCa (a CSR)."""
    return "imported" if options.get("imported") else "customerCa" if options.get("issuer") else "keyVault"


def manual_action(kind: str, detail: str, links: dict | None = None) -> dict:
    """A step's result when only a person can go on (the rotation ends in state manualActionNeeded)."""
    return {"ok": True, MANUAL_ACTION: {"kind": kind, "detail": detail, "links": links or {}}}


def _loads(text) -> dict:
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class Rotation(Onboarding):
    """The rotation steps of one onboarding (the request rebuilt by rotation_request)."""

    def __init__(self, settings: Settings, request: dict, store=None) -> None:
        super().__init__(settings, request, store)
        self.method = request.get("method") or "automatic"

    # -- identities -------------------------------------------------------------------------------------------
    def _reader(self) -> Directory:
        """Graph as the product's identity that may read the app: the provisioner, or the manual method's verifier."""
        if self.method == "manual":
            from .verify import verifier_directory

            return verifier_directory(self.settings, self.tenant_id)
        return directory_for(self.settings, self.tenant_id)

    def _signer(self, certificate: CertificateInfo) -> Callable[[bytes], bytes]:
        vault = self._vault()
        der = base64.b64decode(certificate.cer)  # its public key: the vault's client needs no read of the key
        return lambda digest: vault.sign(certificate.key_id, "RS256", digest, der)

    def _as_app(self, app_id: str, certificate: CertificateInfo) -> Directory:
        """Graph as the onboarded app itself, its client assertion signed in Key Vault by `certificate`'s key."""
        assertion = keyvault_signed_assertion(self.settings, self.tenant_id, app_id, base64.b64decode(certificate.cer),
                                              self._signer(certificate))
        credential = onboarded_app_credential(self.settings, self.tenant_id, app_id, assertion)
        return Directory(graph_client(self.settings, OffLoopCredential(credential)))

    # -- 0. what rotates --------------------------------------------------------------------------------------
    @step_outcome("rotation")
    def begin(self, record: dict | None = None) -> dict:
        """The onboarding's app and current certificate (the record's thumbprint, read from Key Vault). `record` is
        the onboarding record when the caller has just read it (else it is read here)."""
        if record is None:
            stored = self.store.get_onboarding(self.id)
            record = stored.entity if stored else {}
        if record.get("Status") != "completed" or not record.get("Thumbprint") or not record.get("AppId"):
            raise Permanent(409, "OnboardingNotCompleted", f"onboarding {self.id} is not completed with a certificate "
                            f"(status {record.get('Status')!r}): only a completed onboarding rotates")
        old = self._vault().version_with_thumbprint(certificate_name(self.id), record["Thumbprint"])
        if old is None:
            raise Permanent(404, "CertificateNotFound", f"the certificate {record['Thumbprint']} of onboarding "
                            f"{self.id} is not in Key Vault")
        return {"ok": True, "application": {"appId": record["AppId"],
                                            "applicationObjectId": record.get("ApplicationObjectId")},
                "old": old.to_json()}

    # -- 1. the new Key Vault version ---------------------------------------------------------------------------
    @step_outcome("certificate")
    def new_certificate(self, old: dict, options: dict, now: datetime) -> dict:
        """A new version with the same policy, or the options asked for; a customer's certificate gets a manual
        action instead (a new CSR for its CA, or a request for a new PFX)."""
        stored = self.request["certificate"] or {}
        source = source_of(stored)
        name = certificate_name(self.id)
        vault = self._vault()
        base = f"/api/onboardings/{self.id}"
        if source == "imported":
            latest = vault.current(name)
            if latest is None or latest.version == old["version"]:
                return manual_action("newPfx", "the certificate was imported from a PFX, which certauth can't renew: "
                                     f"POST {base}/rotate with the new certificate's PFX ({{\"pfx\": <base64>, "
                                     "\"password\": ...}), and the rotation puts it on the app",
                                     {"rotateUrl": f"{base}/rotate"})
            # The rotate request imported the new PFX as the next version.
            self.progress("rotation.certificate", {}, "rotation.certificateImported",
                          {"Thumbprint": latest.thumbprint, "Replaces": old["thumbprint"]})
            return {"ok": True, "certificate": latest.to_json(), "created": False}
        if source == "customerCa":
            latest = vault.current(name)
            if latest is not None and latest.version != old["version"]:
                # The rotate request merged the CA's certificate for the rotation's CSR: the next version.
                self.progress("rotation.certificate", {}, "rotation.certificateMerged",
                              {"Thumbprint": latest.thumbprint, "Replaces": old["thumbprint"]})
                return {"ok": True, "certificate": latest.to_json(), "created": False}
            if vault.csr_state(name).status != "pending":
                vault.request_csr(name, certificate_subject(self.settings, self.mailbox),
                                  stored.get("validityMonths") or DEFAULT_CSR_VALIDITY_MONTHS,
                                  options.get("keySize") or stored.get("keySize") or 2048)
            return manual_action("signCsr", "the certificate comes from the customer's CA, which certauth can't renew: "
                                 f"have the new CSR (GET {base}/csr) signed, then POST {base}/rotate with "
                                 '{"signedCertificate": <PEM>}, and the rotation puts it on the app',
                                 {"csrUrl": f"{base}/csr", "rotateUrl": f"{base}/rotate"})
        current = CertificateInfo(**old)
        try:
            info, created = vault.renew(name, current.version, certificate_subject(self.settings, self.mailbox),
                                        options["validityMonths"], options["keySize"], options["exportable"], now)
        except CreationPending as pending:
            raise Transient(str(pending), code="CertificateCreationPending") from None
        self.progress("rotation.certificate", {}, "rotation.certificateCreated" if created else
                      "rotation.certificateReused", {"Thumbprint": info.thumbprint, "Replaces": current.thumbprint})
        return {"ok": True, "certificate": info.to_json(), "created": created}

    # -- 2. addKey with the current key's proof ---------------------------------------------------------------------
    @step_outcome("application")
    async def add_key(self, application: dict, old: dict, new: dict, now: datetime) -> dict:
        """Put the new key on the app: addKey as the app with a proof by the current key; when every key has
        expired, a PATCH by the provisioner, or a manual action naming the fix."""
        old_info, new_info = CertificateInfo(**old), CertificateInfo(**new)
        object_id = application["applicationObjectId"]
        keys = await self._reader().key_credentials(object_id)
        if any(k["thumbprint"] == new_info.thumbprint for k in keys):
            return {"ok": True, "keyAdded": False, "via": "exists"}
        der = base64.b64decode(new_info.cer)
        not_before, not_after = parse_time(new_info.not_before), parse_time(new_info.not_after)
        display_name = f"certauth {new_info.thumbprint}"
        current = [k for k in keys if k["thumbprint"] == old_info.thumbprint and _aware(k["endDateTime"]) > now]
        if not current:
            if self.method == "automatic":
                # No valid key signs a proof any more: only a PATCH by an identity with write permission works.
                added = await directory_for(self.settings, self.tenant_id).ensure_certificate_key(
                    object_id, der, not_before, not_after, display_name)
                await self.aprogress("rotation.application", {}, "rotation.keyPatched",
                                     {"Thumbprint": new_info.thumbprint})
                return {"ok": True, "keyAdded": added, "via": "patch"}
            return manual_action("regenerateScript", (
                f"every key of app {application['appId']} has expired, so it can't add its new key itself (addKey "
                f"needs a proof by a valid key) and certauth holds no write permission in this tenant: download the "
                f"regenerated script (GET /api/onboardings/{self.id}/script) and have an admin run it; it adds the new "
                f"key {new_info.thumbprint}"), {"scriptUrl": f"/api/onboardings/{self.id}/script"})
        proof = proof_token(object_id, base64.b64decode(old_info.cer), self._signer(old_info),
                            _epoch(datetime.now(UTC)))
        key_id = await self._as_app(application["appId"], old_info).add_key(object_id, der, not_before, not_after,
                                                                           display_name, proof)
        await self.aprogress("rotation.application", {}, "rotation.keyAdded",
                             {"Thumbprint": new_info.thumbprint, "KeyId": key_id})
        return {"ok": True, "keyAdded": True, "via": "addKey", "keyId": key_id}

    # -- 4. records --------------------------------------------------------------------------------------------------
    @step_outcome("record")
    def record_new_certificate(self, old: dict, new: dict, options: dict, rotation: dict) -> dict:
        """The certificate record, the onboarding record and the audit carry the new key."""
        info = CertificateInfo(**new)
        self.store.upsert_certificate(self.id, {
            "TenantId": self.tenant_id, "ServiceMailbox": self.mailbox, "CertificateName": info.name,
            "Version": info.version, "Thumbprint": info.thumbprint, "NotBefore": parse_time(info.not_before),
            "NotAfter": parse_time(info.not_after), "Exportable": info.exportable})
        stored = self.request["certificate"] or {}
        # Key options belong to Key Vault's own certificates; a customer's certificate keeps its source's options.
        stored_options = {**stored, **options} if source_of(stored) == "keyVault" else stored
        self.progress("rotation.record", {
            "CertificateName": info.name, "Thumbprint": info.thumbprint, "NotAfter": parse_time(info.not_after),
            "CertificateOptions": json.dumps(stored_options), "Rotation": json.dumps(rotation)},
            "rotation.keyRotated", {"Thumbprint": info.thumbprint, "Replaces": CertificateInfo(**old).thumbprint})
        return {"ok": True}

    # -- 6. removeKey with the new key's proof -------------------------------------------------------------------------
    @step_outcome("removeKey")
    async def remove_old_key(self, application: dict, old: dict, new: dict) -> dict:
        """Remove the old key (every keyCredential with its thumbprint), as the app with a proof by the new key."""
        old_info, new_info = CertificateInfo(**old), CertificateInfo(**new)
        object_id = application["applicationObjectId"]
        keys = await self._reader().key_credentials(object_id)
        stale = [k for k in keys if k["thumbprint"] == old_info.thumbprint]
        removed = []
        if stale:
            app = self._as_app(application["appId"], new_info)
            for key in stale:
                proof = proof_token(object_id, base64.b64decode(new_info.cer), self._signer(new_info),
                                    _epoch(datetime.now(UTC)))
                if await app.remove_key(object_id, key["keyId"], proof):
                    removed.append(key["keyId"])
        await self.aprogress("rotation.removeKey", {}, "rotation.oldKeyRemoved",
                             {"Thumbprint": old_info.thumbprint, "KeyIds": json.dumps(removed)})
        return {"ok": True, "removed": removed}

    def progress(self, step: str, fields: dict, event: str, details: dict | None = None) -> None:
        """Like the onboarding's, without touching the onboarding's own `Step`: a rotation is not a run of it."""
        at = datetime.now(UTC)
        self.store.merge_onboarding(self.id, {"UpdatedAt": at, **fields})
        self.store.audit(self.id, event, at, details or {}, key=self._audit_key(step))

    # -- the Rotation field ---------------------------------------------------------------------------------------
    def set_state(self, rotation: dict, event: str | None = None) -> dict:
        """Write the record's `Rotation` field (and an audit entry when `event` names one)."""
        return write_rotation_state(self.store, self.id, rotation, event)


def write_rotation_state(store, onboarding_id: str, rotation: dict, event: str | None = None) -> dict:
    """The record's `Rotation` field, and one audit entry per event per rotation (keyed by its start)."""
    now = datetime.now(UTC)
    store.merge_onboarding(onboarding_id, {"Rotation": json.dumps(rotation), "UpdatedAt": now})
    if event:
        started = str(rotation.get("startedAt", "")).replace(":", "").replace("+", "p")
        store.audit(onboarding_id, event, now, {"Rotation": json.dumps(rotation)}, key=f"{started}-{event}")
    return {"ok": True}


def _aware(moment) -> datetime:
    if moment is None:
        return datetime.max.replace(tzinfo=UTC)
    if isinstance(moment, str):
        moment = parse_time(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
