"""Associations between records: a contact's primary company (`core_contact.company_id`), the
contacts of a deal with their role, and a company's parent. `contacts_of_deal` is what deal reads
call; `company_links` is what `get_company` shows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy import delete, exists, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_core.records import live
from revops_sales.models.crm import DEAL_ROLES, SalesAssociation
from revops_sales.services.companies import CompanyRef, get_company, get_contact

Kind = Literal["contact_company", "deal_contact", "company_parent"]
Action = Literal["add", "remove"]
MAX_DEPTH = 50  # a parent chain longer than this is refused rather than walked for ever


class AssociationOut(Out):
    kind: str = Field(description="contact_company, deal_contact or company_parent.")
    from_id: int = Field(description="contact, deal or child company id.")
    to_id: int = Field(description="company, contact or parent company id.")
    role: str | None = Field(description="Role of the contact on the deal.")
    linked: bool = Field(description="True: linked now; false: unlinked.")


class DealContactOut(Out):
    contact_id: int = Field(description="Contact id.")
    email: str = Field(description="E-mail.")
    first_name: str | None = Field(description="First name.")
    last_name: str | None = Field(description="Last name.")
    role: str | None = Field(description="Role on the deal.")


class CompanyLinks(Out):
    parent: CompanyRef | None = Field(description="Parent company.")
    children: list[CompanyRef] = Field(description="Live child companies.")


def _deal(session: Session, tenant: str, deal_id: int) -> object:
    from revops_sales.models.deals import SalesDeal

    return live(session, SalesDeal, deal_id, tenant=tenant, field="deal_id", what="deal", see="list_deals")


def _link(session: Session, tenant: str, kind: str, from_id: int, to_id: int) -> SalesAssociation | None:
    return session.exec(
        select(SalesAssociation).where(
            SalesAssociation.tenant == tenant,
            SalesAssociation.kind == kind,
            SalesAssociation.from_id == from_id,
            SalesAssociation.to_id == to_id,
        )
    ).first()


def _not_linked(field: str) -> ValidationFailed:
    return ValidationFailed("Those records are not linked.", field=field, hint="Nothing was changed.")


def contact_company(
    session: Session, tenant: str, action: str, contact_id: int, company_id: int
) -> AssociationOut:
    contact = get_contact(session, tenant, contact_id)
    get_company(session, tenant, company_id)
    if action == "add":
        contact.company_id = company_id
    elif contact.company_id != company_id:
        raise _not_linked("company_id")
    else:
        contact.company_id = None
    session.add(contact)
    session.flush()
    return AssociationOut(
        kind="contact_company", from_id=contact_id, to_id=company_id, role=None, linked=action == "add"
    )


def deal_contact(
    session: Session, tenant: str, action: str, deal_id: int, contact_id: int, role: str | None
) -> AssociationOut:
    _deal(session, tenant, deal_id)
    get_contact(session, tenant, contact_id)
    row = _link(session, tenant, "deal_contact", deal_id, contact_id)
    if action == "add":
        if role is None or role not in DEAL_ROLES:
            raise ValidationFailed(
                "A deal contact needs a role.", field="role", hint="One of " + ", ".join(DEAL_ROLES) + "."
            )
        row = row or SalesAssociation(tenant=tenant, kind="deal_contact", from_id=deal_id, to_id=contact_id)
        row.role = role
        session.add(row)
    elif row is None:
        raise _not_linked("contact_id")
    else:
        role = row.role
        session.delete(row)
    session.flush()
    return AssociationOut(
        kind="deal_contact", from_id=deal_id, to_id=contact_id, role=role, linked=action == "add"
    )


def _parent_of(session: Session, tenant: str, company_id: int) -> SalesAssociation | None:
    return session.exec(
        select(SalesAssociation).where(
            SalesAssociation.tenant == tenant,
            SalesAssociation.kind == "company_parent",
            SalesAssociation.from_id == company_id,
        )
    ).first()


def _ancestors(session: Session, tenant: str, company_id: int) -> list[int]:
    chain: list[int] = []
    current = _parent_of(session, tenant, company_id)
    while current is not None and len(chain) < MAX_DEPTH:
        chain.append(current.to_id)
        if current.to_id == company_id:
            break
        current = _parent_of(session, tenant, current.to_id)
    return chain


def company_parent(
    session: Session, tenant: str, action: str, company_id: int, parent_id: int
) -> AssociationOut:
    get_company(session, tenant, company_id)
    get_company(session, tenant, parent_id)
    row = _parent_of(session, tenant, company_id)
    if action == "add":
        if parent_id == company_id or company_id in _ancestors(session, tenant, parent_id):
            raise ValidationFailed(
                "A company cannot be its own parent or ancestor.",
                field="parent_company_id",
                hint="Pick a company that is not below this one.",
            )
        # One parent per company: adding another replaces it.
        row = row or SalesAssociation(
            tenant=tenant, kind="company_parent", from_id=company_id, to_id=parent_id
        )
        row.to_id = parent_id
        session.add(row)
    elif row is None or row.to_id != parent_id:
        raise _not_linked("parent_company_id")
    else:
        session.delete(row)
    session.flush()
    return AssociationOut(
        kind="company_parent", from_id=company_id, to_id=parent_id, role=None, linked=action == "add"
    )


def contacts_of_deal(session: Session, tenant: str, deal_id: int) -> list[DealContactOut]:
    """The live contacts of a deal with their role, by contact id (for deal reads)."""
    rows = session.exec(
        select(CoreContact, SalesAssociation.role)
        .join(SalesAssociation, col(SalesAssociation.to_id) == col(CoreContact.id))
        .where(
            SalesAssociation.tenant == tenant,
            SalesAssociation.kind == "deal_contact",
            SalesAssociation.from_id == deal_id,
            CoreContact.tenant == tenant,
            col(CoreContact.deleted_at).is_(None),
        )
        .order_by(col(CoreContact.id))
    ).all()
    return [
        DealContactOut(
            contact_id=c.id or 0, email=c.email, first_name=c.first_name, last_name=c.last_name, role=role
        )
        for c, role in rows
    ]


def company_links(session: Session, tenant: str, company_id: int) -> CompanyLinks:
    live_company = col(CoreCompany.deleted_at).is_(None)
    parent = session.exec(
        select(CoreCompany)
        .join(SalesAssociation, col(SalesAssociation.to_id) == col(CoreCompany.id))
        .where(
            SalesAssociation.tenant == tenant,
            SalesAssociation.kind == "company_parent",
            SalesAssociation.from_id == company_id,
            live_company,
        )
    ).first()
    children = session.exec(
        select(CoreCompany)
        .join(SalesAssociation, col(SalesAssociation.from_id) == col(CoreCompany.id))
        .where(
            SalesAssociation.tenant == tenant,
            SalesAssociation.kind == "company_parent",
            SalesAssociation.to_id == company_id,
            live_company,
        )
        .order_by(col(CoreCompany.id))
    ).all()
    return CompanyLinks(
        parent=CompanyRef.model_validate(parent) if parent else None,
        children=[CompanyRef.model_validate(c) for c in children],
    )


def _repoint(session: Session, tenant: str, kind: str, end: str, loser: int, survivor: int) -> int:
    """Move the `end` ("from_id" or "to_id") of `kind` links from loser to survivor, except where the
    survivor already has the same link (those of the loser are dropped). Returns links moved."""
    other = "to_id" if end == "from_id" else "from_id"
    table = SalesAssociation.__table__  # type: ignore[attr-defined]
    twin = aliased(SalesAssociation)
    same = exists().where(
        col(twin.tenant) == tenant,
        col(twin.kind) == kind,
        getattr(twin, end) == survivor,
        getattr(twin, other) == table.c[other],
    )
    connection = session.connection()
    base = (table.c.tenant == tenant, table.c.kind == kind, table.c[end] == loser)
    moved = connection.execute(update(table).where(*base, ~same).values({end: survivor})).rowcount
    connection.execute(delete(table).where(*base))
    return int(moved or 0)


def repoint_for_merge(session: Session, tenant: str, entity: str, *, loser: int, survivor: int) -> int:
    """Associations of a merged record moved to the survivor; returns how many moved."""
    table = SalesAssociation.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    if entity == "contact":
        return _repoint(session, tenant, "deal_contact", "to_id", loser, survivor)
    # Company: the loser's children become the survivor's; the survivor keeps its own parent and
    # takes the loser's only if it has none. A link between the two becomes a self-link: dropped.
    parent_links = (table.c.tenant == tenant, table.c.kind == "company_parent")
    self_links = delete(table).where(*parent_links, table.c.from_id == table.c.to_id)
    moved = _repoint(session, tenant, "company_parent", "to_id", loser, survivor)
    connection.execute(self_links)
    if _parent_of(session, tenant, survivor) is None:
        moved += _repoint(session, tenant, "company_parent", "from_id", loser, survivor)
    connection.execute(delete(table).where(*parent_links, table.c.from_id == loser))
    connection.execute(self_links)
    # A longer loop through the survivor (it was below the loser's parent) loses the survivor's parent.
    if survivor in _ancestors(session, tenant, survivor):
        own = _parent_of(session, tenant, survivor)
        if own is not None:
            session.delete(own)
            session.flush()
    return moved


def count_links(session: Session, tenant: str, entity: str, record_id: int) -> int:
    from sqlalchemy import func, or_

    kind, to_id, from_id = (
        col(SalesAssociation.kind),
        col(SalesAssociation.to_id),
        col(SalesAssociation.from_id),
    )
    where = (
        (kind == "deal_contact") & (to_id == record_id)
        if entity == "contact"
        else (kind == "company_parent") & or_(from_id == record_id, to_id == record_id)
    )
    return int(
        session.exec(
            select(func.count()).select_from(SalesAssociation).where(SalesAssociation.tenant == tenant, where)
        ).one()
    )
