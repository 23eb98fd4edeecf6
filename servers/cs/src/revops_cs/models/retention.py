"""Retention tables: billing signals, thresholds, the churn model and its data, campaigns."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class CsBillingEvent(SQLModel, table=True):
    """A payment outcome: `payment_failed` feeds the churn rules."""

    __tablename__ = "cs_billing_event"
    __table_args__ = (Index("ix_cs_billing_client_time", "client_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id")
    kind: str = Field(max_length=30, description="payment_failed | payment_succeeded | refund")
    amount_minor: int = 0
    currency: str = Field(default="USD", max_length=3)
    occurred_at: datetime = utc_field()


class CsThresholdConfig(SQLModel, table=True):
    """Overrides of one config section (churn_rules, expansion, renewal, revenue, onboarding, sla)."""

    __tablename__ = "cs_threshold_config"

    section: str = Field(primary_key=True, max_length=40)
    values: str = Field(sa_column=Column(Text, nullable=False), description="JSON of overridden keys.")
    updated_by: str = Field(max_length=200)
    updated_at: datetime = utc_field(default_now=True)


class CsChurnTrainingRow(SQLModel, table=True):
    """One imported historical account with its outcome (see docs: churn training CSV format)."""

    __tablename__ = "cs_churn_training_row"
    __table_args__ = (UniqueConstraint("dataset", "row_ref", name="uq_cs_churn_row_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset: str = Field(max_length=100, index=True)
    row_ref: str = Field(max_length=200)
    churned: bool
    features: str = Field(sa_column=Column(Text, nullable=False), description="JSON column → value.")
    imported_at: datetime = utc_field(default_now=True)


class CsChurnModel(SQLModel, table=True):
    """A trained logistic-regression churn model with its cross-validated metrics."""

    __tablename__ = "cs_churn_model"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=20, description="history (stored client rows) | dataset (imported CSV)")
    dataset: str | None = Field(default=None, max_length=100)
    observed_until: date | None = None
    horizon_days: int | None = None
    l2: float
    folds: int
    positives: int
    negatives: int
    auc: float
    top_decile_lift: float
    brier: float
    features: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of input columns.")
    params: str = Field(
        sa_column=Column(Text, nullable=False),
        description="JSON: encoding, means, stds, coefficients, intercept.",
    )
    trained_by: str = Field(max_length=200)
    trained_at: datetime = utc_field(default_now=True)


class CsRetentionCampaign(SQLModel, table=True):
    __tablename__ = "cs_retention_campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    filter: str = Field(sa_column=Column(Text, nullable=False), description="JSON of the target filter.")
    message_subject: str | None = Field(default=None, max_length=300)
    message_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)


class CsRetentionTask(SQLModel, table=True):
    __tablename__ = "cs_retention_task"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(default=None, foreign_key="cs_retention_campaign.id", index=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    title: str = Field(max_length=300)
    owner: str | None = Field(default=None, max_length=200)
    due_date: date
    status: str = Field(default="open", max_length=10)
    created_at: datetime = utc_field(default_now=True)


class CsCampaignMessage(SQLModel, table=True):
    """A campaign message recorded as QUEUED: nothing here has been sent by email."""

    __tablename__ = "cs_campaign_message"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="cs_retention_campaign.id", index=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    to_email: str | None = Field(default=None, max_length=320)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="queued", max_length=10)
    created_at: datetime = utc_field(default_now=True)
