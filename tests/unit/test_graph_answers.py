"""shared/graph_answers.py: Graph's answers read as msgraph's models read them, without loading msgraph's model tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

from shared.graph_answers import FIELDS, Answer

ROOT = Path(__file__).resolve().parents[2]
GRAPH = "00000003-0000-0000-c000-000000000000"
KEY = {"customKeyIdentifier": "qrvM3e7/ABEiM0RVZneImaq7zN0=", "displayName": "certauth AABBCC",
       "endDateTime": "2027-12-01T10:00:00Z", "key": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
       "keyId": "A6F1B2C3-0000-4000-8000-00000000A001", "startDateTime": "2026-12-01T10:00:00.5Z",
       "type": "AsymmetricX509Cert", "usage": "Verify"}
ROLE = {"id": "B633E1C5-B582-4048-A93E-9F11B44C7E96", "value": "Mail.Send", "allowedMemberTypes": ["Application"],
        "displayName": "Send mail as any user", "description": "d", "isEnabled": True, "origin": "Application"}
APPLICATION = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
    "id": "6f1b2c3d-0000-4000-8000-00000000b001", "appId": "6f1b2c3d-0000-4000-8000-00000000a001",
    "createdDateTime": "2026-12-01T10:00:00Z", "deletedDateTime": None, "displayName": "certauth sync@contoso.com",
    "uniqueName": "certauth-0123", "signInAudience": "AzureADMyOrg", "identifierUris": [], "tags": [],
    "keyCredentials": [KEY], "passwordCredentials": [], "appRoles": [],
    "requiredResourceAccess": [{"resourceAppId": GRAPH, "resourceAccess": [{"id": ROLE["id"], "type": "Role"}]}],
    "api": {"requestedAccessTokenVersion": None, "oauth2PermissionScopes": []},
    "web": {"redirectUris": [], "implicitGrantSettings": {"enableIdTokenIssuance": False}},
}
SERVICE_PRINCIPAL = {"id": "6f1b2c3d-0000-4000-8000-00000000c001", "appId": APPLICATION["appId"],
                     "accountEnabled": True, "appRoles": [ROLE], "servicePrincipalType": "Application",
                     "displayName": "Microsoft Graph", "keyCredentials": [], "servicePrincipalNames": [GRAPH]}
POLICY = {"id": "00000000-0000-0000-0000-000000000000", "displayName": "Default app management tenant policy",
          "isEnabled": True,
          "applicationRestrictions": {"passwordCredentials": [], "keyCredentials": [
              {"restrictionType": "asymmetricKeyLifetime", "state": "enabled", "maxLifetime": "P90DT12H",
               "restrictForAppsCreatedAfterDateTime": "2020-01-01T00:00:00Z"}]},
          "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []}}


def _models():
    from msgraph.generated.models.app_role_assignment import AppRoleAssignment
    from msgraph.generated.models.application import Application
    from msgraph.generated.models.application_collection_response import ApplicationCollectionResponse
    from msgraph.generated.models.organization_collection_response import OrganizationCollectionResponse
    from msgraph.generated.models.service_principal import ServicePrincipal
    from msgraph.generated.models.service_principal_collection_response import ServicePrincipalCollectionResponse
    from msgraph.generated.models.tenant_app_management_policy import TenantAppManagementPolicy
    from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
    from msgraph.generated.models.unified_role_definition import UnifiedRoleDefinition

    return {
        "application": (APPLICATION, Application),
        "servicePrincipal": (SERVICE_PRINCIPAL, ServicePrincipal),
        "appRoleAssignment": ({"id": "a1", "principalId": SERVICE_PRINCIPAL["id"], "appRoleId": ROLE["id"],
                               "resourceId": "6F1B2C3D-0000-4000-8000-00000000D001", "principalType": "x",
                               "createdDateTime": "2026-12-01T10:00:00Z"}, AppRoleAssignment),
        "roleAssignment": ({"id": "r1", "principalId": "p", "roleDefinitionId": "29232cdf-9323-42fd-ade2-1d097af3e4de",
                            "directoryScopeId": "/"}, UnifiedRoleAssignment),
        "roleDefinition": ({"id": "d", "displayName": "Exchange Administrator", "isBuiltIn": True},
                           UnifiedRoleDefinition),
        "policy": (POLICY, TenantAppManagementPolicy),
        "organizations": ({"value": [{"id": "o", "verifiedDomains": [{"name": "Contoso.com", "isDefault": True}]}]},
                          OrganizationCollectionResponse),
        "servicePrincipals": ({"value": [SERVICE_PRINCIPAL], "@odata.nextLink": "https://graph/next"},
                              ServicePrincipalCollectionResponse),
        "deletedApplications": ({"value": [{**APPLICATION, "deletedDateTime": "2026-12-02T10:00:00Z"}]},
                                ApplicationCollectionResponse),
    }


def read(body: dict, factory):
    root = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(body).encode())
    return root.get_object_value(factory)


def plain(value):
    """A model's values, comparable: nested msgraph models as dicts of their attributes."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if hasattr(value, "get_field_deserializers"):
        attributes = ([a for a, _ in FIELDS.values()] if isinstance(value, Answer)
                      else [a for a in vars(value) if a != "backing_store"])
        return {a: plain(getattr(value, a, None)) for a in attributes}
    return value


