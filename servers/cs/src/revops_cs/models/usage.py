"""Product usage events (the only source of "usage"), the feature catalogue, adoption milestones and
saved segment rules. Health snapshots live in `models.health`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class CsUsageEvent(SQLModel, table=True):
    """One thing a user of a client did in the product. `event='login'` marks an active session."""

    __tablename__ = "cs_usage_event"
    __table_args__ = (
        Index("ix_cs_usage_client_time", "client_id", "occurred_at"),
        # Covering indexes of the health score's set-based reads (services.health_facts): logins
        # (last login, active users in the window) and features used, without touching the table.
        Index("ix_cs_usage_client_login", "client_id", "event", "occurred_at", "user_ref"),
        Index("ix_cs_usage_client_feature", "client_id", "feature", "occurred_at"),
        UniqueConstraint("source", "external_id", name="uq_cs_usage_source_external"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id")
    user_ref: str = Field(max_length=200, description="The client's end user (email or product user id).")
    event: str = Field(max_length=100, index=True)
    feature: str | None = Field(default=None, max_length=100, index=True)
    quantity: float = Field(default=1.0)
    occurred_at: datetime = utc_field()
    source: str = Field(default="api", max_length=30)
    external_id: str | None = Field(default=None, max_length=200, description="Vendor event id, for dedupe.")


class CsFeature(SQLModel, table=True):
    """The feature catalogue: what adoption is measured against. `tiers` empty = every tier is eligible."""

    __tablename__ = "cs_feature"
    __table_args__ = (UniqueConstraint("tenant", "key", name="uq_cs_feature_key"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    key: str = Field(max_length=100, description="Matches CsUsageEvent.feature.")
    name: str = Field(max_length=200)
    tiers: str = Field(default="[]", max_length=200, description="JSON list of eligible tiers; [] = all.")
    created_at: datetime = utc_field(default_now=True)


class CsMilestoneDef(SQLModel, table=True):
    """An adoption milestone: `kind` first_login | active_users | features_used | event_count ≥ threshold."""

    __tablename__ = "cs_milestone_def"
    __table_args__ = (UniqueConstraint("tenant", "key", name="uq_cs_milestone_key"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    key: str = Field(max_length=100)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    threshold: int = Field(default=1, ge=1)
    event: str | None = Field(default=None, max_length=100, description="Event name for kind=event_count.")
    created_at: datetime = utc_field(default_now=True)


class CsSegmentRule(SQLModel, table=True):
    """A saved custom segment: a conjunction of field/op/value conditions (JSON)."""

    __tablename__ = "cs_segment_rule"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_cs_segment_rule_name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    name: str = Field(max_length=100)
    conditions: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of conditions.")
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)
