"""State in Table Storage: onboardings, certificates and the audit trail, with ETag concurrency.

Entities hold ids, names, thumbprints and dates only — never key material or tokens. Writes are
upserts or ETag-guarded updates, so an activity that runs twice writes the same thing twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

# azure-data-tables (and azure-core) load on first use, not at import: every blueprint imports this module, and the
# Functions host imports them all to index the app (cold start).
if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

log = logging.getLogger(__name__)

ONBOARDINGS = "certauthOnboardings"
CERTIFICATES = "certauthCertificates"
AUDIT = "certauthAudit"
# The expiry monitor: certificates indexed by expiry day, one table per expiry month (certauthExpiry{YYYYMM},
# PartitionKey the day YYYYMMDD, RowKey the onboarding id), so a daily scan reads the months its window spans, not
# the fleet: Table Storage bounds a query by partition, but a table-wide filter costs the whole table wherever
# the store does not index partitions. EXPIRY_MONTHS lists the months that hold rows (PartitionKey "month", RowKey
# YYYYMM); a month found empty leaves it, so old months don't add to the daily reads. Then its runs, and one
# alert-state record per certificate version.
EXPIRY_TABLE_PREFIX = "certauthExpiry"
EXPIRY_MONTHS = "certauthExpiryMonths"
EXPIRY_RUNS = "certauthExpiryRuns"
ALERTS = "certauthAlerts"
# The onboarding link's consent states: one row per nonce (PartitionKey the nonce, RowKey "state"), holding the link's
# request (no secrets) until the consent callback consumes it, once (ETag).
CONSENT_STATES = "certauthConsentStates"
# Where an onboarding's certificate comes from (record field CertificateSource, written by the certificate step).
CERTIFICATE_SOURCES = ("keyVault", "imported", "customerCa")
MAX_ETAG_RETRIES = 5


# Characters Table Storage refuses in PartitionKey and RowKey (learn.microsoft.com/rest/api/storageservices/
# understanding-the-table-service-data-model, "Characters disallowed in key fields"): / \ # ? and the control
# characters U+0000-U+001F and U+007F-U+009F; a key is at most 1 KiB.
_KEY_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
KEY_MAX_LENGTH = 1024


def table_key(value: str) -> str:
    """`value` if Table Storage takes it as a PartitionKey or RowKey, else ValueError. Keys are built from ids,
    hashes and timestamps, never from a raw service mailbox (whose Exchange characters include / # ?)."""
    if not isinstance(value, str) or not value or len(value) > KEY_MAX_LENGTH or _KEY_FORBIDDEN.search(value):
        raise ValueError(f"not a Table Storage key: {value!r}")
    return value


def onboarding_id(tenant_id: str, service_mailbox: str) -> str:
    """The deterministic id of the onboarding of (tenant, mailbox): concurrent requests converge on it.

    It is also the Durable instance id, so it avoids the characters instance ids and keys forbid."""
    digest = hashlib.sha256(f"{tenant_id.lower()}|{service_mailbox.lower()}".encode()).hexdigest()[:20]
    return f"{tenant_id.lower()}.{digest}"


def tenant_of(onboarding: str) -> str:
    """The tenant id encoded in an onboarding id."""
    return onboarding.split(".", 1)[0]


def _onboarding_key_pair(onboarding: str) -> tuple[str, str]:
    """PartitionKey (the tenant) and RowKey (the onboarding id) of an onboarding record."""
    return table_key(tenant_of(onboarding)), table_key(onboarding)


def _onboarding_keys(onboarding: str) -> dict[str, str]:
    """The keys of an onboarding record, as entity fields."""
    partition, row = _onboarding_key_pair(onboarding)
    return {"PartitionKey": partition, "RowKey": row}


def expiry_day(moment: datetime) -> str:
    """The expiry index's partition of a notAfter: its UTC day, YYYYMMDD (sorts as dates do)."""
    return f"{moment.astimezone(UTC):%Y%m%d}"


def expiry_month(day: str) -> str:
    """The month (YYYYMM) of an expiry day (YYYYMMDD)."""
    return day[:6]


def expiry_table(month: str) -> str:
    """The expiry index's table of a month (YYYYMM): alphanumeric, as table names must be."""
    if not re.fullmatch(r"\d{6}", month):
        raise ValueError(f"not an expiry month: {month!r}")
    return f"{EXPIRY_TABLE_PREFIX}{month}"


def run_key(started: datetime, run: str) -> str:
    """A run's RowKey: newest first (Table Storage sorts keys ascending), then the run id."""
    return f"{10**13 - int(started.timestamp() * 1000):013d}-{run}"


def encode_continuation(token: dict) -> str:
    """The Tables SDK's continuation (a dict of PartitionKey/RowKey) as one URL-safe string."""
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(token, sort_keys=True).encode()).decode().rstrip("=")


