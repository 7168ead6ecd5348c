"""The API descriptions (shared/openapi.py): valid OpenAPI 3.1 and 2.0, the custom connector's rules, every route the
app registers, and the checked-in connector file as the generator writes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV31SpecValidator

from shared import contracts, openapi

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR_FILE = ROOT / "infra" / "logic-apps" / "certauth.connector.swagger.json"
BASE = "https://certauth.contoso.com"
# The issue's list: each of these paths is in both descriptions.
REQUIRED_PATHS = ("/onboardings", "/onboardings/{id}", "/onboardings/{id}/script", "/onboardings/{id}/verify",
                  "/onboardings/{id}/view", "/certificates", "/onboard", "/onboard/callback", "/onboarding-links",
                  "/onboardings/{id}/audit", "/openapi.json", "/swagger.json")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(scope="module")
def swagger() -> dict:
    return openapi.swagger_document(BASE)


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi.openapi_document(BASE)


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_openapi_json_is_valid_openapi_3_1(document) -> None:
    OpenAPIV31SpecValidator(document).validate()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": f"{BASE}/api"}]


def test_swagger_json_is_valid_openapi_2_0(swagger) -> None:
    OpenAPIV2SpecValidator(swagger).validate()
    assert (swagger["swagger"], swagger["host"], swagger["basePath"], swagger["schemes"]) == \
           ("2.0", "certauth.contoso.com", "/api", ["https"])


def _walk(value):
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_the_connector_definition_follows_the_connector_rules(swagger) -> None:
    """microsoft/powerplatform-developerhub docs/custom-connectors: define-openapi-definition.md, faq.md,
    openapi-extensions.md, certification-swagger-validator-rules.md."""
    ids = [operation["operationId"] for _, _, operation in operations(swagger)]
    assert len(ids) == len(set(ids)) == len(openapi.OPERATIONS)
    assert len(json.dumps(swagger).encode()) < 1024 * 1024
    assert list(swagger["securityDefinitions"].values()) == [
        {"type": "apiKey", "in": "header", "name": "x-functions-key",
         "description": "a function key of the Function App"}]
    for path, method, operation in operations(swagger):
        where = f"{method.upper()} {path}"
        assert operation["responses"], where
        assert all(r.get("description") for r in operation["responses"].values()), where
        assert operation["x-ms-visibility"] in ("important", "advanced", "internal"), where
        assert 0 < len(operation["summary"]) <= 80, where
        parameters = operation.get("parameters", [])
        assert all(p["name"].lower() != "connectionid" for p in parameters), where
        assert all(p.get("x-ms-summary") for p in parameters), where
        if method == "get":
            assert all(p["in"] != "body" for p in parameters), where
        for security in operation["security"]:
            assert set(security) <= set(swagger["securityDefinitions"]), where
    for node in _walk(swagger):
        assert not {"anyOf", "oneOf", "allOf", "not"} & set(node), node


def test_swagger_properties_carry_designer_summaries(swagger) -> None:
    request = swagger["definitions"]["OnboardingRequest"]["properties"]
    assert request["serviceMailbox"]["x-ms-summary"] == "Service mailbox"
    # A nullable field is x-nullable, not a union the designer can't render.
    assert request["directoryRole"]["x-nullable"] is True
    assert request["directoryRole"]["type"] == "string"
    pageable = [operation["operationId"] for _, _, operation in operations(swagger) if "x-ms-pageable" in operation]
    assert set(pageable) == {"ListOnboardings", "ListCertificates"}


@pytest.mark.parametrize("path", REQUIRED_PATHS)
def test_both_descriptions_list_the_route(path, document, swagger) -> None:
    assert path in document["paths"]
    assert path in swagger["paths"]


def test_every_operation_has_an_id_and_a_response_in_both(document, swagger) -> None:
    for spec in (document, swagger):
        for path, method, operation in operations(spec):
            assert operation["operationId"], (path, method)
            assert operation["responses"], (path, method)


def test_the_request_bodies_are_the_models_the_routes_validate_with(document) -> None:
    schemas = document["components"]["schemas"]
    request = schemas["OnboardingRequest"]
    # shared/models.py OnboardingRequest, as the route validates it: camelCase, unknown fields refused.
    assert request["required"] == ["tenantId", "serviceMailbox"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]["permissionProfile"]["enum"]) >= {"exchange-contact-sync"}
    link = schemas["OnboardingLinkRequest"]
    assert "tenantId" not in link.get("required", [])
    assert "expiresInHours" in link["required"]
    certificate = schemas[link["properties"]["certificate"]["$ref"].rsplit("/", 1)[1]]
    assert not {"pfx", "password"} & set(certificate["properties"])


def test_the_route_table_is_every_route_the_app_registers() -> None:
    """function_app.app's HTTP functions (route, methods, auth level), read the way sandbox/host/registry.py reads
    them, in a fresh interpreter (get_functions() works once per app object)."""
    code = ("import json, function_app; from sandbox.host.registry import load_functions; "
            "print(json.dumps(sorted([f.route.template, m, f.auth_level] "
            "for f in load_functions(function_app.app).values() if f.kind == 'http' for m in f.methods)))")
    env = {**os.environ, "CERTAUTH_EXPIRY_SCHEDULE": "0 0 6 * * *"}
    registered = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                           cwd=ROOT, env=env).stdout)
    described = sorted([op.route, op.method, op.auth] for op in openapi.OPERATIONS)
    missing = [r for r in registered if r not in described]
    extra = [d for d in described if d not in registered]
    assert missing == [], f"routes the app registers that shared/openapi.py OPERATIONS lacks: {missing}"
    assert extra == [], f"OPERATIONS entries the app does not register (or with another auth level): {extra}"


def test_the_connector_file_is_what_the_generator_writes() -> None:
    checked_in = CONNECTOR_FILE.read_text(encoding="utf-8")
    assert checked_in == openapi.dumps(openapi.swagger_document()), (
        "regenerate: python -m shared.openapi swagger > infra/logic-apps/certauth.connector.swagger.json")
    printed = subprocess.run([sys.executable, "-m", "shared.openapi", "swagger"], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout
    assert printed == checked_in


def test_constants_the_routes_and_the_descriptions_share() -> None:
    from functions import api, expiry, rotation

    assert set(contracts.LIFECYCLE) == set(api.PROGRESSING) | set(api.TERMINAL)
    certificates = next(op for op in openapi.OPERATIONS if op.operation_id == "ListCertificates")
    within = next(p for p in certificates.params if p.name == "expiringWithinDays")
    assert within.schema["maximum"] == expiry.MAX_EXPIRING_WITHIN_DAYS
    assert openapi.MAX_PAGE_SIZE == expiry.MAX_PAGE_SIZE
    assert openapi.DEFAULT_PAGE_SIZE == expiry.DEFAULT_PAGE_SIZE
    # functions/rotation.py parses its body by hand: contracts.RotationRequest names exactly what it accepts.
    fields = {info.alias or name for name, info in contracts.RotationRequest.model_fields.items()}
    assert fields == {*rotation.OPTION_NAMES, *rotation.CUSTOMER_NAMES, "certificate"}
    key_sizes = contracts.RotationRequest.model_json_schema(by_alias=True)["properties"]["keySize"]["anyOf"][0]
    assert tuple(key_sizes["enum"]) == rotation.KEY_SIZES


def test_a_union_the_designer_cannot_render_is_refused() -> None:
    with pytest.raises(openapi.NotForConnectors):
        openapi.to_swagger_schema({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    assert openapi.to_swagger_schema({"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}) == {
        "$ref": "#/definitions/X", "x-nullable": True}
    assert openapi.to_swagger_schema({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}],
                                      "default": None}) == {"type": "integer", "minimum": 1, "x-nullable": True}
    assert openapi.to_swagger_schema({"const": "a", "examples": ["a"]}) == {"enum": ["a"], "example": "a"}
