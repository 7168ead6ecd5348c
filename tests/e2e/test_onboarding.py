"""Automatic onboarding end to end: the product's function_app on the sandbox host, against the simulator
(Entra ID, Graph, Key Vault) and Azurite, driven only over the product's HTTP API."""

from __future__ import annotations

import json
import re

import pytest
from azure.data.tables import TableServiceClient
from azure.identity import ClientSecretCredential

from sandbox.azurite import ACCOUNT_KEY as AZURITE_ACCOUNT_KEY
from shared.keyvault import certificate_name
from shared.state import StateStore, onboarding_id
from tests.conftest import customers
from tests.e2e.conftest import ALL_PERMISSIONS, EXCHANGE_PERMISSIONS, GRAPH_PERMISSIONS, ONE_OF_EACH, objects_of

JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}")
# A status token (shared/signing.py): <Key Vault secret version>.<base64url payload>.<base64url HMAC-SHA256>.
STATUS_TOKEN = re.compile(r"[0-9a-zA-Z]{32}\.eyJ[\w-]{10,}\.[\w-]{43}")


def test_onboarding_completes_with_a_token_proof_and_a_second_run_creates_nothing(
        simulator, product, vault, admin_consent):
    tenant = customers(simulator)[1]["tenantId"]
    admin_consent(tenant)
    mailbox = "contact-sync@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    assert started["id"] == onboarding_id(tenant, mailbox)
    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["status"] == "completed"
    assert set(status["permissions"]) == ALL_PERMISSIONS
    assert status["directoryRole"] == "Exchange Administrator"
    assert set(status["proofRoles"]["Microsoft Graph"]) >= GRAPH_PERMISSIONS
    assert set(status["proofRoles"]["Office 365 Exchange Online"]) >= EXCHANGE_PERMISSIONS
    assert re.fullmatch(r"[0-9A-F]{40}", status["certificate"]["thumbprint"])
    app = next(a for a in simulator.tenant_state(tenant)["applications"]
               if a["appId"] == status["application"]["appId"])
    assert app["displayName"].endswith(f"({mailbox})")
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH

    again = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox.upper()})
    assert again["id"] == started["id"]
    assert product.finish(again["id"])["runtimeStatus"] == "Completed"
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH

    # The audit trail keeps both runs: the first created, the second found everything in place. Within a run the
    # steps before the proof run partly at once (their order varies); the proof and the record come after them all.
    store = StateStore(product.connection_string)
    events = [e["Event"] for e in store.audit_trail(started["id"])]
    store.close()
    assert sorted(events[:6]) == sorted(["certificate.created", "application.created", "servicePrincipal.created",
                                         "consent.granted", "directoryRole.assigned", "keyCredential.added"])
    assert events[6:8] == ["proof.succeeded", "onboarding.completed"]
    assert sorted(events[8:14]) == sorted(["certificate.reused", "application.updated", "servicePrincipal.exists",
                                           "consent.exists", "directoryRole.exists", "keyCredential.exists"])
    assert events[14:] == ["proof.succeeded", "onboarding.completed"]

    secrets_scan(simulator, product, started["id"])


