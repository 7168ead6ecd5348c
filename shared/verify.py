"""The manual method's read-only verification: what the admin's script did, read as the verifier app.

The verifier holds only Application.Read.All and Organization.Read.All in the customer's tenant, so it reads
the app registration (by uniqueName, else by display name), its keyCredentials and requiredResourceAccess, the
service principal and its app role assignments (learn.microsoft.com/graph/api/application-get,
serviceprincipal-get, serviceprincipal-list-approleassignments: Application.Read.All is the least privileged
application permission of each). A directory role assignment needs RoleManagement.Read.Directory
(learn.microsoft.com/graph/api/rbacapplication-list-roleassignments): the verifier can't read it, so it is always
listed as not verified here, never claimed; the token proof (and Exchange Online's answer) speaks for it.

:func:`compare` is the pure part (what was expected against what was read); :func:`verify_setup` does the reads.
Every request it makes is a GET.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

VERIFIER_PERMISSIONS = ("Application.Read.All", "Organization.Read.All")
EXCHANGE_MANAGE_AS_APP = "Exchange.ManageAsApp"
ROLE_NOT_READABLE = ("not readable with the verifier's permissions ({}): Exchange Online's proof speaks for it"
                     .format(", ".join(VERIFIER_PERMISSIONS)))
ROLE_NOT_VERIFIABLE = f"not verifiable with this profile (it has no {EXCHANGE_MANAGE_AS_APP} for Exchange's proof)"
ROLE_PROVEN = "proven by Exchange Online"


@dataclass(frozen=True)
class Expected:
    """What the script should have set up for one onboarding."""

    unique_name: str
    display_name: str
    thumbprint: str                                   # SHA-1 hex of the certificate
    not_before: datetime
    not_after: datetime
    permissions: tuple[tuple[str, str, str], ...]     # (resource appId, permission value, app role id)
    directory_role: str | None = None                 # the role's display name, when one is asked
    exchange_in_profile: bool = True                  # the profile holds Exchange.ManageAsApp (the Exchange proof)


@dataclass
class Observed:
    """What the verifier read: the app (None when not found), its service principal id and granted roles."""

    application: dict | None = None     # {uniqueName, displayName, keyCredentials: [...], requiredResourceAccess}
    service_principal_id: str | None = None
    granted: set[tuple[str, str]] | None = None       # (resource appId, app role id lower-case)


def _aware(moment) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _key_thumbprints(key: dict) -> set[str]:
    """The SHA-1 thumbprints a keyCredential stands for: its customKeyIdentifier and the hash of its key bytes."""
    found = set()
    identifier, der = key.get("customKeyIdentifier"), key.get("key")
    if identifier:
        found.add(bytes(identifier).hex().upper())
    if der:
        found.add(hashlib.sha1(bytes(der)).hexdigest().upper())
    return found


def compare(expected: Expected, observed: Observed) -> dict:
    """{"verified": [...], "notVerified": [...], "missing": [...]}: each item a sentence naming the object."""
    verified: list[str] = []
    not_verified: list[str] = []
    missing: list[str] = []
    role = f"directory role {expected.directory_role}" if expected.directory_role else None
    role_unknown = f"{role}: {ROLE_NOT_READABLE if expected.exchange_in_profile else ROLE_NOT_VERIFIABLE}"
    app = observed.application
    names = [value for _, value, _ in expected.permissions]
    if app is None:
        missing.append(f"application {expected.unique_name} not found (nor one named {expected.display_name!r})")
        not_verified += ["certificate", "requested permissions", "service principal"]
        not_verified += [f"permission {name} granted" for name in names]
        if role:
            not_verified.append(role_unknown)
        return {"verified": verified, "notVerified": not_verified, "missing": missing}
    how = "uniqueName" if app.get("uniqueName") == expected.unique_name else "display name"
    verified.append(f"application {expected.unique_name} exists (found by {how})")

    thumbprint = expected.thumbprint.upper()
    keys = [k for k in app.get("keyCredentials") or [] if thumbprint in _key_thumbprints(k)]
    inside = [k for k in keys if (_aware(k.get("startDateTime")) or expected.not_before) >= expected.not_before
              and (_aware(k.get("endDateTime")) or expected.not_after) <= expected.not_after]
    if inside:
        verified.append(f"certificate {thumbprint} among the application's keyCredentials, dates inside its validity")
    elif keys:
        missing.append(f"certificate {thumbprint}: the keyCredential's dates are outside the certificate's validity")
    else:
        missing.append(f"certificate {thumbprint} not among the application's keyCredentials")

    requested = app.get("requiredResourceAccess") or {}
    for resource, value, role_id in expected.permissions:
        if role_id.lower() in requested.get(resource, set()):
            verified.append(f"permission {value} requested")
        else:
            missing.append(f"permission {value} not requested by the application")

    if observed.service_principal_id is None:
        missing.append("service principal not found")
        not_verified += [f"permission {name} granted" for name in names]
    else:
        verified.append("service principal exists")
        granted = observed.granted or set()
        for resource, value, role_id in expected.permissions:
            if (resource, role_id.lower()) in granted:
                verified.append(f"permission {value} granted")
            else:
                missing.append(f"permission {value} not granted")
    if role:
        not_verified.append(role_unknown)
    return {"verified": verified, "notVerified": not_verified, "missing": missing}


def with_exchange_proof(verification: dict, exchange: dict | None, directory_role: str | None) -> dict:
    """The verification after the proof: a directory role that Exchange Online proved moves to verified, saying
    so; without the Exchange proof it stays not verified."""
    if not directory_role or not isinstance(exchange, dict) or exchange.get("outcome") != "proven":
        return verification
    role = f"directory role {directory_role}"
    return {**verification,
            "verified": [*verification["verified"], f"{role}: {ROLE_PROVEN}"],
            "notVerified": [item for item in verification["notVerified"] if not item.startswith(f"{role}:")]}


def requested_access(required_resource_access) -> dict[str, set[str]]:
    """msgraph's requiredResourceAccess as resource appId → app role ids (type Role, lower-case)."""
    return {str(r.resource_app_id): {str(a.id).lower() for a in (r.resource_access or [])
                                     if (a.type or "").lower() == "role"}
            for r in required_resource_access or []}


