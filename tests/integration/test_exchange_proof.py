"""The Exchange proof (Onboarding.prove) against the simulator's Exchange Online origin, in process: a real app built
by the product's own steps (Key Vault certificate, Graph app and service principal, grants, with or without the
Exchange Administrator role), its token from the Key Vault-signed assertion, and the admin API's real answers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared import exchange
from shared.graph import directory_for
from shared.onboarding import Onboarding
from shared.state import onboarding_id
from tests.conftest import customers
from tests.integration.conftest import directory_steps

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def tenant(simulator, admin_consent) -> str:
    """The customer tenant of the Exchange proof's tests, consented to the onboarding app."""
    tenant_id = customers(simulator)[3]["tenantId"]
    admin_consent(tenant_id)
    return tenant_id




def set_up(settings, tenant: str, mailbox: str, **options) -> tuple[Onboarding, dict, dict]:
    """Steps 1-5 as the automatic method runs them; (the onboarding, the application step's result, the cert)."""
    oid = onboarding_id(tenant, mailbox)
    request = {"onboardingId": oid, "tenantId": tenant, "serviceMailbox": mailbox, "method": "automatic",
               "permissionProfile": "exchange-contact-sync", "directoryRole": "exchange-administrator",
               "certificate": {"validityMonths": 12, "keySize": 2048, "exportable": False},
               "runStartedAt": datetime.now(UTC).isoformat(), **options}
    onboarding = Onboarding(settings, request)
    onboarding.store.create_onboarding(oid, {"Status": "running"})
    now = datetime.now(UTC)
    cert = onboarding.ensure_certificate(now)
    assert cert["ok"], cert
    steps = directory_steps(onboarding, cert["certificate"], now)
    return onboarding, {**steps["app"], "servicePrincipalId": steps["sp"]["servicePrincipalId"]}, cert["certificate"]


def exchange_calls(simulator, since: int) -> list[dict]:
    """The InvokeCommand requests the simulator's Exchange origin served since `since`."""
    return [r for r in simulator.requests_since(since)["requests"]
            if r["origin"] == "exchange" and r["path"].endswith("/InvokeCommand")]


def record(onboarding: Onboarding) -> dict:
    return onboarding.store.get_onboarding(onboarding.id).entity


def test_with_the_role_exchange_online_proves_it(simulator, tenant, product_env):
    onboarding, app, cert = set_up(product_env, tenant, "exo-proof-role@contoso.com")
    before = simulator.requests_since(0)["next"]
    proof = onboarding.prove(app, cert, datetime.now(UTC))
    assert proof["ok"], proof
    assert proof["exchange"] == {"outcome": "proven", "detail": "directory role: proven by Exchange Online"}
    assert "Exchange.ManageAsApp" in proof["roles"]["Office 365 Exchange Online"]
    [call] = exchange_calls(simulator, before)
    assert (call["method"], call["status"]) == ("POST", 200)
    assert call["path"] == f"/adminapi/beta/{tenant}/InvokeCommand"
    assert json.loads(record(onboarding)["ExchangeProof"]) == proof["exchange"]


def test_without_a_requested_role_there_is_nothing_to_prove_and_no_call(simulator, tenant, product_env):
    onboarding, app, cert = set_up(product_env, tenant, "exo-proof-norole@contoso.com", directoryRole=None)
    before = simulator.requests_since(0)["next"]
    proof = onboarding.prove(app, cert, datetime.now(UTC))
    assert proof["ok"], proof
    assert proof["exchange"]["outcome"] == "notApplicable"
    assert exchange_calls(simulator, before) == []


def test_a_profile_without_exchange_manage_as_app_cannot_verify_a_requested_role(simulator, tenant, product_env):
    onboarding, app, cert = set_up(product_env, tenant, "exo-proof-graphonly@contoso.com",
                                   permissionProfile="graph-contact-sync")
    before = simulator.requests_since(0)["next"]
    proof = onboarding.prove(app, cert, datetime.now(UTC))
    assert proof["ok"], proof
    assert proof["exchange"] == exchange.NOT_VERIFIABLE
    assert proof["exchange"]["detail"] == "directory role: not verifiable with this profile"
    assert exchange_calls(simulator, before) == []


