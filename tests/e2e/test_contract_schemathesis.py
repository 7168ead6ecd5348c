"""Contract tests: schemathesis generates requests from both descriptions the product serves (GET /api/openapi.json,
GET /api/swagger.json) and checks every answer of the product on the sandbox host: no 5xx, a documented status code,
content type and headers, and a body that matches its schema.

Routes that start, join or signal an orchestration (shared/openapi.py `starts_work`) get a few examples each: every
valid POST /api/onboardings starts a real onboarding. The others get more. Explicit requests that reach every
documented status code are in tests/e2e/test_contract_status_codes.py.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.openapi import OPERATIONS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]
STARTING = [op.operation_id for op in OPERATIONS if op.starts_work]
# Examples per operation: few where each one may start an orchestration, more elsewhere (the suite stays fast).
FEW, MORE = 4, 25


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def _load(product, path: str):
    # The function key goes with every request (_call); a request without it is the host's 401, which
    # tests/e2e/test_contract_status_codes.py checks: schemathesis does not generate or negate it.
    config = schemathesis.Config.from_dict({"generation": {"mode": "all", "with-security-parameters": False},
                                            "phases": {"stateful": {"enabled": False}}})
    return schemathesis.openapi.from_url(product.url(path), config=config)


@pytest.fixture(scope="module")
def schemas(product) -> dict:
    return {"openapi": _load(product, "/api/openapi.json"), "swagger": _load(product, "/api/swagger.json")}


def _call(case, product) -> None:
    case.call_and_validate(headers={"x-functions-key": product.function_key}, checks=CHECKS, timeout=60)


def _operation(schema, operation_id: str):
    for result in schema.get_all_operations():
        operation = result.ok()
        if schema.get_operation_id(operation) == operation_id:
            return operation
    return None


# The lazy pytest loader (schemathesis.pytest.from_fixture) does not run on pytest 9 (it sets Node._nodeid, which
# pytest 9 no longer has), so each operation is its own pytest test driving schemathesis' Hypothesis strategies.
@pytest.mark.parametrize("kind", ["openapi", "swagger"])
@pytest.mark.parametrize("operation_id", [op.operation_id for op in OPERATIONS])
def test_every_answer_is_as_described(kind: str, operation_id: str, schemas, product) -> None:
    operation = _operation(schemas[kind], operation_id)
    if operation is None:
        # schemathesis leaves out the operation that serves the description it loaded (the other kind tests it).
        assert (kind, operation_id) in (("openapi", "GetOpenApiDescription"), ("swagger", "GetSwaggerDescription"))
        pytest.skip("schemathesis does not test the route that serves the description it loaded")
    examples = FEW if operation_id in STARTING else MORE
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    @_settings(examples)
    @given(case=strategy)
    def answers(case) -> None:
        _call(case, product)

    answers()


def test_the_served_descriptions_name_the_public_base(product) -> None:
    document = requests.get(product.url("/api/openapi.json"), timeout=10).json()
    swagger = requests.get(product.url("/api/swagger.json"), timeout=10).json()
    assert document["servers"] == [{"url": f"{product.base_url}/api"}]
    assert swagger["host"] == product.base_url.split("://", 1)[1]