def test_exportable_keys_are_refused_unless_the_operator_enables_them(simulator, product):
    tenant = customers(simulator)[1]["tenantId"]
    response = product.api("POST", "/onboardings", json={"tenantId": tenant, "serviceMailbox": "export@contoso.com",
                                                         "certificate": {"exportable": True}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["target"] == "certificate.exportable"
    assert "CERTAUTH_ALLOW_EXPORTABLE_KEYS" in error["details"][0]["message"]


def test_an_exportable_key_still_never_passes_through_the_product(simulator, azurite, admin_consent):
    """Opting in to an exportable key (the operator's setting) puts a PFX in the vault; the product still never
    reads or stores it."""
    import base64

    from azure.keyvault.secrets import SecretClient
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from tests.e2e.conftest import Product

    tenant = customers(simulator)[1]["tenantId"]
    admin_consent(tenant)
    mailbox = "exportable@contoso.com"
    product = Product(simulator, azurite.connection_string, env={"CERTAUTH_ALLOW_EXPORTABLE_KEYS": "true"}).launch()
    try:
        started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox, "certificate": {"exportable": True}})
        assert product.finish(started["id"])["runtimeStatus"] == "Completed"
        home = simulator.home
        credential = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                            home["provisioner"]["clientSecret"],
                                            authority=simulator.info["authorityHost"], disable_instance_discovery=True)
        with SecretClient(simulator.info["vaultUrl"], credential, verify_challenge_resource=False) as secrets:
            pfx_b64 = secrets.get_secret(certificate_name(started["id"])).value
        key, _, _ = pkcs12.load_key_and_certificates(base64.b64decode(pfx_b64), None)
        key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        secrets_scan(simulator, product, started["id"],
                     extra={"PFX": pfx_b64[100:160], "private key": base64.b64encode(key_der).decode()[100:160]})
    finally:
        product.stop()


def test_replication_delay_and_throttling_are_ridden_out(simulator, product, vault, admin_consent, clean_faults):
    tenant = customers(simulator)[2]["tenantId"]
    admin_consent(tenant)
    before = simulator.requests_since(0)["next"]
    simulator.set_faults(
        [{"origin": "graph", "status": 429, "ratePerSecond": 4, "retryAfter": 1}],
        {"application": 60, "servicePrincipal": 60})
    mailbox = "replication@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    status = product.finish(started["id"], timeout=240)
    assert status["runtimeStatus"] == "Completed", status
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
    served = simulator.requests_since(before)["requests"]
    assert any(r["status"] == 429 for r in served), "the storm never hit"
    history = product.history(started["id"])["historyEvents"]
    results = [e["Result"] if isinstance(e["Result"], dict) else json.loads(e["Result"])
               for e in history if e["EventType"] == "TaskCompleted"]
    retried = [r for r in results if isinstance(r, dict) and r.get("retry")]
    assert retried, "replication delay never made a step retry"
    assert {r["error"]["step"] for r in retried} >= {"servicePrincipal", "consent"}
    assert any("reference" in r["error"]["message"] or "does not reference a valid application" in
               r["error"]["message"] or "not replicated" in r["error"]["message"] for r in retried)
    # Each retry waited on a durable timer (the sandbox clock moved; nobody slept).
    assert len([e for e in history if e["EventType"] == "TimerFired"]) == len(retried)


def test_missing_role_management_permission_fails_naming_the_step_and_what_exists(
        simulator, product, vault, admin_consent):
    tenant = customers(simulator)[3]["tenantId"]
    admin_consent(tenant)
    consent_app = simulator.home["consentApp"]["clientId"]
    reduced = [r for r in simulator.info["defaultProvisionerRoles"] if r != "RoleManagement.ReadWrite.Directory"]
    simulator.grant(tenant, reduced, principal=consent_app)
    mailbox = "no-role@contoso.com"
    started = product.onboard({"tenantId": tenant, "serviceMailbox": mailbox})
    status = product.finish(started["id"])
    assert status["runtimeStatus"] == "Failed"
    assert status["status"] == "failed"
    assert status["error"]["step"] == "directoryRole"
    assert status["error"]["status"] == 403
    assert status["error"]["code"] == "Authorization_RequestDenied"
    created = status["created"]
    assert created["application"]["appId"] == status["application"]["appId"]
    assert created["servicePrincipalId"]
    assert set(created["permissions"]) == ALL_PERMISSIONS
    # The key goes onto the app beside consent and the role: there if its step finished before the failure ended
    # the run, which `created` says.
    assert objects_of(simulator, vault, tenant, mailbox) == {**ONE_OF_EACH, "roleAssignments": 0,
                                                             "keys": int("keyCredential" in created)}


