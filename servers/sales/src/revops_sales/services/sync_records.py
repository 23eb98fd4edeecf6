"""The local side of a CRM sync, vendor-neutral: links, cursors, the values of local rows, and writing
vendor changes through the companies/deals services (never beside them).

Values are compared in one JSON-able *local representation* per field (text, whole numbers, ISO dates),
so "changed since the last sync" is a plain comparison with `SalesSyncLink.synced_values`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.models import CoreCompany, CoreContact
from revops_sales.models.deals import SalesDeal
from revops_sales.models.leads import SalesLead
from revops_sales.models.pipelines import SalesStage
from revops_sales.models.sync import SalesSyncCursor, SalesSyncLink
from revops_sales.services import archive, companies, deals

# Leads are pulled only (Salesforce); they are here so a vendor deletion archives them the same way.
MODELS: dict[str, Any] = {
    "companies": CoreCompany,
    "contacts": CoreContact,
    "deals": SalesDeal,
    "leads": SalesLead,
}
ENTITY: dict[str, archive.Entity] = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "leads": "lead",
}
# Local rows record a modification time except core_contact (see sync_settings: newest_wins).
MODIFIED: dict[str, str | None] = {"companies": "updated_at", "contacts": None, "deals": "updated_at"}
STAGE = "_stage"  # deals: the local stage id, compared like a field
COMPANY = "_company"  # contacts and deals: the local company id (from the vendor's associations)
MAX_ERRORS = 20


@dataclass
class Stats:
    """Counts of one run, summed over objects and pages."""

    pages: int = 0
    pulled: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    archived: int = 0
    pushed_created: int = 0
    pushed_updated: int = 0
    pushed_archived: int = 0
    conflicts: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str, *, skipped: bool = True) -> None:
        self.skipped += int(skipped)
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message[:300])

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            if name == "errors":
                for message in other.errors:
                    if len(self.errors) < MAX_ERRORS:
                        self.errors.append(message)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))


# --------------------------------------------------------------------------- values


def local_values(obj: str, row: Any, fields: list[str]) -> dict[str, Any]:
    """The row's value of each synced field, in the local representation."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(row, name) if not name.startswith("_") else None
        if name == STAGE:
            value = row.stage_id
        elif name == COMPANY:
            value = row.company_id
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def modified_at(obj: str, row: Any) -> datetime | None:
    name = MODIFIED[obj]
    return getattr(row, name) if name else None


# --------------------------------------------------------------------------- links and cursors


def links(
    session: Session, tenant: str, vendor: str, obj: str, vendor_ids: list[str]
) -> dict[str, SalesSyncLink]:
    if not vendor_ids:
        return {}
    rows = session.exec(
        select(SalesSyncLink).where(
            SalesSyncLink.tenant == tenant,
            SalesSyncLink.vendor == vendor,
            SalesSyncLink.object == obj,
            col(SalesSyncLink.vendor_id).in_(vendor_ids),
        )
    ).all()
    return {r.vendor_id: r for r in rows}


def local_ids(session: Session, tenant: str, vendor: str, obj: str) -> dict[str, int]:
    """vendor id → local id of every link of an object (pipelines, stages, companies)."""
    rows = session.exec(
        select(SalesSyncLink.vendor_id, SalesSyncLink.local_id).where(
            SalesSyncLink.tenant == tenant, SalesSyncLink.vendor == vendor, SalesSyncLink.object == obj
        )
    ).all()
    return dict(rows)


def link(
    session: Session,
    tenant: str,
    vendor: str,
    obj: str,
    local_id: int,
    vendor_id: str,
    values: dict[str, Any],
) -> SalesSyncLink:
    row = SalesSyncLink(
        tenant=tenant,
        vendor=vendor,
        object=obj,
        local_id=local_id,
        vendor_id=vendor_id,
        synced_values=json.dumps(values, sort_keys=True),
    )
    session.add(row)
    return row


def cursor(session: Session, tenant: str, vendor: str, stream: str) -> SalesSyncCursor:
    """The stream's cursor row (a fresh, unsaved one before the first committed page)."""
    row = session.exec(
        select(SalesSyncCursor).where(
            SalesSyncCursor.tenant == tenant,
            SalesSyncCursor.vendor == vendor,
            SalesSyncCursor.stream == stream,
        )
    ).first()
    return row or SalesSyncCursor(tenant=tenant, vendor=vendor, stream=stream)


