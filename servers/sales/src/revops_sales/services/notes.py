"""Notes on a deal, a contact or a company; each is also recorded as a `note` activity."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from revops_core.errors import ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_core.paging import Page, paginate
from revops_core.records import live
from revops_sales.models.deal_work import SalesNote
from revops_sales.models.deals import SalesDeal
from revops_sales.services import activities

RECENT = 5
"""Notes get_deal shows (newest first)."""


class NoteOut(Out):
    id: int = Field(description="Note id.")
    deal_id: int | None = Field(description="Deal, if on a deal.")
    contact_id: int | None = Field(description="Contact, if on a contact.")
    company_id: int | None = Field(description="Company, if on a company.")
    body: str = Field(description="The note.")
    author: str = Field(description="Who wrote it.")
    created_at: datetime = Field(description="Written at (UTC).")


def _one_subject(deal_id: int | None, contact_id: int | None, company_id: int | None) -> None:
    given = [
        n for n, v in (("deal_id", deal_id), ("contact_id", contact_id), ("company_id", company_id)) if v
    ]
    if len(given) != 1:
        raise ValidationFailed(
            "A note is on exactly one deal, contact or company.",
            field=given[1] if len(given) > 1 else "deal_id",
            hint="Pass one of deal_id, contact_id, company_id.",
        )


def add(
    session: Session,
    tenant: str,
    *,
    body: str,
    deal_id: int | None,
    contact_id: int | None,
    company_id: int | None,
    author: str,
    at: datetime,
) -> NoteOut:
    _one_subject(deal_id, contact_id, company_id)
    activity_company = company_id
    if deal_id is not None:
        deal = live(
            session, SalesDeal, deal_id, tenant=tenant, field="deal_id", what="deal", see="list_deals"
        )
        activity_company = deal.company_id
    if contact_id is not None:
        live(
            session,
            CoreContact,
            contact_id,
            tenant=tenant,
            field="contact_id",
            what="contact",
            see="search_contacts",
        )
    if company_id is not None:
        live(
            session,
            CoreCompany,
            company_id,
            tenant=tenant,
            field="company_id",
            what="company",
            see="search_companies",
        )
    row = SalesNote(
        tenant=tenant,
        deal_id=deal_id,
        contact_id=contact_id,
        company_id=company_id,
        body=body,
        author=author,
        created_at=at,
    )
    session.add(row)
    session.flush()
    activities.record(
        session,
        tenant,
        kind="note",
        occurred_at=at,
        owner=author,
        deal_id=deal_id,
        contact_id=contact_id,
        company_id=activity_company,
        subject=body.splitlines()[0] if body.strip() else None,
        source=("sales_note", row.id or 0),
    )
    return NoteOut.model_validate(row)


def _of(
    tenant: str, deal_id: int | None, contact_id: int | None, company_id: int | None
) -> SelectOfScalar[SalesNote]:
    query = select(SalesNote).where(SalesNote.tenant == tenant)
    if deal_id is not None:
        query = query.where(SalesNote.deal_id == deal_id)
    if contact_id is not None:
        query = query.where(SalesNote.contact_id == contact_id)
    if company_id is not None:
        query = query.where(SalesNote.company_id == company_id)
    return query


def recent_of_deal(session: Session, tenant: str, deal_id: int, limit: int = RECENT) -> list[NoteOut]:
    rows = session.exec(_of(tenant, deal_id, None, None).order_by(col(SalesNote.id).desc()).limit(limit))
    return [NoteOut.model_validate(r) for r in rows]


def page(
    session: Session,
    tenant: str,
    *,
    deal_id: int | None,
    contact_id: int | None,
    company_id: int | None,
    limit: int,
    cursor: str | None,
) -> Page[NoteOut]:
    """Notes of one deal, contact or company, newest first."""
    _one_subject(deal_id, contact_id, company_id)
    return paginate(
        session,
        _of(tenant, deal_id, contact_id, company_id),
        cursor=cursor,
        limit=limit,
        keys=[col(SalesNote.id)],
        scope="notes",
        descending=True,
        item=NoteOut.model_validate,
    )
