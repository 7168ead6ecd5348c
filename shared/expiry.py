"""The expiry monitor's decisions: which certificates are due, which alert each gets, when a rotation starts.

Plain Python over the state store: the timer trigger (functions/expiry.py) reads the index, asks :func:`plan` what
to do for each certificate and claims each alert with :meth:`StateStore.claim_alert` before it starts the alert's
orchestration, so two overlapping runs start one.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .alerts import SCHEMA, alert_instance_id
from .state import StateStore, Stored, expiry_day

log = logging.getLogger(__name__)

EXPIRY = "certificateExpiry"
EXPIRED = "certificateExpired"
ROTATING = "rotating"
DAY = 86400.0
# At most this many started alerts and rotations are listed in a run record (a Table property holds 64 KiB).
RUN_RECORD_LIST_LIMIT = 200


@dataclass(frozen=True)
class Due:
    """The alert a certificate version is due now: its kind and threshold (0 for expired and rotating)."""

    kind: str
    threshold: int


@dataclass
class Plan:
    """What one run does for one certificate."""

    onboarding_id: str
    certificate: dict
    alert: dict | None = None
    claim: dict = field(default_factory=dict)
    seen: Stored | None = None
    rotation: dict | None = None


def seconds_left(not_after: datetime, now: datetime) -> float:
    """Seconds from `now` to `not_after` (negative once expired)."""
    return (not_after.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days left, rounded down (0 on the last day, negative once expired)."""
    return math.floor(seconds_left(not_after, now) / DAY)


def current_threshold(remaining_seconds: float, thresholds: tuple[int, ...]) -> int | None:
    """The smallest threshold the certificate is within, or None while it is outside all of them."""
    within = [t for t in thresholds if remaining_seconds <= t * DAY]
    return min(within) if within else None


def due_alert(remaining_seconds: float, thresholds: tuple[int, ...], state: dict | None,
              rotating: bool = False) -> Due | None:
    """The one alert due now, given the alert state of this certificate version (None: nothing alerted yet).

    Only the current threshold is alerted: after missed days the thresholds skipped over stay silent. A version
    that expired gets `expired` once. While a rotation runs, the first threshold alert becomes `rotating`, once.
    """
    state = state or {}
    if remaining_seconds <= 0:
        return None if state.get("Expired") else Due(EXPIRED, 0)
    threshold = current_threshold(remaining_seconds, thresholds)
    if threshold is None:
        return None
    last = state.get("LastThreshold")
    if last is not None and threshold >= last:
        return None
    if rotating:
        return None if state.get("Rotating") else Due(ROTATING, 0)
    return Due(EXPIRY, threshold)


def severity(due: Due) -> str:
    """critical when expired or within 3 days; warning within 14; info before."""
    if due.kind == EXPIRED or (due.kind == EXPIRY and due.threshold <= 3):
        return "critical"
    if due.kind == EXPIRY and due.threshold <= 14:
        return "warning"
    return "info"


