"""E-mail through Gmail: messages sent, drafted or received (logged), and simple sequences.

A message row exists only for what Gmail has or may have: `sent`, `unknown` (the send timed out or
its answer was garbled; never resent automatically), `draft`, or a logged `received`/`bounced`
message. A failed send leaves no row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class SalesEmailMessage(SQLModel, table=True):
    __tablename__ = "sales_email_message"
    __table_args__ = (
        Index("ix_sales_email_thread", "tenant", "thread_id"),
        Index("ix_sales_email_contact_at", "contact_id", "occurred_at"),
        UniqueConstraint("tenant", "dedupe_key", name="uq_sales_email_dedupe"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    status: str = Field(max_length=10, description="sent, unknown, draft, received or bounced.")
    owner: str | None = Field(default=None, max_length=200)
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    deal_id: int | None = Field(default=None, foreign_key="sales_deal.id", index=True)
    recipients: str = Field(default="[]", sa_type=Text, description="JSON list of addresses.")
    subject: str = Field(max_length=300)
    body: str | None = Field(default=None, sa_type=Text)
    thread_id: str | None = Field(default=None, max_length=100, description="Gmail thread id.")
    gmail_id: str | None = Field(default=None, max_length=100, description="Gmail message/draft id.")
    rfc_message_id: str | None = Field(default=None, max_length=300, description="Message-ID header.")
    references: str | None = Field(default=None, sa_type=Text)
    sequence_enrollment_id: int | None = Field(default=None, foreign_key="sales_sequence_enrollment.id")
    dedupe_key: str | None = Field(default=None, max_length=64)
    occurred_at: datetime = utc_field(default_now=True)


class SalesSequence(SQLModel, table=True):
    __tablename__ = "sales_sequence"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64, index=True)
    name: str = Field(max_length=200)
    owner: str = Field(max_length=200)
    steps: str = Field(sa_type=Text, description="JSON list of {delay_days, subject, body}.")
    created_at: datetime = utc_field(default_now=True)


class SalesSequenceEnrollment(SQLModel, table=True):
    """One contact in a sequence. `next_step` is the index of the step to send next."""

    __tablename__ = "sales_sequence_enrollment"
    __table_args__ = (
        UniqueConstraint("sequence_id", "contact_id", name="uq_sales_sequence_contact"),
        Index("ix_sales_enrollment_due", "tenant", "status", "next_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    sequence_id: int = Field(foreign_key="sales_sequence.id")
    contact_id: int = Field(foreign_key="core_contact.id")
    deal_id: int | None = Field(default=None, foreign_key="sales_deal.id")
    # active, completed, stopped (reply), paused (bounce), held (a send's outcome is unknown)
    status: str = Field(default="active", max_length=10)
    next_step: int = Field(default=0)
    next_due_at: datetime | None = utc_field(nullable=True)
    thread_id: str | None = Field(default=None, max_length=100)
    last_message_id: str | None = Field(default=None, max_length=300)
    enrolled_at: datetime = utc_field(default_now=True)
