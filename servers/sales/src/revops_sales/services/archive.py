"""Bulk archive (soft delete) and restore of companies, contacts, deals and leads.

Archiving is plan → confirm; a plan for more records than `bulk_approval_threshold` also needs a
person's approval (`revops approve <plan_id>`), which the model cannot give itself. Both run as
one set-based UPDATE.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlalchemy import update
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.guards import PlanPreview
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_sales.models.deals import SalesDeal
from revops_sales.models.leads import SalesLead

Entity = Literal["company", "contact", "deal", "lead"]
MODELS: dict[str, Any] = {
    "company": CoreCompany,
    "contact": CoreContact,
    "deal": SalesDeal,
    "lead": SalesLead,
}
SAMPLE_SIZE = 5


class ArchiveOut(Out):
    entity: str = Field(description="company, contact, deal or lead.")
    ids: list[int] = Field(description="Records changed.")
    archived: bool = Field(description="True: archived now; false: restored.")


def _label(row: Any) -> str:
    return str(getattr(row, "name", None) or getattr(row, "email", ""))


def _rows(session: Session, tenant: str, entity: str, ids: list[int], *, archived: bool) -> list[Any]:
    model = MODELS[entity]
    deleted = col(model.deleted_at).is_not(None) if archived else col(model.deleted_at).is_(None)
    rows = list(
        session.exec(select(model).where(col(model.id).in_(ids), model.tenant == tenant, deleted)).all()
    )
    missing = sorted(set(ids) - {r.id for r in rows})
    if missing:
        state = "archived" if archived else "live"
        shown = ", ".join(str(i) for i in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise ValidationFailed(
            f"{len(missing)} id(s) are not {state} {entity} records: {shown}.",
            field="ids",
            hint=f"Pass only ids of {state} records; nothing was changed.",
        )
    return rows


def plan(
    session: Session, tenant: str, entity: str, ids: list[int], *, threshold: int
) -> tuple[PlanPreview, Any]:
    """The preview and the fingerprint of archiving these records."""
    rows = _rows(session, tenant, entity, ids, archived=False)
    big = len(rows) > threshold
    notes = ["Archived records are hidden from every list and search; restore_records brings them back."]
    if big:
        notes.append(f"More than {threshold} records: a person must approve this plan (`revops approve`).")
    preview = PlanPreview(
        summary=f"Archive {len(rows)} {entity} record(s).",
        affected_count=len(rows),
        sample=[{"id": r.id, "label": _label(r)} for r in rows[:SAMPLE_SIZE]],
        reversible=True,
        notes=notes,
        requires_approval=big,
    )
    fingerprint = sorted((r.id, str(getattr(r, "updated_at", r.created_at))) for r in rows)
    return preview, fingerprint


def set_archived(session: Session, tenant: str, entity: str, ids: list[int], *, archived: bool) -> ArchiveOut:
    model = MODELS[entity]
    if not archived:
        _rows(session, tenant, entity, ids, archived=True)
    # One UPDATE for the whole set, on the call's transaction.
    session.connection().execute(
        update(model)
        .where(col(model.id).in_(ids), model.tenant == tenant)
        .values(deleted_at=utcnow() if archived else None)
    )
    return ArchiveOut(entity=entity, ids=sorted(ids), archived=archived)
