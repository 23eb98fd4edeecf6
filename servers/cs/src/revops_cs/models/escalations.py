"""Escalations: a client problem with a severity and an SLA resolution deadline."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


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
