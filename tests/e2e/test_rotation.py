"""Rotation end to end for an app made by the manual method (the verifier holds no Graph write permission): the app
adds its own new key with addKey (a proof by the current key, signed in Key Vault), proves it, waits out the grace
period on a durable timer (the sandbox clock moves), and removes the old key with a proof by the new key.

Tenant: customers(simulator)[2]."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import datetime

import requests
from azure.identity import ClientAssertionCredential, ClientSecretCredential
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm

from shared.credentials import keyvault_signed_assertion
from shared.keyvault import certificate_name
from shared.settings import Settings
from shared.state import CERTIFICATES, expiry_day, store_for, table_key
from tests.conftest import customers
from tests.e2e.conftest import Product
from tests.e2e.test_manual_method import restore_provisioner, run_script, script_of, verify, wait_status  # noqa: F401

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def _zulu(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _manual_app(simulator, product: Product, tenant: dict, **certificate) -> tuple[str, str]:
    """A completed manual onboarding in `tenant`: (onboarding id, mailbox)."""
    mailbox = f"rotate-{uuid.uuid4().hex[:8]}@contoso.com"
    body = {"tenantId": tenant["tenantId"], "serviceMailbox": mailbox, "method": "manual"}
    if certificate:
        body["certificate"] = certificate
    instance = product.onboard(body)["id"]
    wait_status(product, instance, "waitingForAdmin")
    run_script(simulator, tenant, script_of(product, instance, tenant["tenantId"]))
    simulator.consent_verifier(tenant["tenantId"])
    verify(product, instance)
    final = product.finish(instance)
    assert final["status"] == "completed", final
    return instance, mailbox


def _app_keys(simulator, tenant_id: str, mailbox: str) -> tuple[dict, list[dict]]:
    state = simulator.tenant_state(tenant_id)
    [app] = [a for a in state["applications"] if a["displayName"].endswith(f"({mailbox})")]
    return app, app.get("keyCredentials") or []


def _key_thumbprints(simulator, tenant: dict, app: dict) -> list[str]:
    """The SHA-1 thumbprints of the app's keys, read from Graph ($select=keyCredentials returns their bytes)."""
    credential = ClientSecretCredential(tenant["tenantId"], tenant["provisioner"]["clientId"],
                                        tenant["provisioner"]["clientSecret"],
                                        authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    try:
        token = credential.get_token(GRAPH_SCOPE).token
    finally:
        credential.close()
    response = requests.get(f"{simulator.info['graphUrl']}/applications/{app['id']}?$select=keyCredentials",
                            headers={"Authorization": f"Bearer {token}"}, verify=simulator.info["caBundle"],
                            timeout=30)
    assert response.status_code == 200, response.text
    return [hashlib.sha1(base64.b64decode(k["key"])).hexdigest().upper() for k in response.json()["keyCredentials"]]


def _follow(product: Product, instance: str, done, *, longest: float | None = None, timeout: float = 120):
    """Poll until done(status document) holds, moving the sandbox clock to each pending durable timer of `instance`
    (only timers due within `longest` seconds, when given). No wall-clock waiting for time to pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = product.status(instance, history=True) or {}
        if done(document):
            return document
        assert document.get("runtimeStatus") not in ("Failed", "Terminated"), document.get("output")
        events = document.get("historyEvents") or []
        fired = {e.get("TimerId") for e in events if e["EventType"] == "TimerFired"}
        pending = [e for e in events if e["EventType"] == "TimerCreated" and e.get("EventId") not in fired]
        if pending:
            now = _zulu(product.simulator.admin("GET", "/clock")["now"])
            due = min(_zulu(e["FireAt"]) for e in pending)
            if due > now and (longest is None or (due - now).total_seconds() <= longest):
                product.simulator.advance_clock((due - now).total_seconds() + 0.5)
        time.sleep(0.05)  # polling the status, not waiting for time to pass
    raise AssertionError(f"{instance} never got there\n" + "\n".join(product.stderr_lines[-40:]))


def _rotation_record(azurite, instance: str) -> tuple[dict, dict]:
    store = store_for(azurite.connection_string)
    record = store.get_onboarding(instance).entity
    return record, json.loads(record.get("Rotation") or "{}")


def _token_with(simulator, tenant_id: str, app_id: str, key_id: str, cer: bytes) -> str:
    """An app-only token for the app, its assertion signed in Key Vault with `key_id` (the operator's identity)."""
    home = simulator.home
    operator = ClientSecretCredential(home["tenantId"], home["provisioner"]["clientId"],
                                      home["provisioner"]["clientSecret"],
                                      authority=simulator.info["authorityHost"], disable_instance_discovery=True)
    crypto = CryptographyClient(key_id, operator, verify_challenge_resource=False)
    settings = Settings(authority_host=simulator.info["authorityHost"], instance_discovery=False)
    assertion = keyvault_signed_assertion(settings, tenant_id, app_id, cer,
                                          lambda digest: crypto.sign(SignatureAlgorithm.rs256, digest).signature)
    credential = ClientAssertionCredential(tenant_id, app_id, assertion, authority=simulator.info["authorityHost"],
                                           disable_instance_discovery=True)
    try:
        return credential.get_token(GRAPH_SCOPE).token
    finally:
        credential.close()
        crypto.close()
        operator.close()


def test_a_manual_apps_key_rotates_by_itself_and_the_old_key_goes_after_the_grace_period(
        simulator, product, vault, azurite, restore_provisioner):  # noqa: F811
    tenant = customers(simulator)[2]
    tenant_id = tenant["tenantId"]
    instance, mailbox = _manual_app(simulator, product, tenant)
    app, keys = _app_keys(simulator, tenant_id, mailbox)
    assert len(keys) == 1
    [old_thumbprint] = _key_thumbprints(simulator, tenant, app)
    before, _ = _rotation_record(azurite, instance)
    assert before["Thumbprint"] == old_thumbprint

    mark = simulator.requests_since()["next"]
    response = product.api("POST", f"/onboardings/{instance}/rotate", json={"keySize": 3072})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["id"] == f"rotation-{instance}"
    location = response.headers["Location"]
    assert f"/api/onboardings/{instance}/rotation?token=" in location
    assert accepted["statusQueryGetUri"] == location
    # While it runs, the onboarding can't be re-run and a second rotate joins the same instance.
    again = product.api("POST", f"/onboardings/{instance}/rotate")
    assert again.status_code == 202, again.text
    assert again.json()["id"] == accepted["id"], again.text
    rerun = product.api("POST", "/onboardings", json={"tenantId": tenant_id, "serviceMailbox": mailbox,
                                                      "method": "manual"})
    assert rerun.status_code == 409, rerun.text
    assert rerun.json()["error"]["code"] == "RotationInProgress", rerun.text

    rotation_id = accepted["id"]
    # Retry timers (credential propagation) are minutes; the grace timer is a day: stop in front of it.
    _follow(product, rotation_id, lambda d: (d.get("customStatus") or {}).get("step") == "grace", longest=3600)
    record, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "running", rotation
    assert rotation["step"] == "grace", rotation
    new_thumbprint = rotation["newThumbprint"]
    assert new_thumbprint != old_thumbprint
    assert rotation["oldThumbprint"] == old_thumbprint
    assert sorted(_key_thumbprints(simulator, tenant, app)) == sorted([old_thumbprint, new_thumbprint])
    assert record["Thumbprint"] == new_thumbprint
    latest = vault.get_certificate(certificate_name(instance))
    assert hashlib.sha1(bytes(latest.cer)).hexdigest().upper() == new_thumbprint
    assert latest.policy.key_size == 3072
    # A token with the new key works.
    token = _token_with(simulator, tenant_id, app["appId"], latest.key_id, bytes(latest.cer))
    assert token.count(".") == 2
    # The key roll went through addKey as the app (no write permission): no PATCH of the app by anyone.
    graph = [r for r in simulator.requests_since(mark)["requests"] if r["origin"] == "graph"]
    assert any(r["method"] == "POST" and r["path"].endswith("/addKey") for r in graph), graph
    assert not any(r["method"] == "PATCH" for r in graph)

    status = requests.get(location, verify=simulator.info["caBundle"], timeout=30)
    assert status.status_code == 202, status.text
    assert status.json()["status"] == "running", status.text
    assert requests.get(location.replace("token=", "token=x"), verify=simulator.info["caBundle"],
                        timeout=30).status_code == 403

    # After the grace period the old key is gone: the clock moves over the grace timer.
    _follow(product, rotation_id, lambda d: d.get("runtimeStatus") == "Completed")
    assert _key_thumbprints(simulator, tenant, app) == [new_thumbprint]  # exactly one current key
    assert any(r["method"] == "POST" and r["path"].endswith("/removeKey")
               for r in simulator.requests_since(mark)["requests"] if r["origin"] == "graph")
    record, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "completed", rotation
    assert rotation["removedKeyIds"], rotation
    assert record["Thumbprint"] == new_thumbprint
    certificate = next(iter(store_for(azurite.connection_string)._table(CERTIFICATES).query_entities(
        "Thumbprint eq @t", parameters={"t": new_thumbprint})), None)
    assert certificate is not None
    assert certificate["Thumbprint"] == new_thumbprint
    # The expiry index follows: the onboarding sits under the new notAfter's day only (no alert for the old one).
    indexed = [e for e in store_for(azurite.connection_string).certificates_expiring_by_day(None, "99991231")
               if e["RowKey"] == table_key(instance)]
    assert [e["Thumbprint"] for e in indexed] == [new_thumbprint]
    assert [e["PartitionKey"] for e in indexed] == [expiry_day(certificate["NotAfter"])]
    events = [e["Event"] for e in store_for(azurite.connection_string).audit_trail(instance)]
    for event in ("rotation.started", "rotation.certificateCreated", "rotation.keyAdded", "proof.succeeded",
                  "rotation.keyRotated", "rotation.oldKeyRemoved", "rotation.completed"):
        assert events.count(event) >= 1, (event, events)
    done = requests.get(location, verify=simulator.info["caBundle"], timeout=30)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed", done.text


def test_when_every_key_expired_a_manual_app_needs_a_manual_action(simulator, product, vault, azurite,
                                                                   restore_provisioner):  # noqa: F811
    tenant = customers(simulator)[2]
    tenant_id = tenant["tenantId"]
    instance, mailbox = _manual_app(simulator, product, tenant, validityMonths=1)
    old_version = vault.get_certificate(certificate_name(instance)).properties.version
    _app, [key] = _app_keys(simulator, tenant_id, mailbox)
    now = _zulu(simulator.admin("GET", "/clock")["now"])
    simulator.advance_clock((_zulu(key["endDateTime"]) - now).total_seconds() + 3600)

    response = product.api("POST", f"/onboardings/{instance}/rotate")
    assert response.status_code == 202, response.text
    rotation_id = response.json()["id"]
    _follow(product, rotation_id, lambda d: d.get("runtimeStatus") == "Completed")
    _, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "manualActionNeeded", rotation
    action = rotation["manualAction"]
    assert action["kind"] == "regenerateScript"
    assert f"/api/onboardings/{instance}/script" in action["detail"]
    assert action["links"]["scriptUrl"].endswith(f"/api/onboardings/{instance}/script")
    # Nothing was written to the app: its only key is still the expired one.
    _, keys = _app_keys(simulator, tenant_id, mailbox)
    assert [k["keyId"] for k in keys] == [key["keyId"]]
    status = requests.get(response.headers["Location"], verify=simulator.info["caBundle"], timeout=30)
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "manualActionNeeded", status.text
    # The alert went to the alert orchestration (its own deterministic instance), naming the fix.
    alert = product.status(f"alert-{certificate_name(instance)}-{old_version}-manualActionNeeded-regenerateScript")
    assert alert is not None
    given = json.loads(alert["input"]) if isinstance(alert["input"], str) else alert["input"]
    assert given["type"] == "manualActionNeeded"
    assert "/script" in given["detail"]
    # The fix it names works: the regenerated script puts the rotation's new key on the app.
    new_version = vault.get_certificate(certificate_name(instance))
    assert new_version.properties.version != old_version
    run_script(simulator, tenant, script_of(product, instance, tenant_id))
    app, _ = _app_keys(simulator, tenant_id, mailbox)
    assert hashlib.sha1(bytes(new_version.cer)).hexdigest().upper() in _key_thumbprints(simulator, tenant, app)


def test_rotate_answers_409_while_the_onboarding_runs_and_404_for_an_unknown_one(simulator, product):
    tenant_id = customers(simulator)[2]["tenantId"]
    mailbox = f"busy-{uuid.uuid4().hex[:8]}@contoso.com"
    instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "method": "manual"})["id"]
    wait_status(product, instance, "waitingForAdmin")  # the manual run waits for the admin: it is active
    response = product.api("POST", f"/onboardings/{instance}/rotate")
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "OnboardingInProgress"
    unknown = instance.replace(instance[:8], "0" * 8)
    assert product.api("POST", f"/onboardings/{unknown}/rotate").status_code == 404
    bad = product.api("POST", f"/onboardings/{instance}/rotate", json={"keySize": 1024})
    assert bad.status_code == 400, bad.text


