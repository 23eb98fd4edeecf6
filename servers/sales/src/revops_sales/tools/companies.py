"""Sales tools: companies and contacts (the suite's shared customer records)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import Count, Cursor, Id, Limit, SingleLine, Text
from revops_core.server import Call
from revops_sales.params import CompanyId, ContactId
from revops_sales.services import companies
from revops_sales.toolsets import crm as toolset

Domain = Annotated[
    str | None,
    Field(
        min_length=3,
        max_length=253,
        pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
        description="Web domain, e.g. acme.com.",
    ),
]
Industry = Annotated[str | None, Field(min_length=1, max_length=100, description="Industry."), SingleLine]
Employees = Annotated[int | None, Count("Employee count.")]
Email = Annotated[
    str,
    Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="E-mail."),
    SingleLine,
]
Name = Annotated[str | None, Field(min_length=1, max_length=100, description="Name part."), SingleLine]
JobTitle = Annotated[str | None, Field(min_length=1, max_length=150, description="Job title."), SingleLine]
SearchText = Annotated[
    str | None, Field(min_length=1, max_length=100, description="Text to find (any part)."), SingleLine
]


@toolset.tool(tier="write", idempotent=False, title="Create a company")
def create_company(
    call: Call,
    name: Annotated[str, Text("Company name.")],
    domain: Domain = None,
    industry: Industry = None,
    employees: Employees = None,
) -> companies.CompanyOut:
    """Create a company (one per domain) in the records every server shares."""
    created = companies.create_company(
        call.db, call.tenant, name=name, domain=domain, industry=industry, employees=employees
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
) -> companies.CompanyOut:
    """Change a company's name, domain, industry or size."""
    changes = {"name": name, "domain": domain, "industry": industry, "employees": employees}
    return companies.update_company(call.db, call.tenant, company_id, changes)


@toolset.tool(tier="read", title="Get a company")
def get_company(call: Call, company_id: CompanyId) -> companies.CompanyDetail:
    """One company with its contacts and the number of its open deals."""
    return companies.company_detail(call.db, call.tenant, company_id)


@toolset.tool(tier="read", title="Search companies")
def search_companies(
    call: Call, text: SearchText = None, industry: Industry = None, limit: Limit = 50, cursor: Cursor = None
) -> Page[companies.CompanyOut]:
    """Companies whose name or domain contains the text, optionally of one industry; paged."""
    return companies.search_companies(
        call.db, call.tenant, text=text, industry=industry, limit=limit, cursor=cursor
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
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[companies.ContactOut]:
    """Contacts whose e-mail or name contains the text, optionally at one company; paged."""
    return companies.search_contacts(
        call.db, call.tenant, text=text, company_id=company_id, limit=limit, cursor=cursor
    )
