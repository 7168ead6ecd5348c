"""Drift: where the Table record, the Key Vault certificate and the app's keyCredentials no longer agree.

Read-only. Key Vault is read in the home vault as the product's identity; the app registration in the customer's
tenant as the identity the onboarding method gave the product there (the read-only verifier for the manual
method, the onboarding app for the automatic one). Every request is a GET.

One finding per cause: an app that is gone is `appDeleted` (its service principal and keys went with it), a
certificate that is gone is `certificateDeleted` (nothing to compare its versions with).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from .settings import Settings

log = logging.getLogger(__name__)

KEY_REMOVED = "keyRemoved"
APP_DELETED = "appDeleted"
SERVICE_PRINCIPAL_DELETED = "servicePrincipalDeleted"
CERTIFICATE_DISABLED = "certificateDisabled"
CERTIFICATE_DELETED = "certificateDeleted"
NEWER_VERSION_ON_NO_APP = "newerVersionOnNoApp"
KINDS = (KEY_REMOVED, APP_DELETED, SERVICE_PRINCIPAL_DELETED, CERTIFICATE_DISABLED, CERTIFICATE_DELETED,
         NEWER_VERSION_ON_NO_APP)
# A newer version on no app breaks nothing yet; every other finding means the app can no longer sign in.
WARNING_KINDS = (NEWER_VERSION_ON_NO_APP,)
# One record per open finding (PartitionKey the onboarding id, RowKey the finding's key): alerted once, until the
# finding is gone (its record is then deleted, so a recurrence alerts again).
DRIFT_FINDINGS = "certauthDriftFindings"
# Outside the alert window a certificate is checked every ROLLING_PERIOD_DAYS: on the days whose ordinal matches its
# expiry day's modulo the period. Expiry days up to ROLLING_HORIZON_DAYS ahead are read (one partition each); a
# certificate that expires later (a customer's long-lived PFX) joins the rotation once it is within the horizon.
ROLLING_PERIOD_DAYS = 30
ROLLING_HORIZON_DAYS = 5 * 366


def _finding(kind: str, detail: str) -> dict:
    return {"kind": kind, "detail": detail}


def _certificate_client(settings: Settings):
    """A CertificateClient on the home vault as the product's identity, shared per process."""
    from .credentials import home_credential
    from .reuse import shared

    def build():
        from azure.keyvault.certificates import CertificateClient

        return CertificateClient(settings.require("key_vault_url"), home_credential(settings),
                                 verify_challenge_resource=settings.keyvault_verify_challenge_resource)

    return shared(("drift-certificates", settings), build)


def _rotation_running(onboarding_record: dict) -> bool:
    """Whether a rotation is under way: its new version is on no app until its addKey step, by design."""
    try:
        rotation = json.loads(onboarding_record.get("Rotation") or "{}")
    except ValueError:
        return False
    return isinstance(rotation, dict) and rotation.get("state") == "running"


def vault_findings(settings: Settings, onboarding_record: dict, certificate_record: dict) -> tuple[list[dict], list]:
    """Key Vault's findings, and the versions newer than the record's (CertificateProperties) that an app should
    carry: ([finding...], [newer...]). Two GETs: the record's version and the current one."""
    from azure.core.exceptions import ResourceNotFoundError

    client = _certificate_client(settings)
    name, version = certificate_record["CertificateName"], certificate_record.get("Version") or ""
    try:
        ours = client.get_certificate_version(name, version) if version else client.get_certificate(name)
    except ResourceNotFoundError:
        return [_finding(CERTIFICATE_DELETED, f"certificate {name} (version {version or 'latest'}) is no longer in "
                         "Key Vault")], []
    findings: list[dict] = []
    if ours.properties.enabled is False:
        findings.append(_finding(CERTIFICATE_DISABLED, f"certificate {name} version {ours.properties.version} is "
                                 "disabled in Key Vault: the app cannot sign in with it"))
    if _rotation_running(onboarding_record):
        return findings, []
    # Key Vault's current version is its newest (get-certificate without a version): one the record does not
    # name was made after ours (AutoRenew, an operator, a rotation that stopped before its addKey).
    latest = client.get_certificate(name)
    newer = [latest.properties] if latest.properties.version != ours.properties.version \
        and latest.properties.enabled is not False else []
    return findings, newer


