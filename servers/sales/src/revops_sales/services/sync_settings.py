"""CRM sync settings per vendor and object: field mapping, conflict policy per field, direction.

Conflict policies (a conflict = a field changed on both sides since the last sync, to different values):
- `vendor_wins`: the vendor's value is taken (the default: the CRM is the system of record);
- `local_wins`: the local value is kept and pushed to the vendor;
- `newest_wins`: the side modified last wins — the vendor record's `updatedAt` against the local
  row's `updated_at`. Contacts (`core_contact`) record no modification time, so for them
  `newest_wins` cannot be evaluated and resolves as `vendor_wins` (reported in the run's errors).
A field changed on one side only is always taken from that side.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import Field
from sqlmodel import Session, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.outputs import Out
from revops_sales.models.sync import SalesSyncSetting

SyncObject = Literal["companies", "contacts", "deals"]
Policy = Literal["vendor_wins", "local_wins", "newest_wins"]
Direction = Literal["both", "pull", "push"]
POLICIES: tuple[str, ...] = ("vendor_wins", "local_wins", "newest_wins")

# Local field → default HubSpot property. Every local field listed here can be remapped or (unless
# required) switched off with null; deal pipeline/stage and associations are synced by id, not mapped.
DEFAULT_MAPS: dict[str, dict[str, str | None]] = {
    "companies": {
        "name": "name",
        "domain": "domain",
        "industry": "industry",
        "employees": "numberofemployees",
    },
    "contacts": {"email": "email", "first_name": "firstname", "last_name": "lastname", "title": "jobtitle"},
    "deals": {
        "name": "dealname",
        "amount_minor": "amount",
        "currency": "deal_currency_code",
        "close_date": "closedate",
        "owner": "hubspot_owner_id",
    },
}
REQUIRED: dict[str, frozenset[str]] = {
    "companies": frozenset({"name"}),
    "contacts": frozenset({"email"}),
    "deals": frozenset({"name", "amount_minor"}),
}
# Salesforce's default Account/Contact/Opportunity fields. CurrencyIsoCode exists only in orgs with
# multiple currencies (querying it elsewhere fails), so currency starts unmapped there.
SALESFORCE_MAPS: dict[str, dict[str, str | None]] = {
    "companies": {
        "name": "Name",
        "domain": "Website",
        "industry": "Industry",
        "employees": "NumberOfEmployees",
    },
    "contacts": {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "title": "Title"},
    "deals": {
        "name": "Name",
        "amount_minor": "Amount",
        "currency": None,
        "close_date": "CloseDate",
        "owner": "OwnerId",
    },
}
VENDOR_MAPS: dict[str, dict[str, dict[str, str | None]]] = {
    "hubspot": DEFAULT_MAPS,
    "salesforce": SALESFORCE_MAPS,
}
# Property (field) names each vendor accepts: HubSpot's internal names, Salesforce API names.
_PROPERTY = {
    "hubspot": (re.compile(r"^[a-z][a-z0-9_]{0,99}$"), "lower case letters, digits, _"),
    "salesforce": (re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$"), "letters, digits, _"),
}
DEFAULT_CURRENCY = "USD"


class SyncSettingsOut(Out):
    vendor: str = Field(description="Vendor.")
    object: str = Field(description="companies, contacts or deals.")
    field_map: dict[str, str | None] = Field(description="Local field → vendor property (null: not synced).")
    conflict_policy: str = Field(description="Default policy: vendor_wins, local_wins or newest_wins.")
    field_policies: dict[str, str] = Field(description="Per-field policy overriding the default.")
    direction: str = Field(description="both, pull or push.")
    default_currency: str = Field(description="Currency of vendor deals that carry none.")
    stored: bool = Field(description="False: these are the defaults; nothing configured yet.")


def _row(session: Session, tenant: str, vendor: str, obj: str) -> SalesSyncSetting | None:
    return session.exec(
        select(SalesSyncSetting).where(
            SalesSyncSetting.tenant == tenant,
            SalesSyncSetting.vendor == vendor,
            SalesSyncSetting.object == obj,
        )
    ).first()


def effective(session: Session, tenant: str, vendor: str, obj: str) -> SyncSettingsOut:
    """The settings in force: the stored row over the defaults."""
    row = _row(session, tenant, vendor, obj)
    mapping: dict[str, str | None] = dict(VENDOR_MAPS[vendor][obj])
    if row is None:
        return SyncSettingsOut(
            vendor=vendor,
            object=obj,
            field_map=mapping,
            conflict_policy="vendor_wins",
            field_policies={},
            direction="both",
            default_currency=DEFAULT_CURRENCY,
            stored=False,
        )
    mapping.update(json.loads(row.field_map))
    return SyncSettingsOut(
        vendor=vendor,
        object=obj,
        field_map=mapping,
        conflict_policy=row.conflict_policy,
        field_policies=json.loads(row.field_policies),
        direction=row.direction,
        default_currency=row.default_currency or DEFAULT_CURRENCY,
        stored=True,
    )


def mapped(settings: SyncSettingsOut) -> dict[str, str]:
    """Only the fields that are synced: local field → vendor property."""
    return {k: v for k, v in settings.field_map.items() if v}


def policy_for(settings: SyncSettingsOut, field: str) -> str:
    return settings.field_policies.get(field, settings.conflict_policy)


def _check_map(vendor: str, obj: str, field_map: dict[str, str | None]) -> None:
    known = VENDOR_MAPS[vendor][obj]
    pattern, allowed = _PROPERTY[vendor]
    for local, prop in field_map.items():
        if local not in known:
            raise ValidationFailed(
                f"{obj} has no synced field {local!r}.",
                field="field_map",
                hint="Fields: " + ", ".join(known) + ".",
            )
        if prop is None and local in REQUIRED[obj]:
            raise ValidationFailed(
                f"{local!r} is required for {obj}; it cannot be unmapped.", field="field_map"
            )
        if prop is not None and not pattern.match(prop):
            raise ValidationFailed(f"{prop!r} is not a {vendor} field name ({allowed}).", field="field_map")
    props = [p for p in {**known, **field_map}.values() if p]
    if len(props) != len(set(props)):
        raise ValidationFailed("Two local fields map to one vendor property.", field="field_map")


def configure(
    session: Session,
    tenant: str,
    actor: str,
    *,
    vendor: str,
    obj: str,
    field_map: dict[str, str | None] | None,
    conflict_policy: str | None,
    field_policies: dict[str, str] | None,
    direction: str | None,
    default_currency: str | None,
) -> SyncSettingsOut:
    """Store changed settings (given keys of `field_map`/`field_policies` replace the stored ones)."""
    if all(v is None for v in (field_map, conflict_policy, field_policies, direction, default_currency)):
        raise ValidationFailed(
            "Nothing to change.",
            field="field_map",
            hint="Pass field_map, conflict_policy, field_policies, direction or default_currency.",
        )
    row = _row(session, tenant, vendor, obj) or SalesSyncSetting(
        tenant=tenant, vendor=vendor, object=obj, updated_by=actor
    )
    if field_map is not None:
        merged = {**json.loads(row.field_map), **field_map}
        _check_map(vendor, obj, merged)
        row.field_map = json.dumps(merged, sort_keys=True)
    if field_policies is not None:
        for local, policy in field_policies.items():
            if local not in VENDOR_MAPS[vendor][obj]:
                raise ValidationFailed(f"{obj} has no synced field {local!r}.", field="field_policies")
            if policy not in POLICIES:
                raise ValidationFailed(
                    f"Unknown policy {policy!r}.",
                    field="field_policies",
                    hint="One of " + ", ".join(POLICIES),
                )
        row.field_policies = json.dumps({**json.loads(row.field_policies), **field_policies}, sort_keys=True)
    if conflict_policy is not None:
        row.conflict_policy = conflict_policy
    if direction is not None:
        row.direction = direction
    if default_currency is not None:
        row.default_currency = default_currency
    row.updated_by, row.updated_at = actor, utcnow()
    session.add(row)
    session.flush()
    return effective(session, tenant, vendor, obj)
