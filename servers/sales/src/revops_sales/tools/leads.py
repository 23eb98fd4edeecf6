"""Sales toolset `crm`: leads — create or update, read one (scores explained, routing history), search."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.errors import ValidationFailed
from revops_core.paging import Page
from revops_core.params import Cursor, Id, Limit, Text, WholeNumber
from revops_core.server import Call
from revops_sales.services import leads
from revops_sales.toolsets import crm as toolset

LeadId = Annotated[int, Id("lead", see="search_leads")]
Status = Literal["new", "working", "qualified", "disqualified"]

Email = Annotated[
    str | None,
    Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320, description="E-mail address."),
]
Domain = Annotated[
    str | None,
    Field(pattern=r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$", max_length=253, description="Company domain."),
]
Country = Annotated[str | None, Field(pattern=r"^[A-Za-z]{2}$", description="ISO country code.")]
Score = Annotated[float | None, Field(ge=0, le=100, description="At least this.")]


@toolset.tool(tier="write", idempotent=False, title="Create or update a lead")
def save_lead(
    call: Call,
    lead_id: Annotated[int | None, Id("lead", see="search_leads", optional="omit to create")] = None,
    name: Annotated[str | None, Text("Person's name (to create).")] = None,
    email: Email = None,
    company_name: Annotated[str | None, Text("Company name.")] = None,
    company_domain: Domain = None,
    title: Annotated[str | None, Text("Job title.", max_length=150)] = None,
    industry: Annotated[str | None, Text("Industry.", max_length=100)] = None,
    country: Country = None,
    region: Annotated[str | None, Text("Region.", max_length=100)] = None,
    employees: Annotated[
        int | None, Field(ge=0, le=10**9, description="Employee count."), WholeNumber
    ] = None,
    source: Annotated[str | None, Text("e.g. webinar.", max_length=100)] = None,
    campaign: Annotated[str | None, Text("Campaign credited.")] = None,
    owner: Annotated[str | None, Text("Owning rep.")] = None,
    status: Annotated[Status | None, Field(description="Default new.")] = None,
) -> leads.LeadOut:
    """Create a lead (name required), or change the given fields of one (lead_id)."""
    values = {
        "name": name,
        "email": email,
        "company_name": company_name,
        "company_domain": company_domain,
        "title": title,
        "industry": industry,
        "country": country,
        "region": region,
        "employees": employees,
        "source": source,
        "campaign": campaign,
        "owner": owner,
        "status": status,
    }
    if lead_id is not None:
        call.target = f"sales_lead:{lead_id}"
        return leads.update(call.db, call.tenant, lead_id, values)
    if not name:
        raise ValidationFailed("A new lead needs a name.", field="name", hint="Pass name.")
    created = leads.create(call.db, call.tenant, {k: v for k, v in values.items() if v is not None})
    call.target = f"sales_lead:{created.id}"
    return created


@toolset.tool(tier="read", title="Get a lead")
def get_lead(call: Call, lead_id: LeadId) -> leads.LeadDetail:
    """One lead: scores explained (ICP criteria met, intent by kind), routing, conversion."""
    return leads.detail(call.db, call.tenant, lead_id)


@toolset.tool(tier="read", title="Search leads")
def search_leads(
    call: Call,
    text: Annotated[str | None, Text("Matches name, e-mail or company.")] = None,
    status: Annotated[
        Literal["new", "working", "qualified", "disqualified", "converted"] | None,
        Field(description="Only this status."),
    ] = None,
    owner: Annotated[str | None, Text("Only this rep's.")] = None,
    source: Annotated[str | None, Text("Only this source.", max_length=100)] = None,
    campaign: Annotated[str | None, Text("Only this campaign.")] = None,
    min_fit: Score = None,
    min_intent: Score = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[leads.LeadOut]:
    """Leads, newest first, filtered."""
    filters = {
        "text": text,
        "status": status,
        "owner": owner,
        "source": source,
        "campaign": campaign,
    }
    return leads.search(
        call.db,
        call.tenant,
        filters=filters,
        min_fit=min_fit,
        min_intent=min_intent,
        limit=limit,
        cursor=cursor,
    )
