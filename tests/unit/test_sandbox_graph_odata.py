"""The simulated Graph's $filter parser (sandbox/azure/graph_odata.py) on its own: lambdas, GUID literals, `in`
and the advanced-query rules, against the facts in sandbox/azure/microsoft.py (GRAPH_FILTER_FACTS)."""

from __future__ import annotations

import pytest

from sandbox.azure.errors import ServiceError
from sandbox.azure.graph_odata import EntityType, parse_filter

SP = EntityType(name="servicePrincipal", resource="ServicePrincipal", properties=frozenset(),
                eq=frozenset({"id", "appId", "displayName", "appOwnerOrganizationId"}),
                startswith=frozenset({"displayName"}), collections=frozenset({"servicePrincipalNames", "tags"}),
                guids=frozenset({"appOwnerOrganizationId"}))
ROLE_ASSIGNMENT = EntityType(name="unifiedRoleAssignment", resource="UnifiedRoleAssignment", properties=frozenset(),
                             eq=frozenset({"principalId"}), startswith=frozenset(), directory_object=False)
OWNER = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
OBJECTS = [
    {"id": "1", "appId": "a", "displayName": "Graph", "servicePrincipalNames": ["https://graph.microsoft.com", "a"],
     "tags": [], "appOwnerOrganizationId": OWNER},
    {"id": "2", "appId": "b", "displayName": "Mine", "servicePrincipalNames": ["b", "api://mine"],
     "tags": ["WindowsAzureActiveDirectoryIntegratedApp"], "appOwnerOrganizationId": None},
]


def ids(text: str, entity: EntityType = SP, advanced: bool = False) -> list[str]:
    predicate = parse_filter(text, entity, advanced=advanced)
    return [o["id"] for o in OBJECTS if predicate(o)]


def error(text: str, entity: EntityType = SP, advanced: bool = False) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        parse_filter(text, entity, advanced=advanced)
    return info.value


def test_any_lambda_over_string_collections():
    assert ids("servicePrincipalNames/any(c:c eq 'B')") == ["2"]
    assert ids("servicePrincipalNames/any (x: startswith(x, 'https://'))") == ["1"]
    assert ids("tags/any(t:t eq 'windowsazureactivedirectoryintegratedapp') or displayName eq 'graph'") == ["1", "2"]
    assert ids("servicePrincipalNames/any(c:c eq 'a' or c eq 'b') and startswith(displayName,'M')") == ["2"]


def test_lambda_errors():
    assert error("servicePrincipalNames/all(c:c eq 'a')").code == "Request_UnsupportedQuery"  # not in Graph
    assert error("displayName/any(c:c eq 'a')").code == "Request_UnsupportedQuery"  # not a collection
    assert error("servicePrincipalNames/any(c:other eq 'a')").code == "Request_UnsupportedQuery"
    assert error("servicePrincipalNames/any(c c eq 'a')").code == "BadRequest"  # syntax: no ':'


def test_guid_literals_follow_the_property_type():
    assert ids(f"appOwnerOrganizationId eq {OWNER.upper()}") == ["1"]
    assert ids(f"appOwnerOrganizationId in ({OWNER}, 00000000-0000-0000-0000-000000000000)") == ["1"]
    quoted = error(f"appOwnerOrganizationId eq '{OWNER}'")
    assert quoted.code == "BadRequest"
    assert "'Edm.Guid' and 'Edm.String'" in quoted.message
    assert "'Edm.String' and 'Edm.Guid'" in error(f"appId eq {OWNER}").message


def test_in_is_supported_wherever_eq_is():
    assert ids("appId in ('b', 'c')") == ["2"]
    assert error("notes in ('x')").code == "Request_UnsupportedQuery"


def test_ne_and_not_are_advanced_queries_on_directory_objects():
    for clause in ("displayName ne 'Graph'", "not(displayName eq 'Graph')",
                   "not servicePrincipalNames/any(c:c eq 'a')"):
        refused = error(clause)
        assert refused.code == "Request_UnsupportedQuery"
        assert "ConsistencyLevel:eventual" in refused.message
        assert ids(clause, advanced=True) == ["2"]
    assert error("endswith(displayName,'h')", advanced=True).code == "Request_UnsupportedQuery"  # not indexed


def test_non_directory_resources_keep_ne_without_advanced_parameters():
    objects = [{"principalId": "p1"}, {"principalId": "p2"}]
    predicate = parse_filter("principalId ne 'p1'", ROLE_ASSIGNMENT)
    assert [o["principalId"] for o in objects if predicate(o)] == ["p2"]
    assert error("not(principalId eq 'p1')", ROLE_ASSIGNMENT).code == "Request_UnsupportedQuery"