def test_an_automatic_app_whose_keys_all_expired_gets_its_new_key_by_patch(simulator, product, azurite,
                                                                           admin_consent):
    tenant = customers(simulator)[2]
    tenant_id = tenant["tenantId"]
    admin_consent(tenant_id)
    mailbox = f"auto-rotate-{uuid.uuid4().hex[:8]}@contoso.com"
    instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox,
                                "certificate": {"validityMonths": 1}})["id"]
    finished = product.finish(instance)
    assert finished["status"] == "completed", json.dumps(finished)
    app, [key] = _app_keys(simulator, tenant_id, mailbox)
    [old_thumbprint] = _key_thumbprints(simulator, tenant, app)
    now = _zulu(simulator.admin("GET", "/clock")["now"])
    simulator.advance_clock((_zulu(key["endDateTime"]) - now).total_seconds() + 3600)

    mark = simulator.requests_since()["next"]
    response = product.api("POST", f"/onboardings/{instance}/rotate")
    assert response.status_code == 202, response.text
    _follow(product, response.json()["id"], lambda d: d.get("runtimeStatus") == "Completed")
    _, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "completed", rotation
    assert rotation["keyAddedVia"] == "patch"
    assert _key_thumbprints(simulator, tenant, app) == [rotation["newThumbprint"]]
    assert rotation["newThumbprint"] != old_thumbprint
    graph = [r for r in simulator.requests_since(mark)["requests"] if r["origin"] == "graph"]
    assert not any(r["path"].endswith("/addKey") for r in graph)  # no valid key could sign its proof
    assert any(r["method"] == "POST" and r["path"].endswith("/removeKey") for r in graph)


