"""Graph's answers, read without msgraph's models (shared/graph.py imports this when it sends its first request).

msgraph-sdk builds and sends every request: its request builders make the URL, query and body, its adapter adds
the token, retries and turns Graph's errors into ODataError. Its models do not read the answers: the first object
of any Entity subtype that kiota reads runs ``Entity.get_field_deserializers``, which imports the model module of
every Entity subtype, about 1,200 modules, a second or more of a cold instance's first Graph call
(msgraph-sdk-python#909; bench/onboarding.py, part 3). :class:`Answer` reads the properties certauth uses, under
msgraph's attribute names and with msgraph's own classes for the complex values in them (KeyCredential, AppRole,
...: small modules); whatever else Graph sends stays in ``additional_data``, as kiota keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from kiota_abstractions.serialization import AdditionalDataHolder, Parsable, ParseNode, SerializationWriter
from msgraph.generated.models.app_management_application_configuration import AppManagementApplicationConfiguration
from msgraph.generated.models.app_role import AppRole
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.required_resource_access import RequiredResourceAccess
from msgraph.generated.models.verified_domain import VerifiedDomain


def _text(node: ParseNode):
    return node.get_str_value()


def _moment(node: ParseNode):
    return node.get_datetime_value()


def _guid(node: ParseNode):
    return node.get_uuid_value()


def _flag(node: ParseNode):
    return node.get_bool_value()


def _many(model) -> Callable[[ParseNode], list | None]:
    return lambda node: node.get_collection_of_object_values(model)


# Graph's property -> (msgraph's attribute, how kiota reads it): the properties certauth reads in any answer, each
# of the type msgraph's own model gives it (resourceId and appRoleId are UUIDs there, like here).
FIELDS: dict[str, tuple[str, Callable[[ParseNode], object]]] = {
    "id": ("id", _text),
    "appId": ("app_id", _text),
    "uniqueName": ("unique_name", _text),
    "displayName": ("display_name", _text),
    "createdDateTime": ("created_date_time", _moment),
    "deletedDateTime": ("deleted_date_time", _moment),
    "keyCredentials": ("key_credentials", _many(KeyCredential)),
    "requiredResourceAccess": ("required_resource_access", _many(RequiredResourceAccess)),
    "appRoles": ("app_roles", _many(AppRole)),
    "resourceId": ("resource_id", _guid),
    "appRoleId": ("app_role_id", _guid),
    "roleDefinitionId": ("role_definition_id", _text),
    "directoryScopeId": ("directory_scope_id", _text),
    "isEnabled": ("is_enabled", _flag),
    "applicationRestrictions": ("application_restrictions",
                                lambda node: node.get_object_value(AppManagementApplicationConfiguration)),
    "verifiedDomains": ("verified_domains", _many(VerifiedDomain)),
    # a collection (a page of objects: PageIterator follows @odata.nextLink with this class too)
    "value": ("value", lambda node: node.get_collection_of_object_values(Answer)),
    "@odata.nextLink": ("odata_next_link", _text),
}


class Answer(AdditionalDataHolder, Parsable):
    """One Graph object, or a page of them: the FIELDS Graph sent (None for the others), the rest additional_data."""

    def __init__(self) -> None:
        self.additional_data: dict = {}
        for attribute, _ in FIELDS.values():
            setattr(self, attribute, None)

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> Answer:
        """kiota's factory: every answer is read the same way, whatever its @odata.type."""
        return Answer()

    def get_field_deserializers(self) -> dict[str, Callable[[ParseNode], None]]:
        """kiota's hook: how each property Graph sent is read into this object."""
        def setter(attribute: str, read: Callable[[ParseNode], object]) -> Callable[[ParseNode], None]:
            return lambda node: setattr(self, attribute, read(node))

        return {name: setter(attribute, read) for name, (attribute, read) in FIELDS.items()}

    def serialize(self, writer: SerializationWriter) -> None:
        """Answers are read, never sent (a request body is one of msgraph's models)."""
        raise TypeError("a Graph answer is not a request body")
