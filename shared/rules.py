"""The API's plain rules, without pydantic: ids, lifecycle words, page sizes, certificate validity, RequestError.

The HTTP triggers check these at every request; the pydantic models (shared/models.py, shared/contracts.py) and the
API descriptions (shared/openapi.py) use the same values, and load only where a body is validated or described, so
importing the blueprints stays light (cold start).
"""

from __future__ import annotations

from datetime import timedelta

GUID_PATTERN = r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"
ONBOARDING_ID_PATTERN = r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\.[0-9a-f]{20}$"
# The product's lifecycle word (`status`; functions/api.py PROGRESSING + TERMINAL decide the HTTP status from it).
LIFECYCLE = ("pending", "running", "waitingForAdmin", "waitingForCertificate", "needsAttention", "completed",
             "failed", "expired", "retired")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DEFAULT_VALIDITY_MONTHS = 12
MAX_VALIDITY_MONTHS = 24
# Key Vault counts a certificate's validity in whole calendar months (CertificatePolicy validity_in_months) and
# a month lasts up to 31 days, so N months surely fit a lifetime cap when N x 31 days do.
LONGEST_MONTH = timedelta(days=31)


class RequestError(ValueError):
    """Invalid input: `problems` is a list of {field, rule}."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['rule']}" for p in problems))


def months_within(cap: timedelta) -> int:
    """The most whole months of certificate validity that stay within a lifetime cap, whatever month they
    start in (0 when not even one month fits)."""
    return max(0, min(MAX_VALIDITY_MONTHS, cap // LONGEST_MONTH))


def iso_duration(value: timedelta) -> str:
    """A timedelta as an ISO 8601 duration (P90D, P4DT12H30M5S), the way Graph writes maxLifetime."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    text = f"P{days}D" if days or not time else "P"
    return text + (f"T{time}" if time else "")


def validity_months_for(requested: int | None, cap: timedelta | None) -> int:
    """The certificate's validity in months: the request's, or the default; within the tenant's cap on
    certificate lifetimes (None: no cap, or it could not be read). Raises RequestError naming the field."""
    field = "certificate.validityMonths"
    if cap is None:
        return requested or DEFAULT_VALIDITY_MONTHS
    allowed = months_within(cap)
    limit = f"the tenant's app management policy limits certificate lifetimes to {iso_duration(cap)}"
    if allowed < 1:
        rule = f"cannot be met: {limit}, shorter than Key Vault's shortest validity (1 month)"
        raise RequestError([{"field": field, "rule": rule}])
    if requested is not None and requested > allowed:
        rule = (f"must be at most {allowed}: {limit} (Key Vault counts whole months; {allowed} month(s) of up to "
                f"31 days fit)")
        raise RequestError([{"field": field, "rule": rule}])
    return requested or min(DEFAULT_VALIDITY_MONTHS, allowed)