def test_a_pfx_imported_certificate_asks_for_a_new_pfx(simulator, product, vault, azurite, admin_consent):
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.customer_pfx import make_pfx, utc

    tenant_id = customers(simulator)[2]["tenantId"]
    admin_consent(tenant_id)
    mailbox = f"pfx-rotate-{uuid.uuid4().hex[:8]}@contoso.com"
    password = f"Pfx-{uuid.uuid4().hex}"
    pfx, _ = make_pfx(password, utc(float(simulator.admin("GET", "/clock")["epochSeconds"])))
    instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox, "certificate": {
        "pfx": base64.b64encode(pfx).decode(), "password": password}})["id"]
    finished = product.finish(instance)
    assert finished["status"] == "completed", json.dumps(finished)
    versions = [v.version for v in vault.list_properties_of_certificate_versions(certificate_name(instance))]

    response = product.api("POST", f"/onboardings/{instance}/rotate")
    assert response.status_code == 202, response.text
    _follow(product, response.json()["id"], lambda d: d.get("runtimeStatus") == "Completed")
    record, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "manualActionNeeded", rotation
    assert rotation["manualAction"]["kind"] == "newPfx"
    assert f"POST /api/onboardings/{instance}/rotate" in rotation["manualAction"]["detail"]
    # certauth made nothing: no new version, the record keeps the imported certificate.
    assert [v.version for v in vault.list_properties_of_certificate_versions(certificate_name(instance))] == versions
    assert record["Thumbprint"] == finished["certificate"]["thumbprint"]

    # The customer's new PFX through the rotate route: imported, put on the app by addKey, the old key removed.
    new_password = f"Pfx-{uuid.uuid4().hex}"
    new_pfx, new_certificate = make_pfx(new_password, utc(float(simulator.admin("GET", "/clock")["epochSeconds"])))
    new_thumbprint = hashlib.sha1(new_certificate.public_bytes(Encoding.DER)).hexdigest().upper()
    mixed = product.api("POST", f"/onboardings/{instance}/rotate", json={
        "pfx": base64.b64encode(new_pfx).decode(), "password": new_password, "keySize": 4096})
    assert mixed.status_code == 400, mixed.text
    response = product.api("POST", f"/onboardings/{instance}/rotate", json={
        "pfx": base64.b64encode(new_pfx).decode(), "password": new_password})
    assert response.status_code == 202, response.text
    assert new_password not in json.dumps(product.status(response.json()["id"]) or {})  # not in the input
    _follow(product, response.json()["id"], lambda d: d.get("runtimeStatus") == "Completed")
    record, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "completed", rotation
    assert rotation["newThumbprint"] == new_thumbprint
    assert record["Thumbprint"] == new_thumbprint
    assert json.loads(record["CertificateOptions"]) == {"imported": True}
    app, _ = _app_keys(simulator, tenant_id, mailbox)
    assert _key_thumbprints(simulator, customers(simulator)[2], app) == [new_thumbprint]


