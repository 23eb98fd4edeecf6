"""Billing signals and escalations (retention reads both; more retention tables live here too)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
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


class CsEscalation(SQLModel, table=True):
    __tablename__ = "cs_escalation"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    ticket_id: int | None = Field(default=None, foreign_key="cs_ticket.id")
    severity: str = Field(max_length=10, description="urgent | high | normal | low")
    title: str = Field(max_length=300)
    status: str = Field(default="open", max_length=10, index=True)
    owner: str | None = Field(default=None, max_length=200)
    opened_at: datetime = utc_field(default_now=True)
    due_at: datetime = utc_field()
    resolved_at: datetime | None = utc_field(nullable=True)
    resolution: str | None = Field(default=None, max_length=2000)