@pytest.mark.parametrize("kind", ["application", "servicePrincipal", "appRoleAssignment", "roleAssignment",
                                  "roleDefinition", "policy", "organizations", "servicePrincipals",
                                  "deletedApplications"])
def test_an_answer_has_the_values_msgraphs_model_gives(kind):
    body, model = _models()[kind]
    ours, theirs = read(body, Answer), read(body, model)
    compared = 0
    for attribute, _ in FIELDS.values():
        if attribute == "value" and getattr(theirs, "value", None) is not None:
            assert len(ours.value) == len(theirs.value)
            for mine, msgraph in zip(ours.value, theirs.value, strict=True):
                for name, _ in FIELDS.values():
                    if name != "value" and hasattr(msgraph, name):
                        assert plain(getattr(mine, name)) == plain(getattr(msgraph, name)), name
                        compared += 1
        elif attribute != "value" and hasattr(theirs, attribute):
            assert plain(getattr(ours, attribute)) == plain(getattr(theirs, attribute)), attribute
            compared += 1
    assert compared >= 2
    # whatever the product does not read is kept, as kiota keeps it
    assert set(body) - set(FIELDS) <= set(ours.additional_data)


def test_types_are_msgraphs():
    from msgraph.generated.models.key_credential import KeyCredential

    app = read(APPLICATION, Answer)
    key = app.key_credentials[0]
    assert isinstance(key, KeyCredential)
    assert isinstance(key.key, bytes)
    assert str(key.key_id) == KEY["keyId"].lower()
    assert app.created_date_time.utcoffset().total_seconds() == 0
    policy = read(POLICY, Answer)
    assert policy.is_enabled is True
    assert policy.application_restrictions.key_credentials[0].max_lifetime.total_seconds() == 90.5 * 86400
    assert str(read(_models()["appRoleAssignment"][0], Answer).resource_id) == "6f1b2c3d-0000-4000-8000-00000000d001"


def test_reading_an_answer_does_not_import_msgraphs_model_tree():
    # A fresh interpreter: reading a service principal as msgraph's model imports every Entity subtype's module
    # (over a thousand); as an Answer, the few modules of the complex types it reads.
    code = ("import json, sys\nfrom kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory\n"
            "from shared.graph_answers import Answer\n"
            f"body = {json.dumps(json.dumps(SERVICE_PRINCIPAL))}.encode()\n"
            "sp = JsonParseNodeFactory().get_root_parse_node('application/json', body).get_object_value(Answer)\n"
            "print(json.dumps([sp.id, sorted(m for m in sys.modules if m.startswith('msgraph.generated.models.'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    sp_id, models = json.loads(out.strip().splitlines()[-1])
    assert sp_id == SERVICE_PRINCIPAL["id"]
    assert len(models) < 30, models
    assert "msgraph.generated.models.workbook_chart_area_format" not in models
