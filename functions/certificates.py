"""The customer's own certificate: the PFX import of POST /api/onboardings, and for the customer's CA the CSR
(GET /api/onboardings/{id}/csr) and the merge of the certificate it signed (POST /api/onboardings/{id}/certificate).

The PFX and its password are imported here, in the HTTP trigger, and go nowhere else: not into orchestration input
or history, Table Storage, logs or answers. A merge raises the orchestration's external event `CertificateMerged`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from functions.api import (
    ACTIVE_RUNTIME,
    ONBOARDING_ID,
    azure_error,
    handled,
    json_response,
    public_base,
    validation_error,
)
from shared.keyvault import (
    CertificateRejected,
    NothingPending,
    certificate_name,
    check_pfx,
    csr_pem,
    vault_for,
)
from shared.settings import get_settings

log = logging.getLogger(__name__)
bp = df.Blueprint()

CERTIFICATE_MERGED = "CertificateMerged"  # the external event the orchestrators wait for
# A signed certificate with its chain, PEM: a few KiB each.
MAX_UPLOAD_BYTES = 64 * 1024
PKCS10 = "application/pkcs10"  # RFC 5967


def _rejected(error: CertificateRejected) -> func.HttpResponse:
    """400 naming the field and the problem, with the check's (or Key Vault's) code."""
    return azure_error(400, error.code, f"{error.field}: {error.rule}", target=error.field,
                       details=[{"code": "InvalidValue", "target": error.field, "message": error.rule}])


async def import_request_pfx(instance: str, options, record: dict) -> func.HttpResponse | None:
    """Import the request's PFX into Key Vault as the onboarding's non-exportable certificate, before the
    orchestration starts. None when it is in Key Vault; a 400 naming the problem, or a 409 when a completed
    onboarding has another certificate (only a rotation changes it)."""
    pfx, password, now = options.pfx_bytes(), options.password or "", datetime.now(UTC)
    try:
        leaf = await asyncio.to_thread(check_pfx, pfx, password, now)
    except CertificateRejected as error:
        return _rejected(error)
    from cryptography.hazmat.primitives.serialization import Encoding

    thumbprint = hashlib.sha1(leaf.public_bytes(Encoding.DER)).hexdigest().upper()
    current = record.get("Thumbprint")
    if record.get("Status") == "completed" and current and current != thumbprint:
        return azure_error(409, "CertificateOptionsRequireRotation", (
            f"onboarding {instance} is completed with certificate {current}; this PFX holds {thumbprint}: a re-run "
            f"does not change keys. A rotation applies a new certificate (POST /api/onboardings/{instance}/rotate "
            "with {pfx, password}); the same PFX, or none, re-runs with the certificate it has."),
            target="certificate.pfx")
    vault = vault_for(get_settings())
    try:
        info, imported = await asyncio.to_thread(vault.import_pfx, certificate_name(instance), pfx, password, now)
    except CertificateRejected as error:
        return _rejected(error)
    log.info("onboarding %s: the customer's PFX is certificate %s (thumbprint %s, %s)", instance, info.name,
             info.thumbprint, "imported" if imported else "already imported")
    return None


def _onboarding_id(req: func.HttpRequest) -> str | None:
    instance = req.route_params.get("id", "")
    return instance if ONBOARDING_ID.match(instance) else None


def _nothing_waits(instance: str, detail: str) -> func.HttpResponse:
    return azure_error(409, "NoCertificateExpected", f"onboarding {instance} waits for no signed certificate: "
                       f"{detail}. Only an onboarding started with certificate {{\"issuer\": \"customer\"}} takes "
                       "one, while its status is waitingForCertificate.", target="id")


def customer_certificate_links(req: func.HttpRequest, instance: str) -> dict:
    """The status body's links while a CSR waits for its certificate."""
    base = f"{public_base(req, get_settings().public_base_url)}/api/onboardings/{instance}"
    return {"csrUrl": f"{base}/csr", "certificateUploadUrl": f"{base}/certificate"}


@bp.route(route="onboardings/{id}/csr", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def get_csr(req: func.HttpRequest) -> func.HttpResponse:
    """The CSR of Key Vault's key for the customer's CA to sign, as PEM (application/pkcs10)."""
    instance = _onboarding_id(req)
    if instance is None:
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    state = await asyncio.to_thread(vault_for(get_settings()).csr_state, certificate_name(instance))
    if state.status != "pending" or state.csr_der is None:
        return _nothing_waits(instance, "there is no pending CSR" if state.status == "none"
                              else "its CSR's certificate is merged already")
    tenant = instance.split(".", 1)[0]
    return func.HttpResponse(csr_pem(state.csr_der), status_code=200, mimetype=PKCS10, headers={
        "Content-Disposition": f'attachment; filename="certauth-{tenant}.csr"'})


@bp.route(route="onboardings/{id}/certificate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handled(log)
async def upload_certificate(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Merge the certificate the customer's CA signed (PEM or DER, optionally with its chain) into Key Vault's
    pending CSR, after checking it is for the CSR's key; then the onboarding proceeds (event CertificateMerged)."""
    from functions.onboarding import _status_url

    instance = _onboarding_id(req)
    if instance is None:
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    body = req.get_body() or b""
    if len(body) > MAX_UPLOAD_BYTES:
        return validation_error([{"field": "body", "rule": f"must be at most {MAX_UPLOAD_BYTES} bytes"}])
    if not body.strip():
        return validation_error([{"field": "body", "rule": "must be the signed certificate, PEM or DER"}])
    status = await client.get_status(instance)
    runtime = status.runtime_status.value if status is not None and status.runtime_status is not None else None
    if runtime not in ACTIVE_RUNTIME:
        return _nothing_waits(instance, f"it is not running ({runtime or 'not found'})")
    vault = vault_for(get_settings())
    try:
        info = await asyncio.to_thread(vault.merge, certificate_name(instance), body)
    except CertificateRejected as error:
        return _rejected(error)
    except NothingPending:
        return _nothing_waits(instance, "there is no pending CSR")
    await client.raise_event(instance, CERTIFICATE_MERGED, {"thumbprint": info.thumbprint, "version": info.version})
    log.info("onboarding %s: merged the customer's certificate %s (thumbprint %s)", instance, info.name,
             info.thumbprint)
    url = await _status_url(req, instance)
    return json_response({"id": instance, "status": "running", "statusQueryGetUri": url,
                          "certificate": {"name": info.name, "thumbprint": info.thumbprint,
                                          "notBefore": info.not_before, "notAfter": info.not_after}},
                         202, {"Location": url, "Retry-After": "2"})