async def graph_findings(directory, onboarding_record: dict, thumbprint: str, newer: list) -> list[dict]:
    """The app registration's findings: gone, its service principal gone, our key or a newer version not on it."""
    from msgraph.generated.applications_with_app_id.applications_with_app_id_request_builder import (
        ApplicationsWithAppIdRequestBuilder,
    )
    from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
        ServicePrincipalsWithAppIdRequestBuilder,
    )

    from .graph import GraphError, _own_path, _query

    app_id = onboarding_record["AppId"]
    try:
        app = await directory._send(ApplicationsWithAppIdRequestBuilder(*_own_path(directory.client), app_id)
                                    .to_get_request_information(_query(select=["id", "appId", "keyCredentials"])))
    except GraphError as error:
        if error.status != 404:
            raise
        return [_finding(APP_DELETED, f"application {app_id} no longer exists in tenant "
                         f"{onboarding_record.get('TenantId')}")]
    findings: list[dict] = []
    try:
        await directory._send(ServicePrincipalsWithAppIdRequestBuilder(*_own_path(directory.client), app_id)
                              .to_get_request_information(_query(select=["id", "appId"])))
    except GraphError as error:
        if error.status != 404:
            raise
        findings.append(_finding(SERVICE_PRINCIPAL_DELETED, f"the service principal of application {app_id} no "
                                 "longer exists: the app cannot get tokens in the tenant"))
    on_app = set()
    for key in app.key_credentials or []:
        if key.custom_key_identifier:
            on_app.add(bytes(key.custom_key_identifier).hex().upper())
        if key.key:
            on_app.add(hashlib.sha1(bytes(key.key)).hexdigest().upper())
    if thumbprint.upper() not in on_app:
        findings.append(_finding(KEY_REMOVED, f"certificate {thumbprint.upper()} is no longer among the keyCredentials "
                                 f"of application {app_id}"))
    for version in newer:
        print_ = bytes(version.x509_thumbprint or b"").hex().upper()
        if print_ and print_ not in on_app:
            findings.append(_finding(NEWER_VERSION_ON_NO_APP, f"Key Vault holds a newer version {version.version} "
                                     f"(thumbprint {print_}) of certificate {version.name} that is not among the "
                                     f"keyCredentials of application {app_id}"))
    return findings


def _directory(settings: Settings, onboarding_record: dict):
    """Graph in the tenant as the identity of the onboarding's method (the verifier is read-only)."""
    tenant = onboarding_record["TenantId"]
    if (onboarding_record.get("Method") or "automatic") == "manual":
        from .verify import verifier_directory

        return verifier_directory(settings, tenant)
    from .graph import directory_for

    return directory_for(settings, tenant)


async def find_drift_async(settings: Settings, onboarding_record: dict, certificate_record: dict) -> list[dict]:
    """find_drift on the running event loop (Key Vault's sync reads run in a worker thread)."""
    findings, newer = await asyncio.to_thread(vault_findings, settings, onboarding_record, certificate_record)
    if any(f["kind"] == CERTIFICATE_DELETED for f in findings):
        newer = []
    if not onboarding_record.get("AppId"):
        return findings  # no app recorded yet (an onboarding that never got that far): nothing to compare
    directory = _directory(settings, onboarding_record)
    return findings + await graph_findings(directory, onboarding_record, certificate_record["Thumbprint"], newer)


def find_drift(settings: Settings, onboarding_record: dict, certificate_record: dict) -> list[dict]:
    """The differences between the records, Key Vault and the app: [{"kind", "detail"}], [] when they agree.

    Sync, for activities without an event loop; raises what a read raised other than a 404 (a refused token,
    throttling that outlasted the SDK's retries), so the caller can tell "no drift" from "not checked"."""
    return asyncio.run(find_drift_async(settings, onboarding_record, certificate_record))


def finding_key(onboarding: str, finding: dict) -> str:
    """A stable key per (onboarding, kind, detail): one alert per finding until it is resolved."""
    digest = hashlib.sha256(f"{onboarding}|{finding['kind']}|{finding['detail']}".encode()).hexdigest()[:16]
    return f"{finding['kind']}-{digest}"


# -- the monitor's part: which certificates are checked today, and one alert per open finding ----------------------

def rolling_expiry_days(now: datetime, after_day: str) -> list[str]:
    """The expiry-index partitions (YYYYMMDD) checked today outside the alert window: the days after `after_day`, up
    to the horizon, whose ordinal is today's modulo ROLLING_PERIOD_DAYS. Each expiry day comes up every 30 days, so
    the daily reads are 1/30 of the rest of the fleet and every certificate is checked monthly."""
    today = now.astimezone(UTC).date()
    first = date.fromisoformat(after_day) + timedelta(days=1)  # YYYYMMDD: ISO 8601 basic format
    first += timedelta(days=(today.toordinal() - first.toordinal()) % ROLLING_PERIOD_DAYS)
    last = today + timedelta(days=ROLLING_HORIZON_DAYS)
    return [f"{first + timedelta(days=n):%Y%m%d}" for n in range(0, (last - first).days + 1, ROLLING_PERIOD_DAYS)]


