"""Client records: validated input, creation (company + client + contact), and the public profile."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, NotFound
from revops_core.models import CoreCompany, CoreContact
from revops_cs.models.clients import CsClient, CsStageChange, Stage, Tier
from revops_cs.output import Out

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class ClientIn(BaseModel):
    """A new client, as register_client and import_clients_csv accept it."""

    name: str = Field(min_length=1, max_length=200)
    tier: Tier
    domain: str | None = Field(default=None, max_length=253)
    arr_minor: int = Field(default=0, ge=0, le=10**13)
    currency: str = Field(default="USD", pattern=r"^[A-Za-z]{3}$")
    owner: str | None = Field(default=None, max_length=200)
    plan: str | None = Field(default=None, max_length=100)
    seats_purchased: int | None = Field(default=None, ge=0, le=1_000_000)
    contract_start: date | None = None
    renewal_date: date | None = None
    stage: Stage = "onboarding"
    contact_email: str | None = Field(default=None, max_length=320)
    contact_first_name: str | None = Field(default=None, max_length=100)
    contact_last_name: str | None = Field(default=None, max_length=100)

    @field_validator("name", "owner", "plan", "contact_first_name", "contact_last_name", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("domain", mode="before")
    @classmethod
    def _domain(cls, value: object) -> object:
        if isinstance(value, str):
            value = (
                value.strip().lower().removeprefix("https://").removeprefix("http://").removeprefix("www.")
            )
            value = value.rstrip("/")
            if not value:
                return None
            if not _DOMAIN.match(value):
                raise ValueError("not a domain name like example.com")
        return value

    @field_validator("contact_email", mode="before")
    @classmethod
    def _email(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if not value:
                return None
            if not _EMAIL.match(value):
                raise ValueError("not an email address")
        return value

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _dates(self) -> ClientIn:
        if self.contract_start and self.renewal_date and self.renewal_date <= self.contract_start:
            raise ValueError("renewal_date must be after contract_start")
        return self


class ClientProfile(Out):
    id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    domain: str | None = Field(description="Company web domain.")
    tier: str = Field(description="enterprise, mid_market or smb.")
    stage: str = Field(description="Lifecycle stage.")
    plan: str | None = Field(description="Product plan.")
    arr_minor: int = Field(description="ARR, minor units.")
    currency: str = Field(description="ISO 4217.")
    owner: str | None = Field(description="CSM responsible.")
    seats_purchased: int | None = Field(description="Seats in the contract.")
    contract_start: date | None = Field(description="Contract start date.")
    renewal_date: date | None = Field(description="Next renewal date.")


def profile(session: Session, client: CsClient) -> ClientProfile:
    company = session.get(CoreCompany, client.company_id)
    return ClientProfile(
        id=client.id or 0,
        name=client.name,
        domain=company.domain if company else None,
        tier=client.tier,
        stage=client.stage,
        plan=client.plan,
        arr_minor=client.arr_minor,
        currency=client.currency,
        owner=client.owner,
        seats_purchased=client.seats_purchased,
        contract_start=client.contract_start,
        renewal_date=client.renewal_date,
    )


def check_unique(session: Session, tenant: str, data: ClientIn) -> None:
    """Conflict when the domain or the contact email is already on record in this tenant."""
    if data.domain:
        taken = session.exec(
            select(CoreCompany.id).where(CoreCompany.tenant == tenant, CoreCompany.domain == data.domain)
        ).first()
        if taken is not None:
            raise Conflict(
                f"A company with domain {data.domain} already exists (company id {taken}).",
                field="domain",
                hint="Use list_clients to find the existing client, or register with another domain.",
            )
    if data.contact_email:
        taken = session.exec(
            select(CoreContact.id).where(
                CoreContact.tenant == tenant, CoreContact.email == data.contact_email
            )
        ).first()
        if taken is not None:
            raise Conflict(
                f"A contact with email {data.contact_email} already exists.",
                field="contact_email",
                hint="Omit the contact or use another email.",
            )


def create_client(
    session: Session, data: ClientIn, *, tenant: str, actor: str
) -> tuple[CsClient, int | None]:
    """Insert company, client, first stage-history row and optional primary contact. No commit."""
    check_unique(session, tenant, data)
    company = CoreCompany(tenant=tenant, name=data.name, domain=data.domain)
    session.add(company)
    session.flush()
    now = datetime.now(UTC)
    client = CsClient(
        tenant=tenant,
        company_id=company.id or 0,
        name=data.name,
        tier=data.tier,
        stage=data.stage,
        plan=data.plan,
        arr_minor=data.arr_minor,
        currency=data.currency,
        owner=data.owner,
        seats_purchased=data.seats_purchased,
        contract_start=data.contract_start,
        renewal_date=data.renewal_date,
        stage_changed_at=now,
        churned_at=now if data.stage == "churned" else None,
    )
    session.add(client)
    session.flush()
    session.add(
        CsStageChange(
            client_id=client.id or 0,
            from_stage=None,
            to_stage=data.stage,
            reason="registered",
            actor=actor,
            at=now,
        )
    )
    contact_id: int | None = None
    if data.contact_email:
        contact = CoreContact(
            tenant=tenant,
            company_id=company.id,
            email=data.contact_email,
            first_name=data.contact_first_name,
            last_name=data.contact_last_name,
            is_primary=True,
        )
        session.add(contact)
        session.flush()
        contact_id = contact.id
    return client, contact_id


def live_clients(session: Session, tenant: str) -> list[CsClient]:
    """Every non-archived client of the tenant, by id."""
    return list(
        session.exec(
            select(CsClient)
            .where(CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None))
            .order_by(col(CsClient.id))
        )
    )


def get_client(session: Session, client_id: int, *, include_deleted: bool = False) -> CsClient:
    """The client, or `not_found` naming the id. Soft-deleted clients are hidden unless asked for."""
    client = session.get(CsClient, client_id)
    if client is None or (client.deleted_at is not None and not include_deleted):
        raise NotFound(
            f"No client with id {client_id}.",
            field="client_id",
            hint="Find valid ids with list_clients; archived clients can be restored with restore_client.",
        )
    return client
