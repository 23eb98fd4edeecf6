"""Companies (the suite's shared `core_company`) and their contacts (`core_contact`): create,
update, read, search with keyset paging. Archived (soft-deleted) records are hidden from reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import exists, func, or_
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_core.paging import Page, paginate
from revops_core.params import Count, SingleLine, end_of_day, start_of_day
from revops_core.records import ensure_unique, live
from revops_sales.models.crm import SalesCompanyOwner
from revops_sales.services import custom_properties
from revops_sales.services.custom_properties import ValueOut

# Field shapes shared by the tools and the CSV import (one definition of a valid domain or e-mail).
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
Owner = Annotated[
    str | None, Field(min_length=1, max_length=200, description="Sales owner (rep)."), SingleLine
]
SearchText = Annotated[
    str | None, Field(min_length=1, max_length=100, description="Text to find (any part)."), SingleLine
]


class CompanyOut(Out):
    id: int = Field(description="Company id.")
    name: str = Field(description="Name.")
    domain: str | None = Field(description="Web domain.")
    industry: str | None = Field(description="Industry.")
    employees: int | None = Field(description="Employee count.")
    created_at: datetime = Field(description="Created (UTC).")
    # Not a core_company column: Sales keeps it in sales_company_owner and fills it in.
    owner: str | None = Field(default=None, description="Sales owner (rep).")


class ContactOut(Out):
    id: int = Field(description="Contact id.")
    company_id: int | None = Field(description="Company id.")
    email: str = Field(description="E-mail address.")
    first_name: str | None = Field(description="First name.")
    last_name: str | None = Field(description="Last name.")
    title: str | None = Field(description="Job title.")


class CompanyRef(Out):
    id: int = Field(description="Company id.")
    name: str = Field(description="Name.")


class CompanyRow(CompanyOut):
    properties: list[ValueOut] = Field(default_factory=list, description="Custom property values.")


class ContactRow(ContactOut):
    created_at: datetime = Field(description="Created (UTC).")
    properties: list[ValueOut] = Field(default_factory=list, description="Custom property values.")


class CompanyDetail(CompanyRow):
    contacts: list[ContactOut] = Field(description="Live contacts of the company.")
    open_deals: int = Field(description="Open deals linked to the company.")
    parent: CompanyRef | None = Field(description="Parent company.")
    children: list[CompanyRef] = Field(description="Live child companies.")


@dataclass(frozen=True)
class SearchFilters:
    """Filters every search takes: created range (UTC days) and one custom property's value."""

    created_from: date | None = None
    created_to: date | None = None
    property_name: str | None = None
    property_value: str | None = None


COMPANY_FIELDS = ("name", "domain", "industry", "employees")
CONTACT_FIELDS = ("email", "first_name", "last_name", "title", "company_id")


def normal_domain(domain: str | None) -> str | None:
    return domain.strip().lower().removeprefix("www.") if domain else None


def get_company(session: Session, tenant: str, company_id: int) -> CoreCompany:
    return live(
        session,
        CoreCompany,
        company_id,
        tenant=tenant,
        field="company_id",
        what="company",
        see="search_companies",
    )


def _domain_free(session: Session, tenant: str, domain: str | None, *, other_than: int | None = None) -> None:
    if domain is not None:
        ensure_unique(
            session,
            col(CoreCompany.domain),
            domain,
            tenant_column=col(CoreCompany.tenant),
            tenant=tenant,
            field="domain",
            what="Company",
            hint="Update that company.",
            other_than=other_than,
        )


def create_company(
    session: Session,
    tenant: str,
    *,
    name: str,
    domain: str | None,
    industry: str | None,
    employees: int | None,
    owner: str | None = None,
) -> CompanyOut:
    clean = normal_domain(domain)
    _domain_free(session, tenant, clean)
    company = CoreCompany(tenant=tenant, name=name, domain=clean, industry=industry, employees=employees)
    session.add(company)
    session.flush()
    out = CompanyOut.model_validate(company)
    if owner is not None:
        out.owner = _set_owner(session, tenant, out.id, owner)
    return out


def _set_owner(session: Session, tenant: str, company_id: int, owner: str) -> str:
    row = session.exec(select(SalesCompanyOwner).where(SalesCompanyOwner.company_id == company_id)).first()
    row = row or SalesCompanyOwner(tenant=tenant, company_id=company_id, owner=owner)
    row.owner, row.updated_at = owner, utcnow()
    session.add(row)
    session.flush()
    return owner


