"""Soft-deleted applications and service principals in the simulated Graph, through msgraph-sdk only.

DELETE /applications/{id} moves the app and its service principal (with its app role assignments) to
/directory/deletedItems; the deleted app keeps its uniqueName, so an upsert of that name fails until the item is
restored, permanently deleted, or 30 days (sandbox clock) have passed. Restoring the app does not restore its
service principal; restoring the service principal brings its assignments back.
"""

from __future__ import annotations

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.directory.deleted_items.graph_application.graph_application_request_builder import (
    GraphApplicationRequestBuilder,
)
from msgraph.generated.directory.deleted_items.graph_service_principal.graph_service_principal_request_builder import (
    GraphServicePrincipalRequestBuilder,
)
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.service_principal import ServicePrincipal

from tests.integration.conftest import GRAPH_APP_ID, prefer_create, resource_sp, role_id, run, unique

pytestmark = pytest.mark.timeout(60)

DAY = 24 * 3600


async def create_app_with_grant(client, name: str) -> tuple[Application, ServicePrincipal]:
    """An app (upsert by uniqueName), its service principal, and one Graph app role granted to it."""
    app = await client.applications_with_unique_name(name).patch(
        Application(display_name=name, sign_in_audience="AzureADMyOrg"), prefer_create())
    sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
    graph = await resource_sp(client, GRAPH_APP_ID)
    await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.post(AppRoleAssignment(
        principal_id=sp.id, resource_id=graph.id, app_role_id=role_id(graph, "User.Read.All")))
    return app, sp


async def deleted_apps(client, unique_name: str) -> list[Application]:
    query = GraphApplicationRequestBuilder.GraphApplicationRequestBuilderGetQueryParameters(
        filter=f"uniqueName eq '{unique_name}'")
    page = await client.directory.deleted_items.graph_application.get(RequestConfiguration(query_parameters=query))
    return page.value


async def deleted_sps(client, app_id: str) -> list[ServicePrincipal]:
    query = GraphServicePrincipalRequestBuilder.GraphServicePrincipalRequestBuilderGetQueryParameters(
        filter=f"appId eq '{app_id}'")
    page = await client.directory.deleted_items.graph_service_principal.get(
        RequestConfiguration(query_parameters=query))
    return page.value


async def error_of(awaitable) -> ODataError:
    with pytest.raises(ODataError) as caught:
        await awaitable
    return caught.value


def test_a_deleted_app_goes_to_deleted_items_with_its_service_principal_and_keeps_its_unique_name(home, graph_kit):
    name = unique()

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app, sp = await create_app_with_grant(client, name)
            await client.applications.by_application_id(app.id).delete()

            gone_app = await error_of(client.applications.by_application_id(app.id).get())
            gone_sp = await error_of(client.service_principals_with_app_id(app.app_id).get())
            [deleted_app] = await deleted_apps(client, name)
            [deleted_sp] = await deleted_sps(client, app.app_id)
            item = await client.directory.deleted_items.by_directory_object_id(app.id).get()
            upsert = await error_of(client.applications_with_unique_name(name).patch(
                Application(display_name=name), prefer_create()))
            return app, sp, gone_app, gone_sp, deleted_app, deleted_sp, item, upsert

    app, sp, gone_app, gone_sp, deleted_app, deleted_sp, item, upsert = run(main())
    assert gone_app.response_status_code == 404
    assert gone_sp.response_status_code == 404
    assert (deleted_app.id, deleted_app.app_id, deleted_app.unique_name) == (app.id, app.app_id, name)
    assert deleted_app.deleted_date_time is not None
    assert deleted_sp.id == sp.id
    assert deleted_sp.deleted_date_time is not None
    assert isinstance(item, Application)
    assert item.app_id == app.app_id
    # The soft-deleted app still holds its uniqueName: the upsert cannot create a second one.
    assert upsert.response_status_code == 400
    assert upsert.error.code == "Request_BadRequest"
    assert upsert.error.message == "Another object with the same value for property uniqueName already exists."