def decode_continuation(text: str) -> dict:
    """The inverse of :func:`encode_continuation`; ValueError for a token it did not make."""
    import base64
    import binascii
    import json

    try:
        token = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise ValueError("not a continuation token") from error
    if not isinstance(token, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in token.items()):
        raise ValueError("not a continuation token")
    return token


@dataclass
class Stored:
    """An entity with the ETag it was read at."""

    entity: dict
    etag: str | None


@functools.lru_cache(maxsize=8)
def store_for(connection_string: str) -> StateStore:
    """One store per process and account: its tables are created once, its HTTP session reused."""
    return StateStore(connection_string)


def state_store(settings) -> StateStore:
    """The product's store: a connection string when one is set, else the Table endpoint with the Function
    App's own identity (identity-based AzureWebJobsStorage)."""
    from .credentials import home_credential
    from .reuse import shared
    from .settings import SettingsError

    if settings.tables_connection:
        return store_for(settings.tables_connection)
    if settings.tables_endpoint:
        from azure.data.tables import TableServiceClient

        return shared(("state", settings.tables_endpoint), lambda: StateStore(
            service=TableServiceClient(settings.tables_endpoint, credential=home_credential(settings))))
    raise SettingsError("application setting TABLES_CONNECTION_STRING (or AzureWebJobsStorage, or "
                        "AzureWebJobsStorage__accountName for identity-based storage) is required but not set")