def rolling_certificates(store, now: datetime, after_day: str) -> Iterator[dict]:
    """The indexed certificates checked for drift today beyond the alert window (one partition read per day)."""
    for day in rolling_expiry_days(now, after_day):
        yield from store.certificates_expiring_by_day(day, day)


def drift_alert(finding: dict, key: str, onboarding_id: str, onboarding_record: dict, certificate: dict,
                now: datetime) -> dict:
    """The alert of one finding (certauth.alert/v1, type drift): JSON-safe, no secrets. Its id names the day the
    finding was first seen, so a drift that recurs after it was resolved is a new alert."""
    from .alerts import SCHEMA, alert_instance_id

    name = certificate.get("CertificateName") or onboarding_id
    not_after = certificate.get("NotAfter")
    return {
        "id": alert_instance_id(name, certificate.get("Version") or "", "drift", f"{key}-{now:%Y%m%d}"),
        "schema": SCHEMA, "type": "drift",
        "severity": "warning" if finding["kind"] in WARNING_KINDS else "critical",
        "tenantId": certificate.get("TenantId") or onboarding_record.get("TenantId"),
        "serviceMailbox": certificate.get("ServiceMailbox") or onboarding_record.get("ServiceMailbox"),
        "appId": onboarding_record.get("AppId") or certificate.get("AppId"),
        "thumbprint": certificate.get("Thumbprint"),
        "notAfter": not_after.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(not_after, datetime) else not_after,
        "daysLeft": (not_after - now).days if isinstance(not_after, datetime) else None,
        "threshold": None, "onboardingId": onboarding_id,
        "detail": f"drift ({finding['kind']}): {finding['detail']}",
    }


def new_drift_alerts(settings: Settings, store, certificate: dict, now: datetime) -> list[dict]:
    """Check one indexed certificate (RowKey: its onboarding id) of a completed onboarding and return the alerts to
    start: one per finding not alerted before. Each finding is claimed by inserting its record (a concurrent run's
    insert fails, so two runs alert once); findings that are gone are resolved (record deleted, audited). Raises what
    find_drift raised."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    onboarding_id = certificate["RowKey"]
    stored = store.get_onboarding(onboarding_id)
    if stored is None:
        return []
    record = stored.entity
    if record.get("Status") != "completed":
        return []  # drift is a set-up that diverged: one still running, failed or retired has none to compare
    findings = find_drift(settings, record, certificate)
    # The state module has no drift table of its own: its table client is borrowed (same account, created on use).
    table = store._table(DRIFT_FINDINGS)
    known = {e["RowKey"]: dict(e) for e in table.query_entities("PartitionKey eq @pk",
                                                               parameters={"pk": onboarding_id})}
    alerts: list[dict] = []
    current: set[str] = set()
    for finding in findings:
        key = finding_key(onboarding_id, finding)
        current.add(key)
        if key in known:
            continue
        alert = drift_alert(finding, key, onboarding_id, record, certificate, now)
        try:
            table.create_entity({"PartitionKey": onboarding_id, "RowKey": key, "Kind": finding["kind"],
                                 "Detail": finding["detail"][:4000], "FoundAt": now, "AlertId": alert["id"]})
        except ResourceExistsError:
            log.info("drift %s of onboarding %s was claimed by a concurrent run", key, onboarding_id)
            continue
        store.audit(onboarding_id, "drift.found", now, {"Kind": finding["kind"], "Detail": finding["detail"][:4000],
                                                         "AlertId": alert["id"]}, key=f"drift-{key}-{now:%Y%m%d}")
        alerts.append(alert)
        log.warning("onboarding %s: drift %s: %s", onboarding_id, finding["kind"], finding["detail"])
    for key, entity in known.items():
        if key in current:
            continue
        with contextlib.suppress(ResourceNotFoundError):
            table.delete_entity(onboarding_id, key)
        store.audit(onboarding_id, "drift.resolved", now, {"Kind": entity.get("Kind"), "Detail": entity.get("Detail")},
                    key=f"drift-{key}-resolved-{now:%Y%m%d}")
    return alerts