def rotation_of(onboarding_record: dict | None) -> dict:
    """The record's Rotation field (written by the rotation orchestration), {} when none or unreadable."""
    try:
        value = json.loads((onboarding_record or {}).get("Rotation") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def offboarding_active(onboarding_record: dict | None) -> bool:
    """Whether the record's Offboarding (shared/offboarding.py) is under way: its objects are being removed."""
    try:
        value = json.loads((onboarding_record or {}).get("Offboarding") or "{}")
    except (TypeError, ValueError):
        return False
    return isinstance(value, dict) and value.get("state") in ("running", "waitingForAdmin")


def alert_window_last_day(now: datetime, thresholds: tuple[int, ...], rotate_before_days: int) -> str:
    """The last expiry day a run reads: the largest threshold (or the rotation lead) ahead of now."""
    return expiry_day(now + timedelta(days=max(*thresholds, rotate_before_days)))


def due_certificates(store: StateStore, now: datetime, thresholds: tuple[int, ...],
                     rotate_before_days: int) -> list[dict]:
    """The indexed certificates a run looks at: expiring within the window, and expired ones not yet alerted
    (an expired certificate leaves the index once its `expired` alert is claimed, so old days stay empty)."""
    return list(store.certificates_expiring_by_day(None, alert_window_last_day(now, thresholds, rotate_before_days)))


def drift_candidates(store: StateStore, now: datetime, due: list[dict], thresholds: tuple[int, ...],
                     rotate_before_days: int) -> list[dict]:
    """The certificates a run checks for drift (shared/drift.py): those due, and today's rolling 1/30 of the rest
    (expiry days beyond the window whose ordinal matches today's modulo 30), so each is checked at least monthly."""
    from .drift import rolling_certificates

    return [*due, *rolling_certificates(store, now, alert_window_last_day(now, thresholds, rotate_before_days))]


def alert_body(due: Due, onboarding_id: str, certificate: dict, now: datetime, detail: str) -> dict:
    """The alert dict of the interface (certauth.alert/v1): JSON-safe, no secrets."""
    not_after = certificate["NotAfter"]
    return {
        "id": alert_instance_id(certificate.get("CertificateName") or onboarding_id, certificate.get("Version") or "",
                                due.kind, due.threshold),
        "schema": SCHEMA, "type": due.kind, "severity": severity(due),
        "tenantId": certificate.get("TenantId"), "serviceMailbox": certificate.get("ServiceMailbox"),
        "appId": certificate.get("AppId"), "thumbprint": certificate.get("Thumbprint"),
        "notAfter": not_after.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "daysLeft": days_left(not_after, now), "threshold": due.threshold, "onboardingId": onboarding_id,
        "detail": detail,
    }


def _detail(due: Due, days: int) -> str:
    if due.kind == EXPIRED:
        return "the certificate has expired: the product's access to this tenant no longer works"
    if due.kind == ROTATING:
        return f"the certificate expires in {days} day(s); a rotation is in progress"
    return f"the certificate expires in {days} day(s) (threshold {due.threshold} days)"


def plan(store: StateStore, certificate: dict, now: datetime, thresholds: tuple[int, ...],
         rotate_before_days: int) -> Plan:
    """What to do now for one indexed certificate: an alert to claim and start, a rotation to start."""
    onboarding_id = certificate["RowKey"]
    version = certificate.get("Version") or ""
    result = Plan(onboarding_id, certificate)
    record = store.get_onboarding(onboarding_id)
    onboarding = record.entity if record else {}
    if record is None or onboarding.get("Status") == "retired" or offboarding_active(onboarding):
        return result  # no longer in use (or being offboarded): nothing to alert or rotate
    if onboarding.get("AppId") and not certificate.get("AppId"):
        certificate = result.certificate = {**certificate, "AppId": onboarding["AppId"]}
    remaining = seconds_left(certificate["NotAfter"], now)
    rotation = rotation_of(onboarding)
    rotating = rotation.get("state") == "running"
    result.seen = store.alert_state(onboarding_id, version)
    due = due_alert(remaining, thresholds, result.seen.entity if result.seen else None, rotating)
    if due is not None:
        result.alert = alert_body(due, onboarding_id, certificate, now, _detail(due, days_left(certificate["NotAfter"],
                                                                                                 now)))
        claim = {"Version": version, "LastAlert": result.alert["id"], "LastAlertType": due.kind,
                 "LastAlertAt": now}
        current = current_threshold(remaining, thresholds)
        if due.kind == EXPIRED:
            claim["Expired"] = True
        elif current is not None:
            claim["LastThreshold"] = current
        if due.kind == ROTATING:
            claim["Rotating"] = True
        result.claim = claim
    # A rotation that needs the admin is not restarted each day: its own alert names the fix.
    if 0 < remaining <= rotate_before_days * DAY and rotation.get("state") not in ("running", "manualActionNeeded"):
        result.rotation = {"onboardingId": onboarding_id, "reason": "expiry"}
    return result


def run_summary(alerts: list[dict], rotations: list[str], failures: list[dict]) -> dict:
    """A run record's lists, capped to fit a Table property."""
    return {"AlertCount": len(alerts), "Alerts": json.dumps(alerts[:RUN_RECORD_LIST_LIMIT]),
            "RotationCount": len(rotations), "Rotations": json.dumps(rotations[:RUN_RECORD_LIST_LIMIT]),
            "FailureCount": len(failures), "Failures": json.dumps(failures[:RUN_RECORD_LIST_LIMIT])}