def owners_of(session: Session, tenant: str, ids: list[int]) -> dict[int, str]:
    """The Sales owner of each of these companies that has one (one query)."""
    if not ids:
        return {}
    rows = session.exec(
        select(SalesCompanyOwner.company_id, SalesCompanyOwner.owner).where(
            SalesCompanyOwner.tenant == tenant, col(SalesCompanyOwner.company_id).in_(ids)
        )
    ).all()
    return dict(rows)


def update_company(
    session: Session, tenant: str, company_id: int, changes: dict[str, str | int | None]
) -> CompanyOut:
    wanted: dict[str, str | int | None] = {k: v for k, v in changes.items() if v is not None}
    if not wanted:
        raise ValidationFailed(
            "Nothing to change.", field="name", hint="Pass name, domain, industry, employees or owner."
        )
    company = get_company(session, tenant, company_id)
    owner = wanted.pop("owner", None)
    if owner is not None:
        _set_owner(session, tenant, company_id, str(owner))
    if "domain" in wanted:
        domain = normal_domain(str(wanted["domain"]))
        _domain_free(session, tenant, domain, other_than=company_id)
        wanted["domain"] = domain
    for attr, value in wanted.items():
        setattr(company, attr, value)
    company.updated_at = utcnow()
    session.add(company)
    session.flush()
    out = CompanyOut.model_validate(company)
    out.owner = owners_of(session, tenant, [company_id]).get(company_id)
    return out


def company_detail(session: Session, tenant: str, company_id: int) -> CompanyDetail:
    from revops_sales.models.deals import SalesDeal
    from revops_sales.models.pipelines import SalesStage
    from revops_sales.services.associations import company_links

    company = get_company(session, tenant, company_id)
    contacts = session.exec(
        select(CoreContact)
        .where(CoreContact.company_id == company_id, col(CoreContact.deleted_at).is_(None))
        .order_by(col(CoreContact.id))
    ).all()
    open_deals = session.exec(
        select(func.count())
        .select_from(SalesDeal)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            SalesDeal.company_id == company_id, SalesStage.kind == "open", col(SalesDeal.deleted_at).is_(None)
        )
    ).one()
    links = company_links(session, tenant, company_id)
    return CompanyDetail.model_validate(
        {
            **CompanyOut.model_validate(company).model_dump(),
            "owner": owners_of(session, tenant, [company_id]).get(company_id),
            "properties": custom_properties.values_for(session, tenant, "company", [company_id]).get(
                company_id, []
            ),
            "contacts": [ContactOut.model_validate(c) for c in contacts],
            "open_deals": int(open_deals),
            "parent": links.parent,
            "children": links.children,
        }
    )


def _filtered(
    session: Session, tenant: str, query: Any, model: Any, entity: str, filters: SearchFilters
) -> Any:
    """`query` narrowed by the created range and the custom property filter of `filters`."""
    if filters.created_from and filters.created_to and filters.created_to < filters.created_from:
        raise ValidationFailed(
            "created_to is before created_from.",
            field="created_to",
            hint="Give a day on or after created_from.",
        )
    if filters.created_from:
        query = query.where(col(model.created_at) >= start_of_day(filters.created_from))
    if filters.created_to:
        query = query.where(col(model.created_at) <= end_of_day(filters.created_to))
    if (filters.property_name is None) != (filters.property_value is None):
        missing = "property_value" if filters.property_value is None else "property_name"
        raise ValidationFailed(
            "A property filter needs property_name and property_value.",
            field=missing,
            hint=f"Pass {missing}.",
        )
    if filters.property_name is not None and filters.property_value is not None:
        query = query.where(
            custom_properties.equals_clause(
                session, tenant, entity, filters.property_name, filters.property_value, col(model.id)
            )
        )
    return query


def _with_properties(session: Session, tenant: str, entity: str, page: Page[Any]) -> Page[Any]:
    """The page's items with their custom values (and a company's owner): one query each per page."""
    ids = [item.id for item in page.items]
    values = custom_properties.values_for(session, tenant, entity, ids)
    owners = owners_of(session, tenant, ids) if entity == "company" else {}
    for item in page.items:
        item.properties = values.get(item.id, [])
        if entity == "company":
            item.owner = owners.get(item.id)
    return page