def test_restoring_the_app_leaves_its_service_principal_deleted_until_it_is_restored_too(home, graph_kit):
    name = unique()

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app, sp = await create_app_with_grant(client, name)
            await client.applications.by_application_id(app.id).delete()
            # Restoring the service principal first fails: its application is still deleted.
            early = await error_of(client.directory.deleted_items.by_directory_object_id(sp.id).restore.post())
            restored = await client.directory.deleted_items.by_directory_object_id(app.id).restore.post()
            back = await client.applications_with_unique_name(name).get()
            still_gone = await error_of(client.service_principals_with_app_id(app.app_id).get())
            restored_sp = await client.directory.deleted_items.by_directory_object_id(sp.id).restore.post()
            assignments = await client.service_principals.by_service_principal_id(sp.id).app_role_assignments.get()
            updated = await client.applications_with_unique_name(name).patch(
                Application(display_name=name + " again"), prefer_create())
            return app, sp, early, restored, back, still_gone, restored_sp, assignments, updated

    app, sp, early, restored, back, still_gone, restored_sp, assignments, updated = run(main())
    assert early.response_status_code == 400
    assert "does not reference a valid application" in early.error.message
    assert isinstance(restored, Application)
    assert restored.deleted_date_time is None
    assert (back.id, back.app_id) == (app.id, app.app_id)
    assert still_gone.response_status_code == 404
    assert isinstance(restored_sp, ServicePrincipal)
    assert restored_sp.id == sp.id
    assert [str(a.principal_id) for a in assignments.value] == [sp.id]  # the grant came back with the SP
    assert updated is None  # 204: the restored app is the one the upsert updates


def test_a_permanent_delete_frees_the_unique_name(home, graph_kit):
    name = unique()

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app, _ = await create_app_with_grant(client, name)
            await client.applications.by_application_id(app.id).delete()
            await client.directory.deleted_items.by_directory_object_id(app.id).delete()
            gone = await error_of(client.directory.deleted_items.by_directory_object_id(app.id).get())
            restore = await error_of(client.directory.deleted_items.by_directory_object_id(app.id).restore.post())
            new = await client.applications_with_unique_name(name).patch(Application(display_name=name),
                                                                          prefer_create())
            return app, gone, restore, new

    app, gone, restore, new = run(main())
    assert gone.response_status_code == 404
    assert restore.response_status_code == 404
    assert new is not None
    assert new.unique_name == name
    assert (new.id, new.app_id) != (app.id, app.app_id)


def test_deleted_items_are_purged_after_thirty_days_on_the_sandbox_clock(simulator, home, graph_kit):
    name = unique()

    async def delete() -> Application:
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app, _ = await create_app_with_grant(client, name)
            await client.applications.by_application_id(app.id).delete()
            return app

    async def look() -> tuple[list, list]:
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            apps = await deleted_apps(client, name)
            return apps, await deleted_sps(client, app.app_id)

    async def upsert() -> Application | None:
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            return await client.applications_with_unique_name(name).patch(Application(display_name=name),
                                                                          prefer_create())

    app = run(delete())
    simulator.advance_clock(29 * DAY)
    day_29 = run(look())
    simulator.advance_clock(1 * DAY + 60)
    day_30 = run(look())
    new = run(upsert())
    assert [a.id for a in day_29[0]] == [app.id]
    assert len(day_29[1]) == 1
    assert day_30 == ([], [])
    assert new is not None
    assert new.app_id != app.app_id


def test_listing_needs_the_type_cast_and_restoring_needs_write_permission(simulator, home, graph_kit,
                                                                          restore_grants):
    name = unique()

    async def delete() -> Application:
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app, _ = await create_app_with_grant(client, name)
            await client.applications.by_application_id(app.id).delete()
            return app

    async def as_reader(app_id: str):
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            no_cast = await error_of(client.directory.deleted_items.get())
            listed = await deleted_apps(client, name)
            denied = await error_of(client.directory.deleted_items.by_directory_object_id(app_id).restore.post())
            purge = await error_of(client.directory.deleted_items.by_directory_object_id(app_id).delete())
            return no_cast, listed, denied, purge

    app = run(delete())
    simulator.grant(home["tenantId"], ["Application.Read.All"])
    no_cast, listed, denied, purge = run(as_reader(app.id))
    assert no_cast.response_status_code == 400
    assert [a.id for a in listed] == [app.id]
    assert denied.response_status_code == 403
    assert denied.error.code == "Authorization_RequestDenied"
    assert purge.response_status_code == 403
