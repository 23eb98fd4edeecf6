"""Client records: each client field declared once, then create, read, update, archive and list.

The field aliases below (`Seats`, `ArrMinor`…) carry the one set of bounds and descriptions that
`ClientIn`, the tool parameters and the CSV import share; `ClientOut` is the one result shape.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import NotFound, ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.paging import Page, paginate
from revops_core.params import MAX_COUNT, Count, SingleLine, WholeNumber
from revops_core.records import ensure_unique
from revops_cs.models.clients import CsClient, CsStageChange, Stage, Tier
from revops_cs.output import Out
from revops_cs.services import lifecycle

# --------------------------------------------------------------------------- the client fields

Name = Annotated[str, Field(min_length=1, max_length=200, description="Client (company) name."), SingleLine]
TierField = Annotated[Tier, Field(description="Service tier.")]
StageField = Annotated[Stage, Field(description="Lifecycle stage.")]
Domain = Annotated[
    str, Field(max_length=253, description="Web domain (e.g. example.com); unique."), SingleLine
]
# ARR is stored in an INTEGER column today, so its bound is the column's (see the report on BIGINT).
ArrMinor = Annotated[int, Field(ge=0, le=MAX_COUNT, description="ARR in minor units (cents)."), WholeNumber]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 currency.")]
Owner = Annotated[str, Field(min_length=1, max_length=200, description="CSM responsible."), SingleLine]
Plan = Annotated[str, Field(min_length=1, max_length=100, description="Product plan."), SingleLine]
Seats = Annotated[int, Count("Seats in the contract.")]
ContractStart = Annotated[date, Field(description="Contract start (YYYY-MM-DD).")]
RenewalDate = Annotated[date, Field(description="Next renewal (YYYY-MM-DD); after contract_start.")]
Email = Annotated[str, Field(max_length=320, description="Primary contact email."), SingleLine]
PersonName = Annotated[str, Field(max_length=100, description="Primary contact name."), SingleLine]

UPDATABLE: tuple[str, ...] = (
    "name",
    "tier",
    "plan",
    "arr_minor",
    "owner",
    "seats_purchased",
    "contract_start",
    "renewal_date",
)
"""Fields update_client_info may change (the stage has its own rules: services.lifecycle)."""

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class ClientIn(BaseModel):
    """A new client, as register_client and import_clients_csv accept it."""

    name: Name
    tier: TierField
    domain: Domain | None = None
    arr_minor: ArrMinor = 0
    currency: CurrencyCode = "USD"
    owner: Owner | None = None
    plan: Plan | None = None
    seats_purchased: Seats | None = None
    contract_start: ContractStart | None = None
    renewal_date: RenewalDate | None = None
    stage: StageField = "onboarding"
    contact_email: Email | None = None
    contact_first_name: PersonName | None = None
    contact_last_name: PersonName | None = None

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


class ClientOut(Out):
    """A client as every tool returns it."""

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


class ClientRow(ClientOut):
    """A client in a list, with its latest stored health."""

    health_score: float | None = Field(description="Latest stored score; null if never scored.")
    health_band: str | None = Field(description="Its band; null if never scored.")


class Registered(Out):
    client_id: int = Field(description="New client id.")
    company_id: int = Field(description="Shared company id.")
    contact_id: int | None = Field(description="Primary contact id, if given.")


class ClientUpdated(ClientOut):
    changed: list[str] = Field(description="Fields that changed.")
    stage_change_id: int | None = Field(description="Stage history row, if the stage changed.")


class Archived(Out):
    client_id: int = Field(description="Client id.")
    action: str = Field(description="archive or restore.")
    archived: bool = Field(description="Whether the client is archived now.")


# --------------------------------------------------------------------------- read


def get_client(session: Session, client_id: int, *, include_deleted: bool = False) -> CsClient:
    """The client, or `not_found` naming the id. Soft-deleted clients are hidden unless asked for."""
    client = session.get(CsClient, client_id)
    if client is None or (client.deleted_at is not None and not include_deleted):
        raise NotFound(
            f"No client with id {client_id}.",
            field="client_id",
            hint="Find ids with list_clients; restore an archived client with archive_client action=restore.",
        )
    return client


def client_out(session: Session, client: CsClient) -> ClientOut:
    company = session.get(CoreCompany, client.company_id)
    return ClientOut.model_validate({**client.model_dump(), "domain": company.domain if company else None})


def live_clients(session: Session, tenant: str) -> list[CsClient]:
    """Every non-archived client of the tenant, by id."""
    return list(
        session.exec(
            select(CsClient)
            .where(CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None))
            .order_by(col(CsClient.id))
        )
    )


def live_ids(tenant: str) -> Any:
    """SQL: ids of the tenant's non-archived clients (`live_clients` as a subquery, never a list)."""
    return select(CsClient.id).where(CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None))


def portfolio(session: Session, tenant: str, client_id: int | None = None) -> list[CsClient]:
    """One client, or the portfolio: live clients that have not churned (a churned account has no
    health to manage and would only add noise: no usage reads as a 100 % drop, its ARR as ARR at risk)."""
    if client_id is not None:
        return [get_client(session, client_id)]
    return [c for c in live_clients(session, tenant) if c.stage != "churned"]


_ROW_COLUMNS: tuple[Any, ...] = tuple(
    col(getattr(CsClient, name)) for name in ClientOut.model_fields if name != "domain"
)


