"""Every Exchange address onboards (issue 9, item 5): service mailboxes with the characters Exchange's alias rule
allows beyond Entra's UPN rule (' | / # ? { } $ + ` = & %) go through the whole product, the sandbox host,
Graph, Key Vault and Table Storage, and come out right everywhere: status, audit trail, app display name,
certificate subject and Table keys. No request path carries the raw address. (Each sink on its own, and the
values the rule refuses: tests/unit/test_sinks.py.)"""

from __future__ import annotations

import urllib.parse

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from shared.settings import DEFAULT_APP_DISPLAY_NAME_PREFIX
from shared.state import StateStore, onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ALL_PERMISSIONS, ONE_OF_EACH, objects_of

pytestmark = pytest.mark.timeout(300)

MAILBOXES = [
    "x'|iex|'@contoso.com",
    "a/b#c?d@contoso.com",
    "{$x}@contoso.com",
    "o'brien+sync@contoso.com",
    "x`whoami`=1&100%@contoso.com",
]
# A first run's audit: the steps before the proof run partly at once (any order), then the proof and the record.
FIRST_RUN = ["certificate.created", "application.created", "servicePrincipal.created", "consent.granted",
             "directoryRole.assigned", "keyCredential.added"]
FIRST_RUN_END = ["proof.succeeded", "onboarding.completed"]


def _expected_cn(mailbox: str) -> str:
    """The certificate's CN: the app's display name, or `certauth (<mailbox>)` where that passes X.520's 64."""
    name = f"{DEFAULT_APP_DISPLAY_NAME_PREFIX} ({mailbox})"
    return name if len(name.encode()) <= 64 else f"certauth ({mailbox})"[:64]


def test_exchange_valid_hostile_addresses_onboard_with_one_of_each(simulator, product, vault, admin_consent):
    tenant = customers(simulator)[1]["tenantId"]
    admin_consent(tenant)
    before = simulator.requests_since(0)["next"]
    store = StateStore(product.connection_string)
    try:
        # One after the other: concurrency has its own tests (this one is about the addresses).
        for mailbox in MAILBOXES:
            accepted = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
            assert accepted["id"] == onboarding_id(tenant, mailbox)
            status = product.finish(accepted["id"], timeout=120)
            assert (status["runtimeStatus"], status["status"]) == ("Completed", "completed"), (mailbox, status)
            assert status["serviceMailbox"] == mailbox
            assert set(status["permissions"]) == ALL_PERMISSIONS
            assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH, mailbox

            app = next(a for a in simulator.tenant_state(tenant)["applications"]
                       if a["appId"] == status["application"]["appId"])
            assert app["displayName"] == f"{DEFAULT_APP_DISPLAY_NAME_PREFIX} ({mailbox})"

            # The certificate Key Vault made carries the CN as meant (the quoted subject was read right).
            certificate = vault.get_certificate(status["certificate"]["name"])
            subject = x509.load_der_x509_certificate(bytes(certificate.cer)).subject
            assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [_expected_cn(mailbox)]
            assert len(subject) == 1

            # Table Storage: keys are the onboarding id (a hash), the address is a value, kept as written.
            record = store.get_onboarding(accepted["id"]).entity
            assert (record["PartitionKey"], record["RowKey"]) == (tenant, accepted["id"])
            assert record["ServiceMailbox"] == mailbox
            trail = store.audit_trail(accepted["id"])
            events = [e["Event"] for e in trail]
            assert (sorted(events[:-2]), events[-2:]) == (sorted(FIRST_RUN), FIRST_RUN_END), mailbox
            assert {e["PartitionKey"] for e in trail} == {accepted["id"]}
    finally:
        store.close()

    # No request path or query (Graph filters, Key Vault names, Table keys) carried the address, raw or encoded.
    served = simulator.requests_since(before)["requests"]
    assert served
    for mailbox in MAILBOXES:
        local = mailbox.split("@")[0]
        leaked = [r for r in served if local in urllib.parse.unquote(r["path"]) or
                  urllib.parse.quote(local, safe="") in r["path"]]
        assert not leaked, (mailbox, leaked[:3])
