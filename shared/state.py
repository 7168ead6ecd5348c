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

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

log = logging.getLogger(__name__)

ONBOARDINGS = "certauthOnboardings"
CERTIFICATES = "certauthCertificates"
AUDIT = "certauthAudit"
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
        return shared(("state", settings.tables_endpoint), lambda: StateStore(
            service=TableServiceClient(settings.tables_endpoint, credential=home_credential(settings))))
    raise SettingsError("application setting TABLES_CONNECTION_STRING (or AzureWebJobsStorage, or "
                        "AzureWebJobsStorage__accountName for identity-based storage) is required but not set")


class StateStore:
    """The three tables, created on first use."""

    def __init__(self, connection_string: str | None = None, *, service: TableServiceClient | None = None) -> None:
        self._service = service or TableServiceClient.from_connection_string(connection_string)
        self._tables: dict[str, TableClient] = {}

    def _table(self, name: str) -> TableClient:
        client = self._tables.get(name)
        if client is None:
            with contextlib.suppress(ResourceExistsError):
                self._service.create_table(name)
            client = self._tables[name] = self._service.get_table_client(name)
        return client

    # -- onboardings ----------------------------------------------------------------------------------
    def get_onboarding(self, onboarding: str) -> Stored | None:
        """The onboarding record, or None."""
        try:
            entity = self._table(ONBOARDINGS).get_entity(*_onboarding_key_pair(onboarding))
        except ResourceNotFoundError:
            return None
        return Stored(dict(entity), entity.metadata.get("etag"))

    def create_onboarding(self, onboarding: str, fields: dict) -> bool:
        """Insert the record if it does not exist; False when it already existed (left untouched)."""
        entity = {**_onboarding_keys(onboarding), **fields}
        try:
            self._table(ONBOARDINGS).create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    def merge_onboarding(self, onboarding: str, fields: dict) -> None:
        """Set these fields of the record, leaving the others as they are (a step's own results)."""
        self._table(ONBOARDINGS).upsert_entity(
            {**_onboarding_keys(onboarding), **fields}, mode=UpdateMode.MERGE)

    def update_onboarding(self, onboarding: str, change: Callable[[dict], dict | None]) -> dict:
        """Read-modify-write with ETag: `change` gets the current entity and returns the fields to set.

        A concurrent writer makes the update fail with 412; it is then re-read and re-applied."""
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

    # -- certificates ---------------------------------------------------------------------------------
    def upsert_certificate(self, onboarding: str, fields: dict) -> None:
        """Record the certificate tracked for an onboarding (thumbprint, notAfter, names)."""
        entity = {"PartitionKey": "certificate", "RowKey": table_key(onboarding), **fields}
        self._table(CERTIFICATES).upsert_entity(entity, mode=UpdateMode.MERGE)

    def certificates_expiring_before(self, moment: datetime) -> Iterator[dict]:
        """Tracked certificates whose notAfter is before `moment`."""
        yield from self._table(CERTIFICATES).query_entities(
            "PartitionKey eq @pk and NotAfter lt @moment", parameters={"pk": "certificate", "moment": moment})

    # -- audit ----------------------------------------------------------------------------------------
    def audit(self, onboarding: str, event: str, at: datetime, details: dict | None = None,
              key: str | None = None) -> None:
        """Append an audit entry; `key` makes it idempotent (an activity retried writes it once)."""
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

    def close(self) -> None:
        """Close the HTTP sessions."""
        for client in self._tables.values():
            client.close()
        self._service.close()
