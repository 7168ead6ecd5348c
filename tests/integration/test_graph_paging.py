"""Paging in the simulated Graph, and the product's Graph reads following @odata.nextLink (msgraph-core's
PageIterator) against it.

Graph pages directory objects at 100 by default and honours $top from 1 to 999 (learn.microsoft.com/graph/paging;
directory-deleteditems-list states the same numbers). A service principal with more app role assignments than
one page must still look complete to the product, or a re-run would post its grants again.
"""

from __future__ import annotations

import uuid

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.app_role import AppRole
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.service_principals.item.app_role_assignments.app_role_assignments_request_builder import (
    AppRoleAssignmentsRequestBuilder,
)
from msgraph_core import PageIterator

from shared.graph import Directory
from tests.integration.conftest import prefer_create, run, unique

pytestmark = pytest.mark.timeout(120)

ASSIGNMENTS = 130  # more than one default page (100), fewer than two


async def resource_with_roles(client, count: int) -> tuple[ServicePrincipal, list[str]]:
    """A resource app with `count` application roles, and its service principal."""
    name = unique("certauth-paging-resource")
    roles = [AppRole(id=uuid.uuid4(), value=f"Paging.Role{i}", display_name=f"Paging role {i}",
                     description=f"Paging role {i}", allowed_member_types=["Application"], is_enabled=True)
             for i in range(count)]
    app = await client.applications_with_unique_name(name).patch(
        Application(display_name=name, sign_in_audience="AzureADMyOrg", app_roles=roles), prefer_create())
    sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
    return sp, [str(r.id) for r in roles]


async def principal(client) -> ServicePrincipal:
    name = unique("certauth-paging-principal")
    app = await client.applications_with_unique_name(name).patch(
        Application(display_name=name, sign_in_audience="AzureADMyOrg"), prefer_create())
    return await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())


async def assign_all(client, resource: ServicePrincipal, role_ids: list[str], to: ServicePrincipal) -> None:
    for role in role_ids:
        await client.service_principals.by_service_principal_id(resource.id).app_role_assigned_to.post(
            AppRoleAssignment(principal_id=to.id, resource_id=resource.id, app_role_id=role))


def top(value: int) -> RequestConfiguration:
    return RequestConfiguration(query_parameters=AppRoleAssignmentsRequestBuilder
                                .AppRoleAssignmentsRequestBuilderGetQueryParameters(top=value))


def test_app_role_assignments_page_at_100_honour_top_and_the_product_reads_every_page(home, graph_kit):
    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            resource, role_ids = await resource_with_roles(client, ASSIGNMENTS)
            holder = await principal(client)
            await assign_all(client, resource, role_ids, holder)

            assignments = client.service_principals.by_service_principal_id(holder.id).app_role_assignments
            first = await assignments.get()
            small = await assignments.get(top(50))
            too_big = None
            try:
                await assignments.get(top(1000))
            except ODataError as error:
                too_big = error
            seen: list = []
            iterator = PageIterator(await assignments.get(), client.request_adapter)
            await iterator.iterate(lambda item: seen.append(item) or True)
            assigned_to = await client.service_principals.by_service_principal_id(resource.id) \
                .app_role_assigned_to.get()
            granted = await Directory(client).granted_roles(holder.id)
            return resource, role_ids, first, small, too_big, seen, assigned_to, granted

    resource, role_ids, first, small, too_big, seen, assigned_to, granted = run(main())
    assert len(first.value) == 100
    assert first.odata_next_link
    assert len(small.value) == 50
    assert small.odata_next_link
    assert too_big is not None
    assert too_big.response_status_code == 400
    assert len(seen) == ASSIGNMENTS
    assert len({a.id for a in seen}) == ASSIGNMENTS
    assert len(assigned_to.value) == 100
    assert assigned_to.odata_next_link
    # The product's read (shared.graph.Directory.granted_roles) follows every @odata.nextLink.
    assert granted == {(resource.id, role) for role in role_ids}

