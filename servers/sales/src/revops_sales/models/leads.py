"""Leads and what prospecting keeps about them: engagement events, the ideal customer profile,
qualification scorecards and the routing rules, rep pool and round-robin cursor.

Fit and intent are stored on the lead so ranking and search are one indexed query; they are
recomputed set-based by `services.lead_scoring.recompute` (never per row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

LeadStatus = Literal["new", "working", "qualified", "disqualified", "converted"]
LEAD_STATUSES: tuple[str, ...] = get_args(LeadStatus)


class SalesLead(SQLModel, table=True):
    __tablename__ = "sales_lead"
    __table_args__ = (
        Index("ix_sales_lead_status", "tenant", "status", "deleted_at"),
        Index("ix_sales_lead_owner", "tenant", "owner", "status"),
        Index("ix_sales_lead_email", "tenant", "email"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    company_name: str | None = Field(default=None, max_length=200)
    company_domain: str | None = Field(default=None, max_length=253)
    title: str | None = Field(default=None, max_length=150)
    # Firmographics the ideal customer profile and territory routing match on; null = not known.
    industry: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2.")
    region: str | None = Field(default=None, max_length=100)
    employees: int | None = Field(default=None, ge=0)
    source: str | None = Field(default=None, max_length=100)
    campaign: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    status: str = Field(default="new", max_length=20, description="One of LEAD_STATUSES.")
    # 0–100 each; null until scored (fit also null when no ICP criterion could be evaluated).
    fit_score: float | None = Field(default=None)
    intent_score: float | None = Field(default=None)
    score_detail: str = Field(
        default="{}",
        sa_column=Column(Text, nullable=False),
        description="JSON: fit criteria matched/unmatched/unknown and intent points by kind.",
    )
    scored_at: datetime | None = utc_field(nullable=True)
    converted_contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    converted_company_id: int | None = Field(default=None, foreign_key="core_company.id")
    converted_deal_id: int | None = Field(default=None, foreign_key="sales_deal.id")
    converted_at: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)
    deleted_at: datetime | None = utc_field(nullable=True)


class SalesLeadEvent(SQLModel, table=True):
    """One engagement of a lead (page view, e-mail click, demo request…) with the points it earns."""

    __tablename__ = "sales_lead_event"
    __table_args__ = (Index("ix_sales_lead_event_lead_at", "lead_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    lead_id: int = Field(foreign_key="sales_lead.id")
    kind: str = Field(max_length=50)
    points: float = Field(ge=0)
    occurred_at: datetime = utc_field()
    created_at: datetime = utc_field(default_now=True)


class SalesIcp(SQLModel, table=True):
    """The tenant's ideal customer profile (one per tenant) and the intent-scoring settings."""

    __tablename__ = "sales_icp"
    __table_args__ = (UniqueConstraint("tenant", name="uq_sales_icp_tenant"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    criteria: str = Field(
        sa_column=Column(Text, nullable=False), description="JSON list of {field, op, value, weight}."
    )
    intent_settings: str = Field(
        default="{}",
        sa_column=Column(Text, nullable=False),
        description="JSON {half_life_days, window_days, daily_caps: {kind: points}}.",
    )
    updated_at: datetime = utc_field(default_now=True)


class SalesScorecard(SQLModel, table=True):
    """A qualification checklist of one deal or lead under one framework (BANT, MEDDIC…)."""

    __tablename__ = "sales_scorecard"
    __table_args__ = (
        UniqueConstraint("tenant", "deal_id", "framework", name="uq_sales_scorecard_deal"),
        UniqueConstraint("tenant", "lead_id", "framework", name="uq_sales_scorecard_lead"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    deal_id: int | None = Field(default=None, foreign_key="sales_deal.id")
    lead_id: int | None = Field(default=None, foreign_key="sales_lead.id")
    framework: str = Field(max_length=20)
    elements: str = Field(
        sa_column=Column(Text, nullable=False), description="JSON {element: {value, evidence}}."
    )
    updated_by: str = Field(max_length=200)
    updated_at: datetime = utc_field(default_now=True)


class SalesPipelineFramework(SQLModel, table=True):
    """The qualification framework a pipeline's deals are scored with."""

    __tablename__ = "sales_pipeline_framework"
    __table_args__ = (UniqueConstraint("tenant", "pipeline_id", name="uq_sales_pipeline_framework"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    pipeline_id: int = Field(foreign_key="sales_pipeline.id")
    framework: str = Field(max_length=20)
    updated_at: datetime = utc_field(default_now=True)


class SalesRoutingRep(SQLModel, table=True):
    """A rep in the routing pool, in round-robin order, with a cap on open leads (null = no cap)."""

    __tablename__ = "sales_routing_rep"
    __table_args__ = (UniqueConstraint("tenant", "rep", name="uq_sales_routing_rep"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    rep: str = Field(max_length=200)
    position: int = Field(ge=0)
    max_open_leads: int | None = Field(default=None, ge=0)


class SalesRoutingRule(SQLModel, table=True):
    """A territory: leads matching every non-null condition go round robin over its reps."""

    __tablename__ = "sales_routing_rule"
    __table_args__ = (UniqueConstraint("tenant", "position", name="uq_sales_routing_rule_position"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    name: str = Field(max_length=100)
    position: int = Field(ge=0, description="Rules are tried in this order; first match wins.")
    countries: str = Field(default="[]", sa_column=Column(Text, nullable=False), description="JSON list.")
    regions: str = Field(default="[]", sa_column=Column(Text, nullable=False), description="JSON list.")
    industries: str = Field(default="[]", sa_column=Column(Text, nullable=False), description="JSON list.")
    reps: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of reps, in order.")


class SalesRoutingCursor(SQLModel, table=True):
    """The round-robin position of one pool (a territory rule, or the whole pool when `pool` is '*').

    Advanced with one conditional UPDATE per route so two concurrent routes never take one slot.
    """

    __tablename__ = "sales_routing_cursor"
    __table_args__ = (UniqueConstraint("tenant", "pool", name="uq_sales_routing_cursor"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    pool: str = Field(max_length=100)
    next_slot: int = Field(default=0, ge=0)


class SalesLeadRouting(SQLModel, table=True):
    """One routing decision: who got the lead, by which rule and why."""

    __tablename__ = "sales_lead_routing"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    lead_id: int = Field(foreign_key="sales_lead.id", index=True)
    rep: str = Field(max_length=200)
    method: str = Field(max_length=20, description="territory or round_robin.")
    rule_id: int | None = Field(default=None, foreign_key="sales_routing_rule.id")
    slot: int = Field(ge=0)
    explanation: str = Field(sa_column=Column(Text, nullable=False))
    routed_at: datetime = utc_field(default_now=True)


class SalesEnrichment(SQLModel, table=True):
    """The last answer Apollo gave for one person (by e-mail) or organisation (by domain).

    Kept so a repeat enrichment spends no credits and, when Apollo is down, the last answer is
    still served, marked stale with its `as_of`.
    """

    __tablename__ = "sales_enrichment"
    __table_args__ = (UniqueConstraint("tenant", "kind", "lookup", name="uq_sales_enrichment"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    kind: str = Field(max_length=20, description="person or organization.")
    lookup: str = Field(max_length=320, description="Lower-case e-mail or domain.")
    payload: str = Field(sa_column=Column(Text, nullable=False), description="JSON: the vendor record.")
    as_of: datetime = utc_field()
