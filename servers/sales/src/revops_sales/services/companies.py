"""Companies (the suite's shared `core_company`) and their contacts (`core_contact`): create,
update, read, search with keyset paging. Archived (soft-deleted) records are hidden from reads."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_core.paging import Page, paginate
from revops_core.records import ensure_unique, live


class CompanyOut(Out):
    id: int = Field(description="Company id.")
    name: str = Field(description="Name.")
    domain: str | None = Field(description="Web domain.")
    industry: str | None = Field(description="Industry.")
    employees: int | None = Field(description="Employee count.")
    created_at: datetime = Field(description="Created (UTC).")


class ContactOut(Out):
    id: int = Field(description="Contact id.")
    company_id: int | None = Field(description="Company id.")
    email: str = Field(description="E-mail address.")
    first_name: str | None = Field(description="First name.")
    last_name: str | None = Field(description="Last name.")
    title: str | None = Field(description="Job title.")


class CompanyDetail(CompanyOut):
    contacts: list[ContactOut] = Field(description="Live contacts of the company.")
    open_deals: int = Field(description="Open deals linked to the company.")


COMPANY_FIELDS = ("name", "domain", "industry", "employees")
CONTACT_FIELDS = ("email", "first_name", "last_name", "title", "company_id")


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with the user's % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _normal_domain(domain: str | None) -> str | None:
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
) -> CompanyOut:
    clean = _normal_domain(domain)
    _domain_free(session, tenant, clean)
    company = CoreCompany(tenant=tenant, name=name, domain=clean, industry=industry, employees=employees)
    session.add(company)
    session.flush()
    return CompanyOut.model_validate(company)


def update_company(
    session: Session, tenant: str, company_id: int, changes: dict[str, str | int | None]
) -> CompanyOut:
    wanted: dict[str, str | int | None] = {k: v for k, v in changes.items() if v is not None}
    if not wanted:
        raise ValidationFailed(
            "Nothing to change.", field="name", hint="Pass name, domain, industry or employees."
        )
    company = get_company(session, tenant, company_id)
    if "domain" in wanted:
        domain = _normal_domain(str(wanted["domain"]))
        _domain_free(session, tenant, domain, other_than=company_id)
        wanted["domain"] = domain
    for attr, value in wanted.items():
        setattr(company, attr, value)
    company.updated_at = utcnow()
    session.add(company)
    session.flush()
    return CompanyOut.model_validate(company)


def company_detail(session: Session, tenant: str, company_id: int) -> CompanyDetail:
    from revops_sales.models.deals import SalesDeal
    from revops_sales.models.pipelines import SalesStage

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
    return CompanyDetail.model_validate(
        {
            **CompanyOut.model_validate(company).model_dump(),
            "contacts": [ContactOut.model_validate(c) for c in contacts],
            "open_deals": int(open_deals),
        }
    )


def search_companies(
    session: Session, tenant: str, *, text: str | None, industry: str | None, limit: int, cursor: str | None
) -> Page[CompanyOut]:
    query = select(CoreCompany).where(CoreCompany.tenant == tenant, col(CoreCompany.deleted_at).is_(None))
    if text:
        needle = _contains(text)
        query = query.where(
            or_(
                func.lower(CoreCompany.name).like(needle, escape="\\"),
                func.lower(func.coalesce(CoreCompany.domain, "")).like(needle, escape="\\"),
            )
        )
    if industry:
        query = query.where(func.lower(func.coalesce(CoreCompany.industry, "")) == industry.lower())
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CoreCompany.id)],
        scope="companies",
        item=CompanyOut.model_validate,
    )


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
    session: Session, tenant: str, *, text: str | None, company_id: int | None, limit: int, cursor: str | None
) -> Page[ContactOut]:
    query = select(CoreContact).where(CoreContact.tenant == tenant, col(CoreContact.deleted_at).is_(None))
    if text:
        needle = _contains(text)
        query = query.where(
            or_(
                func.lower(CoreContact.email).like(needle, escape="\\"),
                func.lower(
                    func.coalesce(CoreContact.first_name, "") + " " + func.coalesce(CoreContact.last_name, "")
                ).like(needle, escape="\\"),
            )
        )
    if company_id is not None:
        query = query.where(CoreContact.company_id == company_id)
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CoreContact.id)],
        scope="contacts",
        item=ContactOut.model_validate,
    )