def unlinked_rows(session: Session, tenant: str, vendor: str, obj: str, *where: Any) -> list[Any]:
    """Live local rows no vendor record is linked to yet (what a push creates), oldest first."""
    model = MODELS[obj]
    linked = exists().where(
        col(SalesSyncLink.tenant) == tenant,
        col(SalesSyncLink.vendor) == vendor,
        col(SalesSyncLink.object) == obj,
        col(SalesSyncLink.local_id) == model.id,
    )
    query = select(model).where(model.tenant == tenant, col(model.deleted_at).is_(None), ~linked, *where)
    return list(session.exec(query.order_by(col(model.id))).all())


def linked_rows(session: Session, tenant: str, vendor: str, obj: str) -> list[tuple[Any, SalesSyncLink]]:
    """Every local row with its live link (the vendor record not archived)."""
    model = MODELS[obj]
    return [
        (row, lnk)
        for row, lnk in session.exec(
            select(model, SalesSyncLink)
            .join(SalesSyncLink, col(SalesSyncLink.local_id) == model.id)
            .where(
                SalesSyncLink.tenant == tenant,
                SalesSyncLink.vendor == vendor,
                SalesSyncLink.object == obj,
                col(SalesSyncLink.archived_at).is_(None),
                model.tenant == tenant,
            )
            .order_by(col(model.id))
        ).all()
    ]


def match_unlinked(session: Session, tenant: str, vendor: str, obj: str, value: str | None) -> Any:
    """A live, unlinked local company with this domain or contact with this e-mail (first sync)."""
    if not value or obj == "deals":
        return None
    model = MODELS[obj]
    column = model.domain if obj == "companies" else model.email
    found = unlinked_rows(session, tenant, vendor, obj, column == value.strip().lower().removeprefix("www."))
    return found[0] if found else None


# --------------------------------------------------------------------------- writing vendor changes


def _plain(obj: str, changes: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in changes.items() if not k.startswith("_")}
    if COMPANY in changes:
        out["company_id"] = changes[COMPANY]
    if "close_date" in out and isinstance(out["close_date"], str):
        out["close_date"] = date.fromisoformat(out["close_date"])
    return out


def create_local(session: Session, tenant: str, actor: str, obj: str, values: dict[str, Any]) -> int:
    """Create the local row for a new vendor record through the entity's service; its id."""
    plain = _plain(obj, values)
    if obj == "companies":
        return companies.create_company(
            session,
            tenant,
            name=plain["name"],
            domain=plain.get("domain"),
            industry=plain.get("industry"),
            employees=plain.get("employees"),
        ).id
    if obj == "contacts":
        return companies.create_contact(
            session,
            tenant,
            email=plain["email"],
            company_id=plain.get("company_id"),
            first_name=plain.get("first_name"),
            last_name=plain.get("last_name"),
            title=plain.get("title"),
        ).id
    stage = session.get(SalesStage, values[STAGE])
    assert stage is not None  # resolved from a link by the caller
    return deals.create(
        session,
        tenant,
        actor,
        pipeline_id=stage.pipeline_id,
        name=plain["name"],
        amount_minor=plain["amount_minor"],
        currency=plain.get("currency") or "USD",
        stage_id=stage.id,
        owner=plain.get("owner"),
        close_date=plain.get("close_date"),
        company_id=plain.get("company_id"),
    ).id


def update_local(
    session: Session, tenant: str, actor: str, obj: str, row: Any, changes: dict[str, Any]
) -> None:
    """Apply vendor values to a local row through the entity's service.

    The services read None as "leave unchanged", so a value the vendor cleared is cleared here.
    """
    plain = _plain(obj, changes)
    given = {k: v for k, v in plain.items() if v is not None}
    local_id = int(row.id)
    if obj == "companies" and given:
        companies.update_company(session, tenant, local_id, given)
    elif obj == "contacts" and given:
        companies.update_contact(session, tenant, local_id, given)
    elif obj == "deals" and given:
        deals.update(session, tenant, actor, local_id, changes=given)
    if obj == "deals" and changes.get(STAGE) is not None and changes[STAGE] != row.stage_id:
        deals.move(session, tenant, actor, local_id, int(changes[STAGE]))
    cleared = [k for k, v in plain.items() if v is None]
    for name in cleared:
        setattr(row, name, None)
    if cleared:
        if MODIFIED[obj]:
            row.updated_at = utcnow()
        session.add(row)
        session.flush()


def archive_local(session: Session, tenant: str, obj: str, ids: list[int]) -> None:
    if ids:
        archive.set_archived(session, tenant, ENTITY[obj], ids, archived=True)
