"""Microsoft Graph directory roles, organization and sendMail in the simulator, through msgraph-sdk."""

from __future__ import annotations

import uuid

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.application import Application
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_definitions.role_definitions_request_builder import (
    RoleDefinitionsRequestBuilder,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

from tests.integration.conftest import prefer_create, run

pytestmark = pytest.mark.timeout(60)

EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"




def test_role_assignment_create_list_duplicate_delete(home, graph_kit):
    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            app = await client.applications_with_unique_name(f"certauth-role-{uuid.uuid4().hex[:10]}").patch(
                Application(display_name="role"), prefer_create())
            sp = await client.service_principals_with_app_id(app.app_id).patch(ServicePrincipal(), prefer_create())
            assignments = client.role_management.directory.role_assignments
            query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
                filter=f"principalId eq '{sp.id}' and roleDefinitionId eq '{EXCHANGE_ADMINISTRATOR}'")
            before = await assignments.get(RequestConfiguration(query_parameters=query))
            body = UnifiedRoleAssignment(principal_id=sp.id, role_definition_id=EXCHANGE_ADMINISTRATOR,
                                         directory_scope_id="/")
            created = await assignments.post(body)
            with pytest.raises(ODataError) as duplicate:
                await assignments.post(body)
            with pytest.raises(ODataError) as no_scope:
                await assignments.post(UnifiedRoleAssignment(principal_id=sp.id,
                                                             role_definition_id=EXCHANGE_ADMINISTRATOR))
            after = await assignments.get(RequestConfiguration(query_parameters=query))
            by_principal = await assignments.get(RequestConfiguration(
                query_parameters=RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
                    filter=f"principalId eq '{sp.id}'")))
            fetched = await assignments.by_unified_role_assignment_id(created.id).get()
            await assignments.by_unified_role_assignment_id(created.id).delete()
            gone = await assignments.get(RequestConfiguration(query_parameters=query))
            return sp, before, created, duplicate.value, no_scope.value, after, by_principal, fetched, gone

    sp, before, created, duplicate, no_scope, after, by_principal, fetched, gone = run(main())
    assert before.value == []
    assert created.principal_id == sp.id
    assert created.role_definition_id == EXCHANGE_ADMINISTRATOR
    assert created.directory_scope_id == "/"
    assert duplicate.response_status_code == 400
    assert duplicate.error.message == ("A conflicting object with one or more of the specified property values "
                                       "is present in the directory.")
    assert no_scope.response_status_code == 400
    assert [a.id for a in after.value] == [created.id] == [a.id for a in by_principal.value]
    assert fetched.id == created.id
    assert gone.value == []


def test_role_assignment_needs_role_management_permission(simulator, home, graph_kit, restore_grants):
    simulator.grant(home["tenantId"], ["Application.ReadWrite.OwnedBy", "Application.Read.All",
                                       "AppRoleAssignment.ReadWrite.All"])

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            with pytest.raises(ODataError) as info:
                await client.role_management.directory.role_assignments.post(UnifiedRoleAssignment(
                    principal_id=home["provisioner"]["servicePrincipalId"],
                    role_definition_id=EXCHANGE_ADMINISTRATOR, directory_scope_id="/"))
            return info.value

    error = run(main())
    assert error.response_status_code == 403
    assert error.error.code == "Authorization_RequestDenied"
    assert all(a["principalId"] != home["provisioner"]["servicePrincipalId"]
               for a in simulator.tenant_state(home["tenantId"])["roleAssignments"])


def test_role_definitions_and_organization(home, graph_kit):
    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            definitions = await client.role_management.directory.role_definitions.get(RequestConfiguration(
                query_parameters=RoleDefinitionsRequestBuilder.RoleDefinitionsRequestBuilderGetQueryParameters(
                    filter="displayName eq 'Exchange Administrator'")))
            one = await client.role_management.directory.role_definitions.by_unified_role_definition_id(
                EXCHANGE_ADMINISTRATOR).get()
            organization = await client.organization.get()
            return definitions, one, organization

    definitions, one, organization = run(main())
    assert [d.id for d in definitions.value] == [EXCHANGE_ADMINISTRATOR]
    assert one.display_name == "Exchange Administrator"
    assert one.template_id == EXCHANGE_ADMINISTRATOR
    [org] = organization.value
    assert org.id == home["tenantId"]
    assert org.verified_domains[0].name == home["domain"]


def test_send_mail_is_recorded(simulator, home, graph_kit, restore_grants):
    mailbox = f"svc-{uuid.uuid4().hex[:8]}@{home['domain']}"
    subject = f"certificate expires {uuid.uuid4().hex[:6]}"

    def message(*to: str) -> Message:
        return Message(subject=subject, body=ItemBody(content_type=BodyType.Text, content="renew it"),
                       to_recipients=[Recipient(email_address=EmailAddress(address=a)) for a in to])

    async def main():
        credential = graph_kit.secret_credential(home)
        async with credential:
            client = graph_kit.client(credential)
            await client.users.by_user_id(mailbox).send_mail.post(
                SendMailPostRequestBody(message=message("ops@example.com"), save_to_sent_items=False))
            with pytest.raises(ODataError) as no_recipients:
                await client.users.by_user_id(mailbox).send_mail.post(SendMailPostRequestBody(message=message()))
            return no_recipients.value

    since = simulator.requests_since()["next"]
    no_recipients = run(main())
    sent = [m for m in simulator.admin("GET", f"/tenants/{home['tenantId']}/mail")["value"]
            if m["message"].get("subject") == subject]
    assert len(sent) == 1
    [mail] = sent
    assert mail["from"] == mailbox
    assert mail["saveToSentItems"] is False
    assert mail["message"]["toRecipients"][0]["emailAddress"]["address"] == "ops@example.com"
    assert mail["at"].endswith("Z")
    assert no_recipients.response_status_code == 400
    assert no_recipients.error.code == "ErrorInvalidRecipients"
    posts = [r["status"] for r in simulator.requests_since(since)["requests"] if r["path"].endswith("/sendMail")]
    assert posts == [202, 400]

    simulator.grant(home["tenantId"], ["Organization.Read.All"])

    async def without_permission():
        credential = graph_kit.secret_credential(home)
        async with credential:
            with pytest.raises(ODataError) as info:
                await graph_kit.client(credential).users.by_user_id(mailbox).send_mail.post(
                    SendMailPostRequestBody(message=message("ops@example.com")))
            return info.value

    assert run(without_permission()).response_status_code == 403
