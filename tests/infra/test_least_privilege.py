"""The onboarding app's least-privilege set, the one infra/scripts grant, is enough: in the strict simulator (Graph
authorises each call from the token's roles, as Microsoft documents them) a customer tenant whose consent holds
exactly that set is onboarded (app, service principal, grants, the Exchange Administrator role, the proof) and
offboarded for good (grants, role, service principal, app, deleted items).

Tenant: customers(simulator)[5], with its onboarding app's grants restored to the simulator's default afterwards."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import customers
from tests.e2e.test_offboarding import follow, offboard, started
from tests.infra.bicep import ROOT

pytestmark = pytest.mark.timeout(300)


def script_permissions() -> list[str]:
    """The onboarding app's permissions as infra/scripts/onboarding-apps.sh grants them (without the option)."""
    shell = (ROOT / "infra" / "scripts" / "onboarding-apps.sh").read_text()
    return re.search(r"onboarding_permissions=\((.*?)\)", shell, re.DOTALL)[1].split()


def test_the_scripts_set_onboards_and_offboards(simulator, product, admin_consent):
    tenant = customers(simulator)[5]["tenantId"]
    consent_app = simulator.home["consentApp"]["clientId"]
    admin_consent(tenant)
    least = script_permissions()
    assert simulator.grant(tenant, least, principal=consent_app)["roles"]
    try:
        mailbox = f"least-{uuid.uuid4().hex[:8]}@contoso.com"
        final = product.finish(product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})["id"])
        assert final["status"] == "completed", final
        assert final["directoryRole"], final
        assert final["exchangeProof"]["outcome"] == "proven", final["exchangeProof"]
        oid = final["id"]
        gone = follow(product, started(offboard(product, oid, permanent=True), oid), f"offboarding-{oid}")
        assert gone["status"] == "retired", gone
        assert sorted(gone["removed"]["deletedPermanently"]) == sorted([final["servicePrincipalId"],
                                                                        final["application"]["objectId"]])
    finally:
        simulator.grant(tenant, simulator.info["defaultProvisionerRoles"], principal=consent_app)