_directories: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def verifier_directory(settings, tenant_id: str):
    """Graph in one tenant as the verifier (shared per event loop, like shared.graph.directory_for)."""
    from .credentials import verifier_credential
    from .graph import Directory, OffLoopCredential, graph_client

    per_loop = _directories.setdefault(asyncio.get_running_loop(), {})
    key = (settings, tenant_id)
    if key not in per_loop:
        per_loop[key] = Directory(graph_client(settings, OffLoopCredential(verifier_credential(settings, tenant_id))))
    return per_loop[key]


def verifier_consented(settings, tenant_id: str) -> tuple[bool, str | None]:
    """Whether the verifier can get a Graph token in the tenant (its admin consent is in place): (True, None),
    or (False, Entra's reason) when Entra says it isn't installed or consented there. Other failures raise."""
    from azure.core.exceptions import ClientAuthenticationError

    from .credentials import verifier_credential
    from .failures import CONSENT_CODES, entra_message

    try:
        verifier_credential(settings, tenant_id).get_token(f"{settings.graph_resource}/.default")
    except ClientAuthenticationError as error:
        message = entra_message(error)
        if any(code in message for code in CONSENT_CODES):
            return False, message[:500]
        raise
    return True, None


async def _application(directory, unique_name: str, display_name: str) -> dict | None:
    """The app by uniqueName (GET /applications(uniqueName='…')), else the one with the display name."""
    from msgraph.generated.applications_with_unique_name.applications_with_unique_name_request_builder import (
        ApplicationsWithUniqueNameRequestBuilder,
    )

    from .graph import GraphError, _own_path, _query, odata_string

    select = ["id", "appId", "uniqueName", "displayName", "keyCredentials", "requiredResourceAccess"]
    builder = ApplicationsWithUniqueNameRequestBuilder(*_own_path(directory.client), unique_name)
    try:
        app = await directory._send(builder.to_get_request_information(_query(select=select)))
    except GraphError as error:
        if error.status != 404:
            raise
        found = await directory._send(directory.client.applications.to_get_request_information(_query(
            filter=f"displayName eq {odata_string(display_name)}", select=select)))
        matches = [a for a in (found.value if found else None) or [] if a.display_name == display_name]
        app = matches[0] if len(matches) == 1 else None
    if app is None:
        return None
    return {"id": app.id, "appId": app.app_id, "uniqueName": app.unique_name, "displayName": app.display_name,
            "keyCredentials": [{"customKeyIdentifier": k.custom_key_identifier, "key": k.key,
                                "startDateTime": k.start_date_time, "endDateTime": k.end_date_time}
                               for k in app.key_credentials or []],
            "requiredResourceAccess": requested_access(app.required_resource_access)}


async def _service_principal_id(directory, app_id: str) -> str | None:
    """GET /servicePrincipals(appId='…'); None when it doesn't exist."""
    from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
        ServicePrincipalsWithAppIdRequestBuilder,
    )

    from .graph import GraphError, _own_path, _query

    builder = ServicePrincipalsWithAppIdRequestBuilder(*_own_path(directory.client), app_id)
    try:
        sp = await directory._send(builder.to_get_request_information(_query(select=["id", "appId"])))
    except GraphError as error:
        if error.status == 404:
            return None
        raise
    return sp.id if sp else None


async def verify_setup(directory, expected: Expected) -> tuple[dict, dict]:
    """Read the tenant (GETs only) and compare: (verification, ids {appId, applicationObjectId,
    servicePrincipalId})."""
    observed = Observed(application=await _application(directory, expected.unique_name, expected.display_name))
    ids: dict = {}
    if observed.application is not None:
        ids = {"appId": observed.application["appId"], "applicationObjectId": observed.application["id"]}
        observed.service_principal_id = await _service_principal_id(directory, observed.application["appId"])
        ids["servicePrincipalId"] = observed.service_principal_id
    if observed.service_principal_id is not None:
        resources = sorted({resource for resource, _, _ in expected.permissions})
        held, *roles = await asyncio.gather(directory.app_role_assignments(observed.service_principal_id),
                                            *(directory.resource_roles(resource) for resource in resources))
        resource_of = {sp_id: resource for resource, (sp_id, _) in zip(resources, roles, strict=True)}
        observed.granted = {(resource_of[a["resourceId"]], a["appRoleId"].lower()) for a in held
                            if a["resourceId"] in resource_of}
    return compare(expected, observed), ids


def certificate_thumbprint(cer_base64: str) -> str:
    """SHA-1 thumbprint (upper-case hex) of a base64 DER certificate."""
    return hashlib.sha1(base64.b64decode(cer_base64)).hexdigest().upper()
