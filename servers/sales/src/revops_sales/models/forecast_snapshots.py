"""Forecast snapshots: the forecast of a period as it stood when taken, one row per deal in it.

Comparing two snapshots of the same period says what moved between them (new, removed, won,
amount, stage, category, close date) — history the live deal rows alone no longer show.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class SalesForecastSnapshot(SQLModel, table=True):
    __tablename__ = "sales_forecast_snapshot"
    __table_args__ = (Index("ix_sales_forecast_snapshot_scope", "tenant", "start", "end", "taken_at"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    start: date
    end: date
    currency: str = Field(max_length=3)
    pipeline_id: int | None = Field(default=None, foreign_key="sales_pipeline.id")
    owner: str | None = Field(default=None, max_length=200, description="Null: the whole team.")
    won_minor: int = Field(default=0, sa_type=BigInteger, description="Closed won in the period so far.")
    open_minor: int = Field(default=0, sa_type=BigInteger, description="Open, not omitted, unweighted.")
    weighted_minor: float = Field(default=0.0, description="Σ amount × probability over those.")
    deals: int = Field(default=0, description="Rows in sales_forecast_snapshot_deal.")
    taken_by: str = Field(max_length=200)
    taken_at: datetime = utc_field(default_now=True)


class SalesForecastSnapshotDeal(SQLModel, table=True):
    """A deal as it stood in a snapshot: open with a close date in the period, or won in it."""

    __tablename__ = "sales_forecast_snapshot_deal"

    id: int | None = Field(default=None, primary_key=True)
    snapshot_id: int = Field(foreign_key="sales_forecast_snapshot.id", index=True)
    deal_id: int = Field(foreign_key="sales_deal.id", index=True)
    name: str = Field(max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    amount_minor: int = Field(sa_type=BigInteger)
    stage_id: int = Field(foreign_key="sales_stage.id")
    stage: str = Field(max_length=100)
    category: str = Field(max_length=20, description="Forecast category; `closed` for won deals.")
    close_date: date | None = Field(default=None)
    probability: float = Field(description="p the forecast used (1 for won).")
