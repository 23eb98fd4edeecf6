"""Leads: create, update, read one, search with filters and keyset paging. Archived leads are hidden."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import or_
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import Conflict, ValidationFailed
from revops_core.outputs import FromJson, Out
from revops_core.paging import Page, paginate
from revops_core.records import live
from revops_sales.models.leads import SalesLead, SalesLeadRouting


class LeadOut(Out):
    id: int = Field(description="Lead id.")
    name: str = Field(description="Person's name.")
    email: str | None = Field(description="E-mail address.")
    company_name: str | None = Field(description="Company name.")
    company_domain: str | None = Field(description="Company web domain.")
    title: str | None = Field(description="Job title.")
    industry: str | None = Field(description="Industry.")
    country: str | None = Field(description="ISO country code.")
    region: str | None = Field(description="Region.")
    employees: int | None = Field(description="Company employee count.")
    source: str | None = Field(description="Lead source.")
    campaign: str | None = Field(description="Campaign credited.")
    owner: str | None = Field(description="Rep who owns it.")
    status: str = Field(description="new, working, qualified, disqualified or converted.")
    fit_score: float | None = Field(description="ICP fit 0–100 (null: not scored or no data).")
    intent_score: float | None = Field(description="Intent 0–100 (null: not scored or no engagement).")
    scored_at: datetime | None = Field(description="When the scores were computed (UTC).")
    created_at: datetime = Field(description="Created (UTC).")


class RoutingOut(Out):
    rep: str = Field(description="Rep chosen.")
    method: str = Field(description="territory or round_robin.")
    rule_id: int | None = Field(description="Territory rule that matched.")
    explanation: str = Field(description="Why this rep.")
    routed_at: datetime = Field(description="When (UTC).")


class LeadDetail(LeadOut):
    converted_contact_id: int | None = Field(description="Contact it became.")
    converted_deal_id: int | None = Field(description="Deal it became.")
    score_detail: Annotated[dict[str, Any], FromJson] = Field(
        description="Fit criteria matched/unmatched/unknown; intent points by kind."
    )
    routing: list[RoutingOut] = Field(description="Routing decisions, oldest first.")


EDITABLE = (
    "name",
    "email",
    "company_name",
    "company_domain",
    "title",
    "industry",
    "country",
    "region",
    "employees",
    "source",
    "campaign",
    "owner",
    "status",
)


def get(session: Session, tenant: str, lead_id: int) -> SalesLead:
    return live(session, SalesLead, lead_id, tenant=tenant, field="lead_id", what="lead", see="search_leads")


def _clean(values: Mapping[str, object]) -> dict[str, object]:
    out = dict(values)
    if isinstance(out.get("email"), str):
        out["email"] = str(out["email"]).strip().lower()
    if isinstance(out.get("company_domain"), str):
        out["company_domain"] = str(out["company_domain"]).strip().lower().removeprefix("www.")
    if isinstance(out.get("country"), str):
        out["country"] = str(out["country"]).upper()
    return out


def create(session: Session, tenant: str, values: Mapping[str, object]) -> LeadOut:
    if values.get("status") == "converted":
        raise ValidationFailed(
            "A lead becomes converted only through convert_lead.", field="status", hint="Use new."
        )
    now = utcnow()
    lead = SalesLead(tenant=tenant, name=str(values["name"]), created_at=now, updated_at=now)
    for attr, value in _clean(values).items():
        setattr(lead, attr, value)
    session.add(lead)
    session.flush()
    return LeadOut.model_validate(lead)


def update(session: Session, tenant: str, lead_id: int, changes: Mapping[str, object]) -> LeadOut:
    wanted = _clean({k: v for k, v in changes.items() if v is not None})
    if not wanted:
        raise ValidationFailed("Nothing to change.", field="lead_id", hint="Pass at least one field.")
    lead = get(session, tenant, lead_id)
    if lead.status == "converted":
        raise Conflict(f"Lead {lead_id} was converted; change its contact or deal instead.", field="lead_id")
    if wanted.get("status") == "converted":
        raise ValidationFailed("Use convert_lead to convert a lead.", field="status")
    for attr, value in wanted.items():
        setattr(lead, attr, value)
    lead.updated_at = utcnow()
    session.add(lead)
    session.flush()
    return LeadOut.model_validate(lead)


def detail(session: Session, tenant: str, lead_id: int) -> LeadDetail:
    lead = get(session, tenant, lead_id)
    routes = session.exec(
        select(SalesLeadRouting).where(SalesLeadRouting.lead_id == lead_id).order_by(col(SalesLeadRouting.id))
    ).all()
    return LeadDetail.model_validate(
        {
            **lead.model_dump(),
            "score_detail": lead.score_detail,
            "routing": [RoutingOut.model_validate(r) for r in routes],
        }
    )


def search(
    session: Session,
    tenant: str,
    *,
    filters: Mapping[str, object],
    min_fit: float | None,
    min_intent: float | None,
    limit: int,
    cursor: str | None,
) -> Page[LeadOut]:
    """Newest first; `text` matches name, e-mail or company; other filters are exact."""
    query = select(SalesLead).where(SalesLead.tenant == tenant, col(SalesLead.deleted_at).is_(None))
    text = filters.get("text")
    if isinstance(text, str) and text:
        query = query.where(
            or_(
                *(
                    col(c).icontains(text, autoescape=True)
                    for c in (SalesLead.name, SalesLead.email, SalesLead.company_name)
                )
            )
        )
    for name in ("status", "owner", "source", "campaign", "country", "industry"):
        value = filters.get(name)
        if value is not None:
            query = query.where(
                getattr(SalesLead, name) == (str(value).upper() if name == "country" else value)
            )
    if min_fit is not None:
        query = query.where(col(SalesLead.fit_score) >= min_fit)
    if min_intent is not None:
        query = query.where(col(SalesLead.intent_score) >= min_intent)
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[SalesLead.created_at, SalesLead.id],
        scope="leads",
        descending=True,
        item=LeadOut.model_validate,
    )