class StateStore:
    """The three tables, created on first use."""

    def __init__(self, connection_string: str | None = None, *, service: TableServiceClient | None = None) -> None:
        from azure.data.tables import TableServiceClient

        self._service = service or TableServiceClient.from_connection_string(connection_string)
        self._tables: dict[str, TableClient] = {}

    def _table(self, name: str) -> TableClient:
        from azure.core.exceptions import ResourceExistsError

        client = self._tables.get(name)
        if client is None:
            with contextlib.suppress(ResourceExistsError):
                self._service.create_table(name)
            client = self._tables[name] = self._service.get_table_client(name)
        return client

    # -- onboardings ----------------------------------------------------------------------------------
    def get_onboarding(self, onboarding: str) -> Stored | None:
        """The onboarding record, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table(ONBOARDINGS).get_entity(*_onboarding_key_pair(onboarding))
        except ResourceNotFoundError:
            return None
        return Stored(dict(entity), entity.metadata.get("etag"))

    def create_onboarding(self, onboarding: str, fields: dict) -> bool:
        """Insert the record if it does not exist; False when it already existed (left untouched)."""
        from azure.core.exceptions import ResourceExistsError

        entity = {**_onboarding_keys(onboarding), **fields}
        try:
            self._table(ONBOARDINGS).create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    def merge_onboarding(self, onboarding: str, fields: dict) -> None:
        """Set these fields of the record, leaving the others as they are (a step's own results)."""
        from azure.data.tables import UpdateMode

        self._table(ONBOARDINGS).upsert_entity(
            {**_onboarding_keys(onboarding), **fields}, mode=UpdateMode.MERGE)

    def update_onboarding(self, onboarding: str, change: Callable[[dict], dict | None]) -> dict:
        """Read-modify-write with ETag: `change` gets the current entity and returns the fields to set.

        A concurrent writer makes the update fail with 412; it is then re-read and re-applied."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import UpdateMode

        table = self._table(ONBOARDINGS)
        for _ in range(MAX_ETAG_RETRIES):
            entity = table.get_entity(*_onboarding_key_pair(onboarding))
            updates = change(dict(entity))
            if not updates:
                return dict(entity)
            merged = {**entity, **updates}
            try:
                table.update_entity(merged, mode=UpdateMode.MERGE, etag=entity.metadata["etag"],
                                    match_condition=MatchConditions.IfNotModified)
                return merged
            except ResourceModifiedError:
                log.info("onboarding %s changed concurrently; retrying the update", onboarding)
        raise RuntimeError(f"onboarding {onboarding} kept changing; gave up after {MAX_ETAG_RETRIES} tries")

    def onboardings_page(self, tenant_id: str | None, status: str | None, page_size: int,
                         continuation: str | None = None) -> tuple[list[dict], str | None]:
        """One page of onboarding records (of one tenant: its partition; in one recorded Status) and the next page's
        token (encode_continuation; None on the last page)."""
        parameters = {"pk": table_key(tenant_id.lower()) if tenant_id is not None else "", "status": status or ""}
        if tenant_id is not None and status is not None:
            query = "PartitionKey eq @pk and Status eq @status"
        elif tenant_id is not None:
            query = "PartitionKey eq @pk"
        elif status is not None:
            query = "Status eq @status"
        else:
            query = ""  # every record
        table = self._table(ONBOARDINGS)
        marker = decode_continuation(continuation) if continuation else None
        if query:
            entities = table.query_entities(query, parameters=parameters, results_per_page=page_size)
        else:
            entities = table.list_entities(results_per_page=page_size)
        pages = entities.by_page(marker)
        page = [dict(e) for e in next(pages, [])]
        token = pages.continuation_token
        return page, encode_continuation(token) if token else None

    # -- certificates ---------------------------------------------------------------------------------
    def upsert_certificate(self, onboarding: str, fields: dict) -> None:
        """Record the certificate tracked for an onboarding (thumbprint, notAfter, names), and its expiry index."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        row = table_key(onboarding)   # refused before any request
        table = self._table(CERTIFICATES)
        previous = None
        if fields.get("NotAfter") is not None:
            with contextlib.suppress(ResourceNotFoundError):
                previous = table.get_entity("certificate", row).get("NotAfter")
        entity = {"PartitionKey": "certificate", "RowKey": row, **fields}
        table.upsert_entity(entity, mode=UpdateMode.MERGE)
        if fields.get("NotAfter") is not None:
            self.index_certificate_expiry(onboarding, {**fields}, previous)

    # -- the expiry index -----------------------------------------------------------------------------
    def _existing_table(self, name: str) -> TableClient:
        """A table's client without creating it (a read or delete of a table that never existed is a 404)."""
        return self._tables.get(name) or self._service.get_table_client(name)

    def index_certificate_expiry(self, onboarding: str, fields: dict,
                                 previous_not_after: datetime | None = None) -> None:
        """Put the certificate under its expiry day (in its month's table); a notAfter that moved leaves its old day."""
        from azure.data.tables import UpdateMode

        day = expiry_day(fields["NotAfter"])
        month = expiry_month(day)
        self._table(expiry_table(month)).upsert_entity({"PartitionKey": day, "RowKey": table_key(onboarding),
                                                        **fields}, mode=UpdateMode.MERGE)
        # Listed after the row is written, and on every write (a new ETag): a scan that found the month empty
        # before this row can't then drop it from the list (its delete is If-Match the ETag it read).
        self._table(EXPIRY_MONTHS).upsert_entity({"PartitionKey": "month", "RowKey": month}, mode=UpdateMode.MERGE)
        if previous_not_after is not None and expiry_day(previous_not_after) != day:
            self.unindex_certificate_expiry(onboarding, previous_not_after)

    def certificates_expiring_by_day(self, first_day: str | None, last_day: str) -> Iterator[dict]:
        """Indexed certificates whose expiry day is in [first_day, last_day] (None: every earlier day too).

        Reads the listed months in the range, one table each; a month the range covers whole and found empty is
        taken off the list (If-Match: not if a row was written meanwhile)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        months_query, parameters = "PartitionKey eq 'month' and RowKey le @last", {"last": expiry_month(last_day)}
        if first_day is not None:
            months_query += " and RowKey ge @first"
            parameters["first"] = expiry_month(first_day)
        months = list(self._table(EXPIRY_MONTHS).query_entities(months_query, parameters=parameters))
        for listed in sorted(months, key=lambda e: e["RowKey"]):
            month = listed["RowKey"]
            first = max(first_day or month + "00", month + "00")
            last = min(last_day, month + "99")
            found = 0
            try:
                for entity in self._existing_table(expiry_table(month)).query_entities(
                        "PartitionKey ge @first and PartitionKey le @last", parameters={"first": first, "last": last}):
                    found += 1
                    yield dict(entity)
            except ResourceNotFoundError:
                pass  # listed, but its table is gone: nothing in it
            if not found and first == month + "00" and last == month + "99":
                with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
                    self._table(EXPIRY_MONTHS).delete_entity("month", month, etag=listed.metadata.get("etag"),
                                                             match_condition=MatchConditions.IfNotModified)

    def unindex_certificate_expiry(self, onboarding: str, not_after: datetime) -> None:
        """Take a certificate out of its expiry day (an expired one that had its last alert stays tracked)."""
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            day = expiry_day(not_after)
            self._existing_table(expiry_table(expiry_month(day))).delete_entity(day, table_key(onboarding))

    def get_certificate(self, onboarding: str) -> dict | None:
        """The certificate record tracked for an onboarding, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self._table(CERTIFICATES).get_entity("certificate", table_key(onboarding)))
        except ResourceNotFoundError:
            return None

    def unindex_retired_certificate(self, onboarding: str, *not_afters: datetime | None) -> None:
        """An offboarded onboarding's certificate leaves the expiry index (its record stays, for audit): the day of
        the certificate record's notAfter and of any other given (the onboarding record's), idempotently."""
        record = self.get_certificate(onboarding) or {}
        days = {expiry_day(moment): moment for moment in (record.get("NotAfter"), *not_afters)
                if isinstance(moment, datetime)}
        for moment in days.values():
            self.unindex_certificate_expiry(onboarding, moment)

    def certificates_page(self, expiring_before: datetime | None, page_size: int,
                          continuation: str | None = None) -> tuple[list[dict], str | None]:
        """One page of tracked certificates (notAfter before `expiring_before` if given) and the next page's token."""
        if expiring_before is None:
            query, parameters = "PartitionKey eq @pk", {"pk": "certificate"}
        else:
            query, parameters = "PartitionKey eq @pk and NotAfter lt @moment", {"pk": "certificate",
                                                                                 "moment": expiring_before}
        pages = self._table(CERTIFICATES).query_entities(query, parameters=parameters, results_per_page=page_size
                                                          ).by_page(decode_continuation(continuation)
                                                                    if continuation else None)
        page = next(pages, [])
        entities = [dict(e) for e in page]
        token = pages.continuation_token
        return entities, encode_continuation(token) if token else None

    # -- alert state (one record per certificate version, ETag-guarded) ---------------------------------
    def alert_state(self, onboarding: str, version: str) -> Stored | None:
        """The alerts already claimed for this certificate version, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table(ALERTS).get_entity(table_key(onboarding), table_key(f"v-{version}"))
        except ResourceNotFoundError:
            return None
        return Stored(dict(entity), entity.metadata.get("etag"))

    def alerts_of(self, onboarding: str) -> list[dict]:
        """Every alert-state record of an onboarding (one per certificate version)."""
        return [dict(e) for e in self._table(ALERTS).query_entities("PartitionKey eq @pk",
                                                                   parameters={"pk": onboarding})]

    def claim_alert(self, onboarding: str, version: str, seen: Stored | None, fields: dict) -> bool:
        """Record an alert as sent, only if the record is still as `seen` (insert when it was None, else If-Match
        its ETag): of two runs that saw the same state, one claims the alert and the other gets False."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.data.tables import UpdateMode

        table = self._table(ALERTS)
        entity = {"PartitionKey": table_key(onboarding), "RowKey": table_key(f"v-{version}"), **fields}
        try:
            if seen is None:
                table.create_entity(entity)
            else:
                table.update_entity(entity, mode=UpdateMode.MERGE, etag=seen.etag,
                                    match_condition=MatchConditions.IfNotModified)
            return True
        except (ResourceExistsError, ResourceModifiedError):
            return False

    def release_alert(self, onboarding: str, version: str, seen: Stored | None) -> None:
        """Undo a claim whose orchestration could not start, so the next run tries again: back to `seen`."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        table = self._table(ALERTS)
        if seen is None:
            with contextlib.suppress(ResourceNotFoundError):
                table.delete_entity(table_key(onboarding), table_key(f"v-{version}"))
        else:
            table.upsert_entity(dict(seen.entity), mode=UpdateMode.REPLACE)

    # -- expiry runs ----------------------------------------------------------------------------------
    def start_expiry_run(self, run: str, started: datetime, fields: dict) -> None:
        """Record a run of the expiry monitor as started; row keys sort newest first."""
        from azure.data.tables import UpdateMode

        self._table(EXPIRY_RUNS).upsert_entity({"PartitionKey": "run", "RowKey": table_key(run_key(started, run)),
                                                "RunId": run, "StartedAt": started, **fields},
                                               mode=UpdateMode.REPLACE)

    def finish_expiry_run(self, run: str, started: datetime, fields: dict) -> None:
        """Set a run's results (finished time, what it started)."""
        from azure.data.tables import UpdateMode

        self._table(EXPIRY_RUNS).upsert_entity({"PartitionKey": "run", "RowKey": table_key(run_key(started, run)),
                                                **fields}, mode=UpdateMode.MERGE)

    def expiry_runs(self, count: int = 1) -> list[dict]:
        """The latest `count` runs, newest first."""
        pages = self._table(EXPIRY_RUNS).query_entities("PartitionKey eq @pk", parameters={"pk": "run"},
                                                        results_per_page=count).by_page()
        return [dict(e) for e in next(pages, [])][:count]

    def purge_audit_before(self, cutoff: datetime, most: int = 1000) -> int:
        """Delete up to `most` audit entries older than `cutoff`; how many went."""
        from azure.core.exceptions import ResourceNotFoundError

        deleted = 0
        for entity in self._table(AUDIT).query_entities("At lt @cutoff", parameters={"cutoff": cutoff},
                                                       select=["PartitionKey", "RowKey"]):
            with contextlib.suppress(ResourceNotFoundError):
                self._table(AUDIT).delete_entity(entity["PartitionKey"], entity["RowKey"])
            deleted += 1
            if deleted >= most:
                break
        return deleted

    def certificates_expiring_before(self, moment: datetime) -> Iterator[dict]:
        """Tracked certificates whose notAfter is before `moment`."""
        yield from self._table(CERTIFICATES).query_entities(
            "PartitionKey eq @pk and NotAfter lt @moment", parameters={"pk": "certificate", "moment": moment})

    # -- audit ----------------------------------------------------------------------------------------
    def audit(self, onboarding: str, event: str, at: datetime, details: dict | None = None,
              key: str | None = None) -> None:
        """Append an audit entry; `key` makes it idempotent (an activity retried writes it once)."""
        from azure.data.tables import UpdateMode

        # Row keys sort ascending, so the timestamp prefix keeps entries in order; a retried activity
        # passes the same `key` and overwrites its own entry instead of adding one.
        row = key if key is not None else f"{at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}"
        entity = {"PartitionKey": table_key(onboarding), "RowKey": table_key(row), "Event": event, "At": at,
                  **(details or {})}
        self._table(AUDIT).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def audit_trail(self, onboarding: str) -> list[dict]:
        """The audit entries of an onboarding, oldest first."""
        entries = self._table(AUDIT).query_entities("PartitionKey eq @pk", parameters={"pk": onboarding})
        return sorted((dict(e) for e in entries), key=lambda e: e["At"])

    # -- consent states (the onboarding link's single-use state) ----------------------------------------
    def create_consent_state(self, nonce: str, fields: dict) -> None:
        """Record a new consent state's nonce, unused, with what its link asks for (ids and names, no secrets)."""
        self._table(CONSENT_STATES).create_entity({"PartitionKey": table_key(nonce), "RowKey": "state",
                                                   **fields, "Used": False})

    def get_consent_state(self, nonce: str) -> Stored | None:
        """A consent state's row with its ETag, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table(CONSENT_STATES).get_entity(table_key(nonce), "state")
        except ResourceNotFoundError:
            return None
        return Stored(dict(entity), entity.metadata.get("etag"))

    def consume_consent_state(self, seen: Stored, fields: dict) -> bool:
        """Mark a consent state used, only if it is still unused and as `seen` (If-Match its ETag): of two callbacks
        with one state, exactly one gets True."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        if seen.entity.get("Used") or not seen.etag:
            return False
        entity = {"PartitionKey": seen.entity["PartitionKey"], "RowKey": seen.entity["RowKey"], **fields,
                  "Used": True}
        try:
            self._table(CONSENT_STATES).update_entity(entity, mode=UpdateMode.MERGE, etag=seen.etag,
                                                      match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def purge_consent_states_before(self, cutoff: datetime, most: int = 1000) -> int:
        """Delete up to `most` consent states that expired before `cutoff` (used or not: an expired state is refused
        whatever its row says); how many went."""
        from azure.core.exceptions import ResourceNotFoundError

        deleted = 0
        for entity in self._table(CONSENT_STATES).query_entities("ExpiresAt lt @cutoff", parameters={"cutoff": cutoff},
                                                                 select=["PartitionKey", "RowKey"]):
            with contextlib.suppress(ResourceNotFoundError):
                self._table(CONSENT_STATES).delete_entity(entity["PartitionKey"], entity["RowKey"])
            deleted += 1
            if deleted >= most:
                break
        return deleted

    def close(self) -> None:
        """Close the HTTP sessions."""
        for client in self._tables.values():
            client.close()
        self._service.close()
