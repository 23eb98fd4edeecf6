"""The work on a deal: line items, tasks (next steps), notes, competitors and met exit criteria."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, get_args

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

CompetitorStatus = Literal["active", "won_against", "lost_to"]
COMPETITOR_STATUSES: tuple[str, ...] = get_args(CompetitorStatus)


class SalesLineItem(SQLModel, table=True):
    """A product on a deal. While a deal has any, its amount is the sum of their totals."""

    __tablename__ = "sales_line_item"

    id: int | None = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="sales_deal.id", index=True)
    product: str = Field(max_length=200)
    quantity: int = Field(ge=1)
    unit_price_minor: int = Field(ge=0, sa_type=BigInteger)
    currency: str = Field(max_length=3)
    discount_bp: int = Field(default=0, ge=0, le=10_000, description="Discount, basis points.")
    total_minor: int = Field(ge=0, sa_type=BigInteger, description="quantity × price − discount.")
    created_at: datetime = utc_field(default_now=True)


class SalesTask(SQLModel, table=True):
    """A task on a deal; the open one due soonest is the deal's next step."""

    __tablename__ = "sales_task"
    __table_args__ = (Index("ix_sales_task_owner_open", "tenant", "owner", "done_at"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    deal_id: int = Field(foreign_key="sales_deal.id", index=True)
    title: str = Field(max_length=300)
    due_date: date | None = Field(default=None)
    owner: str | None = Field(default=None, max_length=200)
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)
    done_at: datetime | None = utc_field(nullable=True)
    done_by: str | None = Field(default=None, max_length=200)


class SalesNote(SQLModel, table=True):
    """A note on a deal, a contact or a company (exactly one of them)."""

    __tablename__ = "sales_note"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    deal_id: int | None = Field(default=None, foreign_key="sales_deal.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="core_company.id", index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    author: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)


class SalesCompetitor(SQLModel, table=True):
    """A competitor on a deal and where we stand against it."""

    __tablename__ = "sales_competitor"
    __table_args__ = (UniqueConstraint("deal_id", "name", name="uq_sales_competitor_name"),)

    id: int | None = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="sales_deal.id", index=True)
    name: str = Field(max_length=200)
    status: str = Field(default="active", max_length=20, description="One of COMPETITOR_STATUSES.")
    notes: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = utc_field(default_now=True)


class SalesCriterionMet(SQLModel, table=True):
    """A deal met one exit criterion (or a person overrode it, with the reason)."""

    __tablename__ = "sales_criterion_met"
    __table_args__ = (UniqueConstraint("deal_id", "criterion_id", name="uq_sales_criterion_met"),)

    id: int | None = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="sales_deal.id", index=True)
    criterion_id: int = Field(foreign_key="sales_stage_criterion.id")
    actor: str = Field(max_length=200)
    at: datetime = utc_field(default_now=True)
    override_reason: str | None = Field(default=None, max_length=500)