def test_a_customer_ca_certificate_rotates_through_a_new_csr(simulator, product, vault, azurite, admin_consent):
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.customer_pfx import sign_for_csr, utc

    tenant = customers(simulator)[2]
    tenant_id = tenant["tenantId"]
    admin_consent(tenant_id)
    mailbox = f"csr-rotate-{uuid.uuid4().hex[:8]}@contoso.com"
    instance = product.onboard({"tenantId": tenant_id, "serviceMailbox": mailbox,
                                "certificate": {"issuer": "customer"}})["id"]
    ca = trustme.CA()

    def sign_pending_csr() -> bytes:
        response = product.api("GET", f"/onboardings/{instance}/csr")
        assert response.status_code == 200, response.text
        csr_der = x509.load_pem_x509_csr(response.content).public_bytes(Encoding.DER)
        return sign_for_csr(ca, csr_der, utc(float(simulator.admin("GET", "/clock")["epochSeconds"])))

    wait_status(product, instance, "waitingForCertificate")
    merged = product.api("POST", f"/onboardings/{instance}/certificate", data=sign_pending_csr())
    assert merged.status_code == 202, merged.text
    finished = product.finish(instance)
    assert finished["status"] == "completed", json.dumps(finished)
    old_thumbprint = finished["certificate"]["thumbprint"]

    # The first rotate makes a new CSR and asks for its signed certificate.
    response = product.api("POST", f"/onboardings/{instance}/rotate")
    assert response.status_code == 202, response.text
    _follow(product, response.json()["id"], lambda d: d.get("runtimeStatus") == "Completed")
    _, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "manualActionNeeded", rotation
    assert rotation["manualAction"]["kind"] == "signCsr"
    assert rotation["manualAction"]["links"]["csrUrl"].endswith(f"/api/onboardings/{instance}/csr")

    # The CA signs it; the rotate route merges it and the rotation puts it on the app.
    signed = sign_pending_csr()
    leaf = x509.load_pem_x509_certificates(signed)[0]
    new_thumbprint = hashlib.sha1(leaf.public_bytes(Encoding.DER)).hexdigest().upper()
    response = product.api("POST", f"/onboardings/{instance}/rotate", json={"signedCertificate": signed.decode()})
    assert response.status_code == 202, response.text
    _follow(product, response.json()["id"], lambda d: d.get("runtimeStatus") == "Completed")
    record, rotation = _rotation_record(azurite, instance)
    assert rotation["state"] == "completed", rotation
    assert (rotation["oldThumbprint"], rotation["newThumbprint"]) == (old_thumbprint, new_thumbprint)
    assert record["Thumbprint"] == new_thumbprint
    app, _ = _app_keys(simulator, tenant_id, mailbox)
    assert _key_thumbprints(simulator, tenant, app) == [new_thumbprint]
    # Nothing waits any more: a second signed certificate has no CSR to go with.
    again = product.api("POST", f"/onboardings/{instance}/rotate", json={"signedCertificate": signed.decode()})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "NoCertificateExpected"

