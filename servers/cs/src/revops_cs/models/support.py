"""Support tickets and their comments (local store; mirrored to Zendesk when configured)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

Priority = Literal["urgent", "high", "normal", "low"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
TicketStatus = Literal["new", "open", "pending", "hold", "solved", "closed"]
TICKET_STATUSES: tuple[str, ...] = get_args(TicketStatus)
OPEN_STATUSES: tuple[str, ...] = ("new", "open", "pending", "hold")


class CsTicket(SQLModel, table=True):
    __tablename__ = "cs_ticket"
    __table_args__ = (
        Index("ix_cs_ticket_client_created", "client_id", "created_at"),
        UniqueConstraint("external_source", "external_id", name="uq_cs_ticket_external"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id")
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    subject: str = Field(max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    priority: str = Field(default="normal", max_length=10, index=True)
    status: str = Field(default="new", max_length=10, index=True)
    channel: str = Field(default="api", max_length=20)
    assignee: str | None = Field(default=None, max_length=200, index=True)
    escalated: bool = False
    csat: int | None = Field(default=None, ge=1, le=5)
    tags: str = Field(default="[]", max_length=2000, description="JSON list of tags.")
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)
    first_response_at: datetime | None = utc_field(nullable=True)
    solved_at: datetime | None = utc_field(nullable=True)
    external_source: str | None = Field(default=None, max_length=20)
    external_id: str | None = Field(default=None, max_length=100)


class CsTicketComment(SQLModel, table=True):
    __tablename__ = "cs_ticket_comment"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="cs_ticket.id", index=True)
    author: str = Field(max_length=200)
    is_agent: bool = False
    public: bool = True
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = utc_field(default_now=True)
    external_id: str | None = Field(default=None, max_length=100)