def page(
    session: Session,
    tenant: str,
    *,
    tier: str | None,
    stage: str | None,
    health_band: str | None,
    arr_min_minor: int | None,
    arr_max_minor: int | None,
    owner: str | None,
    archived: bool,
    limit: int,
    cursor: str | None,
) -> Page[ClientRow]:
    """Clients by id, filtered, counted and paged in SQL (keyset: archiving between pages skips no one)."""
    if arr_min_minor is not None and arr_max_minor is not None and arr_max_minor < arr_min_minor:
        raise ValidationFailed(
            "arr_max_minor is below arr_min_minor.",
            field="arr_max_minor",
            hint="Give a maximum at or above the minimum.",
        )
    # The latest snapshot's score and band sit on the client row (a trigger keeps them), and the
    # domain is a scalar subquery evaluated for the page's rows only: filtering, counting and
    # paging read the client rows alone, through (tenant, health_band, id) when filtering by band.
    band = col(CsClient.health_band)
    domain = sql_select(col(CoreCompany.domain)).where(col(CoreCompany.id) == col(CsClient.company_id))
    query = (
        sql_select(
            *_ROW_COLUMNS,
            domain.scalar_subquery().label("domain"),
            col(CsClient.health_score).label("health_score"),
            band.label("health_band"),
        )
        .where(col(CsClient.tenant) == tenant)
        .where(col(CsClient.deleted_at).is_not(None) if archived else col(CsClient.deleted_at).is_(None))
    )
    for column, value in (
        (col(CsClient.tier), tier),
        (col(CsClient.stage), stage),
        (col(CsClient.owner), owner),
        (band, health_band),
    ):
        if value is not None:
            query = query.where(column == value)
    if arr_min_minor is not None:
        query = query.where(col(CsClient.arr_minor) >= arr_min_minor)
    if arr_max_minor is not None:
        query = query.where(col(CsClient.arr_minor) <= arr_max_minor)
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CsClient.id)],
        scope="clients:archived" if archived else "clients",
        item=ClientRow.model_validate,
    )


# --------------------------------------------------------------------------- write


def check_unique(session: Session, tenant: str, data: ClientIn) -> None:
    """Conflict when the domain or the contact email is already on record in this tenant."""
    if data.domain:
        ensure_unique(
            session,
            col(CoreCompany.domain),
            data.domain,
            tenant_column=col(CoreCompany.tenant),
            tenant=tenant,
            field="domain",
            what="Company",
            hint="Use list_clients to find the existing client, or register with another domain.",
        )
    if data.contact_email:
        ensure_unique(
            session,
            col(CoreContact.email),
            data.contact_email,
            tenant_column=col(CoreContact.tenant),
            tenant=tenant,
            field="contact_email",
            what="Contact",
            noun="e-mail",
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
    now = utcnow()
    client = CsClient(
        tenant=tenant,
        company_id=company.id or 0,
        **data.model_dump(include={"name", "tier", "stage", *UPDATABLE}),
        currency=data.currency,
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


def register(session: Session, data: ClientIn, *, tenant: str, actor: str) -> Registered:
    client, contact_id = create_client(session, data, tenant=tenant, actor=actor)
    return Registered(client_id=client.id or 0, company_id=client.company_id, contact_id=contact_id)


def merged_external_ids(client: CsClient, links: dict[str, str]) -> str:
    """The client's vendor-id map (JSON text) with `links` merged in; how syncs match vendor records."""
    try:
        current = json.loads(client.external_ids or "{}")
    except ValueError:
        current = {}
    if not isinstance(current, dict):
        current = {}
    return json.dumps({**current, **links}, sort_keys=True)


def update(
    session: Session,
    client: CsClient,
    values: dict[str, Any],
    *,
    stage: str | None,
    reason: str | None,
    actor: str,
) -> ClientUpdated:
    """Apply the given fields (None = keep); a stage change follows the lifecycle rules and is recorded."""
    changes = {k: v for k, v in values.items() if v is not None and getattr(client, k) != v}
    if not changes and (stage is None or stage == client.stage):
        raise ValidationFailed(
            "Nothing to update: no field differs from the stored value.",
            field="client_id",
            hint="Pass at least one field with a new value.",
        )
    start = changes.get("contract_start", client.contract_start)
    end = changes.get("renewal_date", client.renewal_date)
    if start and end and end <= start:
        raise ValidationFailed(
            "renewal_date must be after contract_start.",
            field="renewal_date",
            hint="Give a renewal date after the contract start.",
        )
    change_id = None
    if stage is not None and stage != client.stage:
        change_id = lifecycle.transition(session, client, stage, actor=actor, reason=reason).id
        changes["stage"] = stage
    for key, value in changes.items():
        setattr(client, key, value)
    if "name" in changes:
        company = session.get(CoreCompany, client.company_id)
        if company is not None:
            company.name = client.name
            session.add(company)
    client.updated_at = utcnow()
    session.add(client)
    session.flush()
    out = client_out(session, client)
    return ClientUpdated.model_validate(
        {**out.model_dump(), "changed": sorted(changes), "stage_change_id": change_id}
    )


def set_archived(session: Session, client: CsClient, *, archived: bool) -> Archived:
    """Archive (soft-delete) or restore a client; its history is kept either way."""
    now = utcnow()
    client.deleted_at = now if archived else None
    client.updated_at = now
    session.add(client)
    session.flush()
    return Archived(client_id=client.id or 0, action="archive" if archived else "restore", archived=archived)
