"""Deals and every stage move they made (the history forecasts and waterfalls are computed from)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, text
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class SalesDeal(SQLModel, table=True):
    __tablename__ = "sales_deal"
    __table_args__ = (
        Index("ix_sales_deal_open", "tenant", "pipeline_id", "closed_at", "deleted_at"),
        # Live deals in id order with the list filters: a page of list_deals walks it and stops,
        # its total is counted from it alone. One per backend: SQLite's planner orders by id after
        # `deleted_at IS NULL` in the key (and picks it for the count); PostgreSQL's only when
        # that condition is the index's predicate instead.
        Index("ix_sales_deal_live", "tenant", "deleted_at", "id", "pipeline_id", "owner", "stage_id").ddl_if(
            dialect="sqlite"
        ),
        Index(
            "ix_sales_deal_live_pg",
            "tenant",
            "id",
            "pipeline_id",
            "owner",
            "stage_id",
            postgresql_where=text("deleted_at IS NULL"),
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    pipeline_id: int = Field(foreign_key="sales_pipeline.id")
    stage_id: int = Field(foreign_key="sales_stage.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="core_company.id", index=True)
    name: str = Field(max_length=200)
    owner: str | None = Field(default=None, max_length=200, index=True)
    amount_minor: int = Field(default=0, ge=0, sa_type=BigInteger)  # up to MAX_MINOR on every backend
    currency: str = Field(default="USD", max_length=3)
    close_date: date | None = Field(default=None, index=True)
    forecast_category: str = Field(default="pipeline", max_length=20, description="See analytics.forecast.")
    # Where the deal came from (lead source, e.g. "webinar") and the campaign credited with it:
    # what Marketing's attribution reads from won revenue. Null when nobody recorded it.
    source: str | None = Field(default=None, max_length=100)
    campaign: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)
    stage_entered_at: datetime = utc_field(default_now=True)
    closed_at: datetime | None = utc_field(nullable=True)
    deleted_at: datetime | None = utc_field(nullable=True)


class SalesStageMove(SQLModel, table=True):
    """One stage change of a deal (the first row is its creation: `from_stage_id` null)."""

    __tablename__ = "sales_stage_move"
    # Each deal's moves in order with what a stay is computed from: the window over won deals'
    # histories (median days in stage) reads it without a sort or a table lookup.
    __table_args__ = (Index("ix_sales_stage_move_deal_order", "deal_id", "id", "at", "to_stage_id"),)

    id: int | None = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="sales_deal.id", index=True)
    from_stage_id: int | None = Field(default=None, foreign_key="sales_stage.id")
    to_stage_id: int = Field(foreign_key="sales_stage.id")
    actor: str = Field(max_length=200)
    at: datetime = utc_field(default_now=True, index=True)


class SalesDealChange(SQLModel, table=True):
    """A change of a deal's amount or close date: what slipping, waterfalls and "what moved" read."""

    __tablename__ = "sales_deal_change"

    id: int | None = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="sales_deal.id", index=True)
    field: str = Field(max_length=30)
    old_value: str | None = Field(default=None, max_length=100)
    new_value: str | None = Field(default=None, max_length=100)
    actor: str = Field(max_length=200)
    at: datetime = utc_field(default_now=True, index=True)
