"""What dashboards and operators read: GET /api/onboardings (paged {value, nextLink}) and
GET /api/onboardings/{id}/audit.

Both take the function key. The list pages the product's own Table Storage records (azure-functions-durable 1.7's
get_status_all / get_status_by read every instance without paging), so its status is the recorded lifecycle word;
GET /api/onboardings/{id} reconciles one onboarding with the durable runtime. Bodies: shared/contracts.py
OnboardingsPage and AuditTrail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from functions.api import ONBOARDING_ID, azure_error, handled, json_response, next_link, page_options, validation_error
from shared.rules import GUID_PATTERN, LIFECYCLE
from shared.settings import get_settings
from shared.state import state_store

log = logging.getLogger(__name__)
bp = df.Blueprint()

GUID = re.compile(GUID_PATTERN)
# The audit entity's own keys; every other property is a detail of the event.
AUDIT_KEYS = ("PartitionKey", "RowKey", "Event", "At", "Timestamp", "etag")


def _iso(value):
    """A Table Storage datetime as ISO-8601 UTC with Z; anything else as it is."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _loads(value):
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def _summary(entity: dict) -> dict:
    """One onboarding record for a list: ids, names, dates, the recorded status and error (no secrets are recorded)."""
    error = _loads(entity.get("Error"))
    return {"id": entity["RowKey"], "tenantId": entity.get("TenantId") or entity["PartitionKey"],
            "serviceMailbox": entity.get("ServiceMailbox"), "method": entity.get("Method") or "automatic",
            "status": entity.get("Status"), "step": entity.get("Step"),
            "permissionProfile": entity.get("PermissionProfile"), "directoryRole": entity.get("DirectoryRole") or None,
            "appId": entity.get("AppId"), "servicePrincipalId": entity.get("ServicePrincipalId"),
            "thumbprint": entity.get("Thumbprint"), "notAfter": _iso(entity.get("NotAfter")),
            "updatedAt": _iso(entity.get("UpdatedAt")), "error": error if isinstance(error, dict) else None}


@bp.route(route="onboardings", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def list_onboardings(req: func.HttpRequest) -> func.HttpResponse:
    """The onboardings (of one tenant, in one recorded status), a page at a time; nextLink continues."""
    problems = []
    tenant, status = req.params.get("tenantId"), req.params.get("status")
    if tenant is not None and not GUID.match(tenant):
        problems.append({"field": "tenantId", "rule": "must be a tenant id (a GUID)"})
    if status is not None and status not in LIFECYCLE:
        problems.append({"field": "status", "rule": f"must be one of {', '.join(LIFECYCLE)}"})
    top, token = page_options(req, problems)
    if problems:
        return validation_error(problems)
    settings = get_settings()
    page, next_token = await asyncio.to_thread(state_store(settings).onboardings_page, tenant, status, top, token)
    link = next_link(req, settings.public_base_url, "onboardings", next_token, tenantId=tenant, status=status,
                     top=req.params.get("top"))
    return json_response({"value": [_summary(entity) for entity in page], "nextLink": link})


@bp.route(route="onboardings/{id}/audit", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handled(log)
async def get_onboarding_audit(req: func.HttpRequest) -> func.HttpResponse:
    """The audit trail of one onboarding, oldest first."""
    instance = req.route_params.get("id", "")
    if not ONBOARDING_ID.match(instance):
        return validation_error([{"field": "id", "rule": "must be an onboarding id"}])
    store = state_store(get_settings())
    entries = await asyncio.to_thread(store.audit_trail, instance)
    if not entries and await asyncio.to_thread(store.get_onboarding, instance) is None:
        return azure_error(404, "NotFound", f"no onboarding {instance}", target="id")
    value = [{"event": entry.get("Event"), "at": _iso(entry.get("At")),
              "details": {key: _iso(item) for key, item in entry.items() if key not in AUDIT_KEYS}}
             for entry in entries]
    return json_response({"onboardingId": instance, "value": value})
