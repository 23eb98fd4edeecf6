"""Recording and reading activities (see `models.activities`): the one write every touch goes through."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.outputs import Out
from revops_sales.models.activities import ACTIVITY_KINDS, SalesActivity


class ActivityOut(Out):
    id: int = Field(description="Activity id.")
    kind: str = Field(description="call, email_sent, email_received, meeting, note or task_done.")
    owner: str | None = Field(description="Rep who made the touch.")
    deal_id: int | None = Field(description="Deal, if any.")
    contact_id: int | None = Field(description="Contact, if any.")
    company_id: int | None = Field(description="Company, if any.")
    subject: str | None = Field(description="Subject or summary.")
    occurred_at: datetime = Field(description="When (UTC).")


def record(
    session: Session,
    tenant: str,
    *,
    kind: str,
    occurred_at: datetime,
    owner: str | None = None,
    deal_id: int | None = None,
    contact_id: int | None = None,
    company_id: int | None = None,
    subject: str | None = None,
    source: tuple[str, int] | None = None,
) -> SalesActivity:
    """Add one activity in the caller's transaction (flushed, so its id is known)."""
    if kind not in ACTIVITY_KINDS:  # a programming error, not user input: callers pass a literal
        raise ValueError(f"unknown activity kind {kind!r}")
    row = SalesActivity(
        tenant=tenant,
        kind=kind,
        owner=owner,
        deal_id=deal_id,
        contact_id=contact_id,
        company_id=company_id,
        subject=subject[:300] if subject else None,
        source_table=source[0] if source else None,
        source_id=source[1] if source else None,
        occurred_at=occurred_at,
    )
    session.add(row)
    session.flush()
    return row


def latest(
    session: Session,
    tenant: str,
    *,
    deal_id: int | None = None,
    contact_id: int | None = None,
    company_id: int | None = None,
    limit: int = 10,
) -> list[ActivityOut]:
    """The newest activities of a deal, contact or company (whichever are given, any of them matching)."""
    query = select(SalesActivity).where(SalesActivity.tenant == tenant)
    if deal_id is not None:
        query = query.where(SalesActivity.deal_id == deal_id)
    if contact_id is not None:
        query = query.where(SalesActivity.contact_id == contact_id)
    if company_id is not None:
        query = query.where(SalesActivity.company_id == company_id)
    rows = session.exec(
        query.order_by(col(SalesActivity.occurred_at).desc(), col(SalesActivity.id).desc()).limit(limit)
    )
    return [ActivityOut.model_validate(row) for row in rows]