def test_a_role_exchange_refuses_is_retried_through_the_window_then_needs_attention(simulator, tenant, product_env):
    onboarding, app, cert = set_up(product_env, tenant, "exo-proof-removed@contoso.com")

    async def remove_roles() -> None:   # the role is gone (an admin removed it): Exchange refuses the app
        directory = directory_for(product_env, tenant)
        for assignment in await directory.directory_role_assignments(app["servicePrincipalId"]):
            await directory.unassign_directory_role(assignment["id"])

    asyncio.run(remove_roles())
    first = datetime.now(UTC)
    before = simulator.requests_since(0)["next"]
    refused = onboarding.prove(app, cert, first)
    assert refused["ok"] is False
    assert refused["retry"] is True
    error = refused["error"]
    assert (error["step"], error["status"], error["code"], error["waitingFor"]) == (
        "proof", 403, "ExchangeRoleNotSupported", "replication")
    assert "isn't supported in this scenario" in error["message"]
    assert datetime.fromisoformat(error["retryUntil"]) == first + exchange.ROLE_PROPAGATION_WINDOW
    # A later attempt inside the window measures from the first refusal (kept in the record), not from itself.
    later = onboarding.prove(app, cert, first + timedelta(minutes=10))
    assert later["retry"] is True
    assert later["error"]["retryUntil"] == error["retryUntil"]
    # After the window: the onboarding needs attention, named.
    final = onboarding.prove(app, cert, first + exchange.ROLE_PROPAGATION_WINDOW + timedelta(seconds=5))
    assert final["ok"] is False
    assert final["needsAttention"] == ["the app has no supported Exchange role"]
    assert (final["error"]["status"], final["error"]["code"]) == (403, "ExchangeRoleNotSupported")
    assert final["error"]["fix"].startswith("assign a supported Exchange role")
    assert [c["status"] for c in exchange_calls(simulator, before)] == [403, 403, 403]
    assert json.loads(record(onboarding)["ExchangeProof"])["outcome"] == "refused"
    # The window ended with that verdict: the next attempt (a verify after the admin's fix) starts a new one.
    again = onboarding.prove(app, cert, first + timedelta(hours=1))
    assert again["retry"] is True
    assert datetime.fromisoformat(again["error"]["retryUntil"]) == (first + timedelta(hours=1)
                                                                   + exchange.ROLE_PROPAGATION_WINDOW)


def test_a_role_still_replicating_is_refused_then_proven_with_a_fresh_token(simulator, tenant, product_env,
                                                                             clean_faults):
    simulator.set_faults([], {"roleAssignment": 600})
    onboarding, app, cert = set_up(product_env, tenant, "exo-proof-replication@contoso.com")
    before = simulator.requests_since(0)["next"]
    early = onboarding.prove(app, cert, datetime.now(UTC))
    assert early["retry"] is True
    assert early["error"]["code"] == "ExchangeRoleNotSupported"
    simulator.advance_clock(601)
    # A new attempt gets a new token (a new credential): Exchange sees the replicated role in it.
    proof = onboarding.prove(app, cert, datetime.now(UTC))
    assert proof["ok"], proof
    assert proof["exchange"]["outcome"] == "proven"
    assert [c["status"] for c in exchange_calls(simulator, before)] == [403, 200]
    assert record(onboarding)["ExchangeRoleRefusedSince"] == ""


def test_a_401_of_the_admin_api_waits_for_the_grant(simulator, tenant, product_env, clean_faults):
    onboarding, app, cert = set_up(product_env, tenant, "exo-proof-401@contoso.com")
    simulator.set_faults([{"origin": "exchange", "path": "InvokeCommand", "status": 401, "count": 1}])
    waiting = onboarding.prove(app, cert, datetime.now(UTC))
    assert waiting["retry"] is True
    assert (waiting["error"]["status"], waiting["error"]["code"], waiting["error"]["waitingFor"]) == (
        401, "ExchangeManageAsAppNotInToken", "replication")
    assert onboarding.prove(app, cert, datetime.now(UTC))["exchange"]["outcome"] == "proven"