BAD_BODIES = [
    b"", b"{", b"[]", b'{"tenantId": 1}',
    json.dumps({"serviceMailbox": "a@contoso.com"}).encode(),
    json.dumps({"tenantId": "not-a-guid", "serviceMailbox": "a@contoso.com"}).encode(),
    json.dumps({"tenantId": "00000000-0000-0000-0000-000000000000", "serviceMailbox": "a@contoso.com"}).encode(),
]


def _bad_requests(tenant: str) -> list[bytes]:
    def body(**fields) -> bytes:
        return json.dumps({"tenantId": tenant, "serviceMailbox": "ok@contoso.com", **fields}).encode()

    return [*BAD_BODIES,
            body(serviceMailbox="not-an-address"), body(serviceMailbox="a@b@contoso.com"),
            body(serviceMailbox="x@contoso.com\r\nBcc: y@evil.example"),
            body(serviceMailbox="\"$(Remove-Item -Recurse C:\\\\)\"@contoso.com"),
            body(serviceMailbox="x`$(whoami)`@contoso.com"), body(serviceMailbox="x@contoso.com' or 1 eq 1"),
            body(serviceMailbox="<script>alert(1)</script>@contoso.com"), body(serviceMailbox="ünï@contoso.com"),
            body(method="semi"), body(permissionProfile="everything"), body(directoryRole="global-administrator"),
            body(certificate={"validityMonths": 0}), body(certificate={"validityMonths": 25}),
            body(certificate={"keySize": 1024}), body(certificate={"exportable": "yes"}),
            body(certificate={"password": "hunter2"}), body(admin="x"), b"{" + b" " * 20000 + b"}"]


