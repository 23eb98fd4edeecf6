"""Clients (the accounts a CS team looks after) and their lifecycle stage history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, get_args

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

Stage = Literal["onboarding", "adoption", "mature", "renewal", "churned"]
STAGES: tuple[str, ...] = get_args(Stage)
Tier = Literal["enterprise", "mid_market", "smb"]
TIERS: tuple[str, ...] = get_args(Tier)


class CsClient(SQLModel, table=True):
    """One customer account. `company_id` links it to the suite's shared company record."""

    __tablename__ = "cs_client"
    __table_args__ = (
        Index("ix_cs_client_tenant_live", "tenant", "deleted_at"),
        Index("ix_cs_client_tenant_band", "tenant", "health_band", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    company_id: int = Field(foreign_key="core_company.id", index=True)
    name: str = Field(max_length=200, index=True)
    tier: str = Field(max_length=20, index=True)
    stage: str = Field(default="onboarding", max_length=20, index=True)
    plan: str | None = Field(default=None, max_length=100)
    arr_minor: int = Field(default=0, ge=0, description="Annual recurring revenue in minor units.")
    currency: str = Field(default="USD", max_length=3)
    owner: str | None = Field(default=None, max_length=200, index=True, description="CSM responsible.")
    seats_purchased: int | None = Field(default=None, ge=0)
    contract_start: date | None = None
    renewal_date: date | None = Field(default=None, index=True)
    external_ids: str = Field(default="{}", max_length=2000, description="JSON map vendor → id.")
    notes: str | None = Field(default=None, max_length=4000)
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)
    stage_changed_at: datetime = utc_field(default_now=True)
    churned_at: datetime | None = utc_field(nullable=True)
    deleted_at: datetime | None = utc_field(nullable=True)
    # The latest stored health snapshot (greatest as_of, then id), kept by a database trigger on
    # every insert into cs_health_snapshot (CS migration 4), so listing and filtering by band read
    # the client row alone at any history depth. Never written by code.
    health_snapshot_id: int | None = Field(default=None)
    health_as_of: date | None = Field(default=None)
    health_score: float | None = Field(default=None)
    health_band: str | None = Field(default=None, max_length=20)


class CsStageChange(SQLModel, table=True):
    """Every lifecycle transition, for the timeline, stage durations and churn post-mortems."""

    __tablename__ = "cs_stage_change"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    from_stage: str | None = Field(default=None, max_length=20)
    to_stage: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    actor: str = Field(max_length=200)
    at: datetime = utc_field(default_now=True, index=True)
