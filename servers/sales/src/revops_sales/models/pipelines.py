"""Pipelines and their ordered stages, each with a win probability and a kind (open/won/lost)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

StageKind = Literal["open", "won", "lost"]
STAGE_KINDS: tuple[str, ...] = get_args(StageKind)


class SalesPipeline(SQLModel, table=True):
    __tablename__ = "sales_pipeline"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_sales_pipeline_name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    name: str = Field(max_length=100)
    created_at: datetime = utc_field(default_now=True)


class SalesStage(SQLModel, table=True):
    __tablename__ = "sales_stage"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "name", name="uq_sales_stage_name"),
        UniqueConstraint("pipeline_id", "position", name="uq_sales_stage_position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pipeline_id: int = Field(foreign_key="sales_pipeline.id", index=True)
    name: str = Field(max_length=100)
    position: int = Field(ge=0)
    probability_pct: int = Field(ge=0, le=100, description="Configured win probability, percent.")
    kind: str = Field(default="open", max_length=10)


class SalesStageCriterion(SQLModel, table=True):
    """One exit criterion of a stage (a checklist line): a deal leaves the stage forward only once it
    is met for that deal. A replaced criterion is retired, not deleted, so a deal's record of having
    met it stays readable."""

    __tablename__ = "sales_stage_criterion"

    id: int | None = Field(default=None, primary_key=True)
    stage_id: int = Field(foreign_key="sales_stage.id", index=True)
    position: int = Field(ge=0)
    text: str = Field(max_length=300)
    retired_at: datetime | None = utc_field(nullable=True)


class SalesStageDefault(SQLModel, table=True):
    """Per-stage defaults set in the configuration toolset: the forecast category a deal takes when it
    enters the stage (none: the deal keeps its own)."""

    __tablename__ = "sales_stage_default"

    stage_id: int = Field(foreign_key="sales_stage.id", primary_key=True)
    forecast_category: str | None = Field(default=None, max_length=20)
    updated_at: datetime = utc_field(default_now=True)
