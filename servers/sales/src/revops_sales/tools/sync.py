"""Sales tools: CRM sync with HubSpot or Salesforce (run, status) and its settings (mapping, policy)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from revops_core.errors import ValidationFailed
from revops_core.params import Count, Currency, SingleLine
from revops_core.server import Call
from revops_sales.services import hubspot_sync, salesforce_sync, sync_pull, sync_settings, sync_status
from revops_sales.services.sync_settings import Direction, Policy, SyncObject
from revops_sales.toolsets import configuration, sync

Vendor = Annotated[Literal["hubspot", "salesforce"], Field(description="CRM.")]


class FieldSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked against the object's fields by the service (the error lists them): a 12-name enum here
    # would cost every client's tools/list for little.
    field: Annotated[str, SingleLine] = Field(max_length=30, description="Local field, e.g. industry.")
    property: Annotated[str | None, SingleLine] = Field(
        default=None, max_length=100, description="Vendor field; null: not synced."
    )
    policy: Policy | None = Field(default=None, description="Its conflict policy.")


class StatusOut(sync_status.SyncStatusOut):
    settings: list[sync_settings.SyncSettingsOut] = Field(description="Settings in force per object.")


@sync.tool(tier="write", idempotent=True, open_world=True, title="Run a CRM sync", target="sync:{vendor}")
async def sync_crm(
    call: Call,
    vendor: Vendor = "hubspot",
    objects: Annotated[
        list[Literal["companies", "contacts", "deals", "leads", "notes", "tasks"]] | None,
        Field(description="Omit for all; leads, notes, tasks only come in.", max_length=6),
    ] = None,
    max_pages: Annotated[int, Count("Pages per stream.", ge=1, le=1000)] = 50,
) -> sync_pull.SyncRunOut:
    """Sync a CRM both ways: its changes in (resuming at the stored cursor), local changes out."""
    every = ["companies", "contacts", "deals", "leads", "notes", "tasks"]
    wanted: list[str] = list(dict.fromkeys(objects or every))
    if vendor == "salesforce":
        if objects and not set(objects) <= set(salesforce_sync.OBJECTS):
            raise ValidationFailed("Salesforce has no notes here.", field="objects")
        return await salesforce_sync.run(call, objects=wanted, max_pages=max_pages)
    if objects and "leads" in objects:
        raise ValidationFailed("HubSpot leads are not synced.", field="objects")
    return await hubspot_sync.run(call, objects=wanted, max_pages=max_pages)


@sync.tool(tier="read", title="CRM sync status")
def get_sync_status(call: Call, vendor: Vendor = "hubspot") -> StatusOut:
    """CRM sync: cursors, last run, success and error, link counts, API usage, settings."""
    found = sync_status.status(call.db, call.tenant, vendor)
    settings = [sync_settings.effective(call.db, call.tenant, vendor, o) for o in sync_settings.DEFAULT_MAPS]
    return StatusOut.model_validate({**found.model_dump(), "settings": settings})


@configuration.tool(
    tier="write", idempotent=True, title="Configure CRM sync", target="sync:{vendor}:{object}"
)
def configure_sync(
    call: Call,
    object: Annotated[SyncObject, Field(description="Object.")],
    fields: Annotated[
        list[FieldSetting] | None,
        Field(description="Per-field changes.", max_length=20),
    ] = None,
    conflict_policy: Annotated[Policy | None, Field(description="Default conflict policy.")] = None,
    direction: Annotated[Direction | None, Field(description="Which way records flow.")] = None,
    default_currency: Annotated[Currency | None, Field(description="For deals without one.")] = None,
    vendor: Vendor = "hubspot",
) -> sync_settings.SyncSettingsOut:
    """Field mapping, conflict policy or direction of one synced object."""
    field_map: dict[str, str | None] | None = None
    policies: dict[str, str] | None = None
    for entry in fields or []:
        if "property" in entry.model_fields_set:  # given as null: the field is no longer synced
            field_map = {**(field_map or {}), entry.field: entry.property}
        if entry.policy is not None:
            policies = {**(policies or {}), entry.field: entry.policy}
    return sync_settings.configure(
        call.db,
        call.tenant,
        call.actor,
        vendor=vendor,
        obj=object,
        field_map=field_map,
        conflict_policy=conflict_policy,
        field_policies=policies,
        direction=direction,
        default_currency=default_currency,
    )
