"""Sales tools: companies and contacts (the suite's shared customer records)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import Cursor, Id, Limit, SingleLine, Text
from revops_core.server import Call
from revops_sales.params import CompanyId, ContactId
from revops_sales.services import companies
from revops_sales.services.companies import (
    Domain,
    Email,
    Employees,
    Industry,
    JobTitle,
    Name,
    Owner,
    SearchText,
)
from revops_sales.toolsets import crm as toolset

CreatedFrom = Annotated[date | None, Field(description="Created on/after (UTC day).")]
CreatedTo = Annotated[date | None, Field(description="Created on/before (UTC day).")]
PropertyName = Annotated[
    str | None, Field(min_length=1, max_length=60, description="Custom property to match."), SingleLine
]
PropertyValue = Annotated[
    str | None, Field(min_length=1, max_length=500, description="Value it must equal."), SingleLine
]


@toolset.tool(tier="write", idempotent=False, title="Create a company")
def create_company(
    call: Call,
    name: Annotated[str, Text("Company name.")],
    domain: Domain = None,
    industry: Industry = None,
    employees: Employees = None,
    owner: Owner = None,
) -> companies.CompanyOut:
    """Create a company (one per domain) in the records every server shares."""
    created = companies.create_company(
        call.db, call.tenant, name=name, domain=domain, industry=industry, employees=employees, owner=owner
    )
    call.target = f"core_company:{created.id}"
    return created


@toolset.tool(tier="write", idempotent=True, title="Update a company", target="core_company:{company_id}")
def update_company(
    call: Call,
    company_id: CompanyId,
    name: Annotated[str | None, Text("New name.")] = None,
    domain: Domain = None,
    industry: Industry = None,
    employees: Employees = None,
    owner: Owner = None,
) -> companies.CompanyOut:
    """Change a company's name, domain, industry, size or Sales owner."""
    changes = {"name": name, "domain": domain, "industry": industry, "employees": employees, "owner": owner}
    return companies.update_company(call.db, call.tenant, company_id, changes)


@toolset.tool(tier="read", title="Get a company")
def get_company(call: Call, company_id: CompanyId) -> companies.CompanyDetail:
    """One company with its contacts and the number of its open deals."""
    return companies.company_detail(call.db, call.tenant, company_id)


@toolset.tool(tier="read", title="Search companies")
def search_companies(
    call: Call,
    text: SearchText = None,
    industry: Industry = None,
    owner: Owner = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    property_name: PropertyName = None,
    property_value: PropertyValue = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[companies.CompanyRow]:
    """Companies by name/domain text, industry, owner, created days or a custom property value; paged."""
    filters = companies.SearchFilters(created_from, created_to, property_name, property_value)
    return companies.search_companies(
        call.db,
        call.tenant,
        text=text,
        industry=industry,
        owner=owner,
        filters=filters,
        limit=limit,
        cursor=cursor,
    )


@toolset.tool(tier="write", idempotent=False, title="Create a contact")
def create_contact(
    call: Call,
    email: Email,
    company_id: Annotated[
        int | None, Id("company", see="search_companies", optional="omit if unknown")
    ] = None,
    first_name: Name = None,
    last_name: Name = None,
    title: JobTitle = None,
) -> companies.ContactOut:
    """Create a contact (one per e-mail address), optionally at a company."""
    created = companies.create_contact(
        call.db,
        call.tenant,
        email=email,
        company_id=company_id,
        first_name=first_name,
        last_name=last_name,
        title=title,
    )
    call.target = f"core_contact:{created.id}"
    return created


@toolset.tool(tier="write", idempotent=True, title="Update a contact", target="core_contact:{contact_id}")
def update_contact(
    call: Call,
    contact_id: ContactId,
    email: Annotated[
        str | None,
        Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="New e-mail."),
        SingleLine,
    ] = None,
    company_id: Annotated[
        int | None, Id("company", see="search_companies", optional="the new company")
    ] = None,
    first_name: Name = None,
    last_name: Name = None,
    title: JobTitle = None,
) -> companies.ContactOut:
    """Change a contact's e-mail, company, name or title."""
    changes = {
        "email": email,
        "company_id": company_id,
        "first_name": first_name,
        "last_name": last_name,
        "title": title,
    }
    return companies.update_contact(call.db, call.tenant, contact_id, changes)


@toolset.tool(tier="read", title="Search contacts")
def search_contacts(
    call: Call,
    text: SearchText = None,
    company_id: Annotated[
        int | None, Id("company", see="search_companies", optional="omit for every company")
    ] = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    property_name: PropertyName = None,
    property_value: PropertyValue = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[companies.ContactRow]:
    """Contacts by e-mail/name text, company, created days or a custom property value; paged."""
    filters = companies.SearchFilters(created_from, created_to, property_name, property_value)
    return companies.search_contacts(
        call.db, call.tenant, text=text, company_id=company_id, filters=filters, limit=limit, cursor=cursor
    )