def test_bad_requests_get_400_and_create_nothing(simulator, product, azurite):
    tenant = customers(simulator)[1]["tenantId"]
    before_graph = {t["tenantId"]: simulator.tenant_state(t["tenantId"])["counts"]
                    for t in simulator.info["tenants"]}
    before_requests = simulator.requests_since(0)["next"]
    tables = TableServiceClient.from_connection_string(azurite.connection_string)

    def entity_counts() -> dict:
        return {t.name: sum(1 for _ in tables.get_table_client(t.name).list_entities())
                for t in tables.list_tables() if t.name.startswith("certauth")}

    before_tables = entity_counts()
    bodies = _bad_requests(tenant)
    assert len(bodies) >= 20
    for body in bodies:
        response = product.api("POST", "/onboardings", data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (body[:80], response.text)
        error = response.json()["error"]
        assert error["code"] == "InvalidRequest"
        assert response.headers["x-ms-error-code"] == "InvalidRequest"
        assert error["details"], error
        # Azure's shape: each problem's target is the field, its message the rule.
        assert all(d["code"] and d["target"] and d["message"] for d in error["details"]), error
    assert entity_counts() == before_tables
    assert {t["tenantId"]: simulator.tenant_state(t["tenantId"])["counts"]
            for t in simulator.info["tenants"]} == before_graph
    served = simulator.requests_since(before_requests)["requests"]
    assert not [r for r in served if r["origin"] in ("graph", "vault")], served


def test_onboarding_requires_a_function_key(product):
    response = product.call("POST", "/api/onboardings", key=None, json={})
    assert response.status_code == 401


def secrets_scan(simulator, product, onboarding: str, extra: dict[str, str] | None = None) -> None:
    """Private keys and tokens appear nowhere the product persists or says: Table entities (its own and
    the task hub's history), the orchestration's inputs, outputs and history, its logs, its responses."""
    connection = product.connection_string
    tables = TableServiceClient.from_connection_string(connection)
    persisted = [json.dumps(dict(e), default=str) for t in tables.list_tables()
                 for e in tables.get_table_client(t.name).list_entities()]
    history = json.dumps(product.history(onboarding))
    logs = "\n".join(product.stderr_lines)
    places = {"tables": "\n".join(persisted), "history": history, "logs": logs,
              "responses": "\n".join(product.responses)}
    assert "ensure_certificate" in history
    assert "prove_onboarding" in history
    assert any("onboarding" in line for line in product.stderr_lines)         # the logs were captured
    forbidden = {"PEM private key": re.compile(r"PRIVATE KEY"), "JWT (token or assertion)": JWT,
                 "identity header": re.compile(re.escape(simulator.info["identityHeader"])),
                 "storage account key": re.compile(r"AccountKey=|" + re.escape(AZURITE_ACCOUNT_KEY)),
                 "SAS signature": re.compile(r"[?&]sig=", re.IGNORECASE),
                 "function key": re.compile("|".join(re.escape(k) for k in (product.function_key, product.admin_key))),
                 "signing key": re.compile(re.escape(signing_key_value(simulator, product)))}
    forbidden |= {what: re.compile(re.escape(fragment)) for what, fragment in (extra or {}).items()}
    for place, text in places.items():
        for what, pattern in forbidden.items():
            assert not pattern.search(text), f"{what} found in {place}"
    # Capability URLs go back only to the caller that asked: the POST's own answer (and the Location headers
    # of 202s, which are not kept here).
    places["responses"] = "\n".join(text for text in product.responses if text not in product.post_answers)
    for place, text in places.items():
        assert not STATUS_TOKEN.search(text), f"status token found in {place}"


def signing_key_value(simulator, product) -> str:
    """The signing key (its current version), as the operator reads it from Key Vault."""
    from azure.keyvault.secrets import SecretClient

    home = simulator.home
    credential = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                        home["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    name = product.env.get("CERTAUTH_SIGNING_KEY_SECRET", "certauth-signing-key")
    with SecretClient(simulator.info["vaultUrl"], credential, verify_challenge_resource=False) as secrets:
        value = secrets.get_secret(name).value
    assert len(value or "") >= 43, "the product created no signing key"
    return value


def test_the_secrets_scan_finds_what_it_looks_for(simulator, product):
    """The scan above is not vacuous: a token in a response is caught."""
    jwt = "leaked eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwcyJ9.c2lnbmF0dXJlLWJ5dGVz"
    product.responses.append(jwt)
    try:
        with pytest.raises(AssertionError, match="JWT"):
            secrets_scan(simulator, product, product_any_instance(product))
    finally:
        product.responses.remove(jwt)  # the scan itself keeps the history document it read
    # A status URL anywhere but the POST's own answer is caught too.
    started = next(text for text in product.post_answers if "statusQueryGetUri" in text)
    leak = f"GET {json.loads(started)['statusQueryGetUri']}"
    product.stderr_lines.append(leak)
    try:
        with pytest.raises(AssertionError, match="status token found in logs"):
            secrets_scan(simulator, product, product_any_instance(product))
    finally:
        product.stderr_lines.remove(leak)  # the host's stderr reader may have appended lines since


def product_any_instance(product) -> str:
    """Some onboarding instance this module's host ran."""
    for text in product.responses:
        match = re.search(r'"id": "([0-9a-f-]{36}\.[0-9a-f]{20})"', text)
        if match:
            return match.group(1)
    raise AssertionError("no onboarding ran yet")


def test_concurrent_requests_for_one_mailbox_converge_on_one_onboarding(simulator, product, vault, admin_consent):
    from concurrent.futures import ThreadPoolExecutor

    tenant = customers(simulator)[2]["tenantId"]
    admin_consent(tenant)
    mailbox = "concurrent@contoso.com"
    body = {"tenantId": tenant, "serviceMailbox": mailbox}
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: product.api("POST", "/onboardings", json=body), range(4)))
    assert [r.status_code for r in responses] == [202] * 4
    ids = {r.json()["id"] for r in responses}
    assert ids == {onboarding_id(tenant, mailbox)}
    assert product.finish(ids.pop())["runtimeStatus"] == "Completed"
    assert objects_of(simulator, vault, tenant, mailbox) == ONE_OF_EACH