def search_companies(
    session: Session,
    tenant: str,
    *,
    text: str | None,
    industry: str | None,
    filters: SearchFilters,
    limit: int,
    cursor: str | None,
    owner: str | None = None,
) -> Page[CompanyRow]:
    query = select(CoreCompany).where(CoreCompany.tenant == tenant, col(CoreCompany.deleted_at).is_(None))
    if text:
        # icontains with autoescape: the user's % and _ are characters to find, not wildcards
        query = query.where(
            or_(
                col(CoreCompany.name).icontains(text, autoescape=True),
                func.coalesce(CoreCompany.domain, "").icontains(text, autoescape=True),
            )
        )
    if industry:
        query = query.where(func.lower(func.coalesce(CoreCompany.industry, "")) == industry.lower())
    if owner:
        query = query.where(
            exists().where(
                col(SalesCompanyOwner.company_id) == col(CoreCompany.id),
                func.lower(SalesCompanyOwner.owner) == owner.lower(),
            )
        )
    query = _filtered(session, tenant, query, CoreCompany, "company", filters)
    page = paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CoreCompany.id)],
        scope="companies",
        item=CompanyRow.model_validate,
    )
    return _with_properties(session, tenant, "company", page)


# --------------------------------------------------------------------------- contacts


def get_contact(session: Session, tenant: str, contact_id: int) -> CoreContact:
    return live(
        session,
        CoreContact,
        contact_id,
        tenant=tenant,
        field="contact_id",
        what="contact",
        see="search_contacts",
    )


def _email_free(session: Session, tenant: str, email: str, *, other_than: int | None = None) -> None:
    ensure_unique(
        session,
        col(CoreContact.email),
        email,
        tenant_column=col(CoreContact.tenant),
        tenant=tenant,
        field="email",
        what="Contact",
        noun="e-mail",
        hint="Update that contact.",
        other_than=other_than,
    )


def create_contact(
    session: Session,
    tenant: str,
    *,
    email: str,
    company_id: int | None,
    first_name: str | None,
    last_name: str | None,
    title: str | None,
) -> ContactOut:
    clean = email.strip().lower()
    _email_free(session, tenant, clean)
    if company_id is not None:
        get_company(session, tenant, company_id)
    contact = CoreContact(
        tenant=tenant,
        email=clean,
        company_id=company_id,
        first_name=first_name,
        last_name=last_name,
        title=title,
    )
    session.add(contact)
    session.flush()
    return ContactOut.model_validate(contact)


def update_contact(
    session: Session, tenant: str, contact_id: int, changes: dict[str, str | int | None]
) -> ContactOut:
    wanted = {k: v for k, v in changes.items() if v is not None}
    if not wanted:
        raise ValidationFailed(
            "Nothing to change.",
            field="email",
            hint="Pass email, first_name, last_name, title or company_id.",
        )
    contact = get_contact(session, tenant, contact_id)
    if "email" in wanted:
        wanted["email"] = str(wanted["email"]).strip().lower()
        _email_free(session, tenant, str(wanted["email"]), other_than=contact_id)
    if "company_id" in wanted:
        get_company(session, tenant, int(wanted["company_id"] or 0))
    for attr, value in wanted.items():
        setattr(contact, attr, value)
    session.add(contact)
    session.flush()
    return ContactOut.model_validate(contact)


def search_contacts(
    session: Session,
    tenant: str,
    *,
    text: str | None,
    company_id: int | None,
    filters: SearchFilters,
    limit: int,
    cursor: str | None,
) -> Page[ContactRow]:
    query = select(CoreContact).where(CoreContact.tenant == tenant, col(CoreContact.deleted_at).is_(None))
    if text:
        full_name = func.coalesce(CoreContact.first_name, "") + " " + func.coalesce(CoreContact.last_name, "")
        query = query.where(
            or_(
                col(CoreContact.email).icontains(text, autoescape=True),
                full_name.icontains(text, autoescape=True),
            )
        )
    if company_id is not None:
        query = query.where(CoreContact.company_id == company_id)
    query = _filtered(session, tenant, query, CoreContact, "contact", filters)
    page = paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CoreContact.id)],
        scope="contacts",
        item=ContactRow.model_validate,
    )
    return _with_properties(session, tenant, "contact", page)
