"""A tenant whose app management policy caps certificate lifetimes at 90 days (asymmetricKeyLifetime P90D),
end to end through the product's HTTP API.

Where the product may read the policy (its onboarding app holds Policy.Read.All in the tenant), an explicit
12-month request is refused with a 400 that names the field and the cap, and a request without validityMonths
gets a certificate that fits (2 months: Key Vault counts whole months). Where it may not, a 12-month onboarding
fails when its key goes onto the app (the keyCredential step) with Graph's error, which names the policy."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.keyvault import certificate_name
from shared.state import onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import objects_of

TENANT_INDEX = 2  # mailboxes below are used by no other test
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"
CAP = timedelta(days=90)
CAP_POLICY = {"isEnabled": True, "applicationRestrictions": {"passwordCredentials": [], "keyCredentials": [
    {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P90D", "state": "enabled",
     "restrictForAppsCreatedAfterDateTime": "2020-01-01T00:00:00Z"}]}}
TOKEN_LIFETIME = 3600  # the simulator's access tokens last 3599 s


@pytest.fixture
def capped_tenant(simulator, admin_consent):
    """Customer tenant 2 after admin consent, with the 90-day cap; its policy and the onboarding app's roles there
    are put back afterwards."""
    tenant = customers(simulator)[TENANT_INDEX]["tenantId"]
    admin_consent(tenant)
    before = simulator.app_management_policy(tenant)
    simulator.set_app_management_policy(tenant, CAP_POLICY)
    yield tenant
    simulator.set_app_management_policy(tenant, before)
    consent_app = simulator.home["consentApp"]["clientId"]
    simulator.grant(tenant, simulator.info["defaultProvisionerRoles"], principal=consent_app)


def onboarding_app_holds(simulator, tenant: str, extra: list[str]) -> None:
    """Set the onboarding app's Graph roles in the tenant, then let the product's cached tokens (issued with the
    old roles) expire: the sandbox clock moves past a token's lifetime."""
    roles = [*simulator.info["defaultProvisionerRoles"], *extra]
    simulator.grant(tenant, roles, principal=simulator.home["consentApp"]["clientId"])
    simulator.advance_clock(TOKEN_LIFETIME + 60)


def requested_months(product, instance: str) -> int:
    """The validityMonths the orchestration was started with (its input)."""
    document = product.history(instance)
    started = document["input"] if isinstance(document["input"], dict) else json.loads(document["input"])
    return started["certificate"]["validityMonths"]


def test_where_the_policy_is_readable_the_certificate_is_sized_to_it(simulator, product, vault, capped_tenant):
    onboarding_app_holds(simulator, capped_tenant, ["Policy.Read.All"])

    explicit = "policy-explicit@contoso.com"
    refused = product.api("POST", "/onboardings", json={"tenantId": capped_tenant, "serviceMailbox": explicit,
                                                         "certificate": {"validityMonths": 12}})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "InvalidRequest"
    [problem] = error["details"]
    assert problem["target"] == "certificate.validityMonths"
    assert "at most 2" in problem["message"]
    assert "P90D" in problem["message"]
    assert "P90D" in error["message"]
    # Nothing was started or created for the refused request.
    assert product.api("GET", f"/onboardings/{onboarding_id(capped_tenant, explicit)}").status_code == 404
    assert objects_of(simulator, vault, capped_tenant, explicit)["applications"] == 0

    sized = "policy-sized@contoso.com"
    started = product.onboard({"tenantId": capped_tenant, "serviceMailbox": sized})
    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert requested_months(product, started["id"]) == 2
    certificate = vault.get_certificate(certificate_name(started["id"]))
    assert certificate.policy.validity_in_months == 2
    lifetime = certificate.properties.expires_on - certificate.properties.not_before
    assert timedelta(days=59) <= lifetime <= CAP
    app = next(a for a in simulator.tenant_state(capped_tenant)["applications"]
               if a["appId"] == status["application"]["appId"])
    [key] = app["keyCredentials"]
    assert key["customKeyIdentifier"]  # the certificate Graph accepted under the policy
    assert status["certificate"]["notAfter"] == key["endDateTime"]


def test_where_the_policy_is_unreadable_a_12_month_onboarding_fails_at_the_key_credential_step(
        simulator, product, vault, capped_tenant):
    onboarding_app_holds(simulator, capped_tenant, [])  # no Policy.Read.All: the product cannot see the cap

    mailbox = "policy-unread@contoso.com"
    started = product.onboard({"tenantId": capped_tenant, "serviceMailbox": mailbox})
    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Failed", status
    assert status["status"] == "failed"
    assert requested_months(product, started["id"]) == 12  # the default: the cap was unknown
    error = status["error"]
    assert error["step"] == "keyCredential"
    assert error["status"] == 400
    assert error["code"] == "CredentialInvalidLifetimeAsPerAppPolicy"
    # Graph's text names the policy (not its limit); the product adds what it asked for and the ways out.
    assert f"as per assigned policy '{DEFAULT_POLICY_ID}'" in error["message"]
    assert "(12 months)" in error["message"]
    assert "certificate.validityMonths" in error["message"]
    assert "Policy.Read.All" in error["message"]
    # The app registration exists without the refused key. The service principal, consent and role run beside the
    # key: whatever of them finished before the failure ended the run exists, and the failure names exactly that.
    made = status["created"]
    assert "keyCredential" not in made
    assert objects_of(simulator, vault, capped_tenant, mailbox) == {
        "applications": 1, "keys": 0, "servicePrincipals": int("servicePrincipalId" in made),
        "appRoleAssignments": len(made.get("permissions") or []),
        "roleAssignments": int(bool(made.get("directoryRole"))), "certificateVersions": 1}
