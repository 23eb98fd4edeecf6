"""Business reviews (EBR/QBR) and the advocacy programme: records and a points ledger."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

REVIEW_KINDS = ("ebr", "qbr")
ADVOCACY_KINDS = ("reference", "case_study", "review", "referral")
ADVOCACY_STATUSES = ("proposed", "active", "done")


class CsBusinessReview(SQLModel, table=True):
    """A scheduled executive/quarterly business review; `attendees` is a JSON list of contact ids."""

    __tablename__ = "cs_business_review"
    __table_args__ = (Index("ix_cs_review_client_day", "client_id", "scheduled_for"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64, index=True)
    client_id: int = Field(foreign_key="cs_client.id")
    kind: str = Field(max_length=3)
    scheduled_for: date
    attendees: str = Field(default="[]", max_length=2000)
    status: str = Field(default="scheduled", max_length=10, description="scheduled | completed")
    notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)
    completed_at: datetime | None = utc_field(nullable=True)


class CsAdvocacy(SQLModel, table=True):
    """One advocacy activity of a client (optionally one contact): reference, case study, review, referral."""

    __tablename__ = "cs_advocacy"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64, index=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    kind: str = Field(max_length=20)
    status: str = Field(default="proposed", max_length=10, index=True)
    notes: str | None = Field(default=None, max_length=2000)
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)


class CsAdvocacyPoints(SQLModel, table=True):
    """A points ledger row: `points` is signed (earn > 0, redeem < 0); a balance is the sum of rows."""

    __tablename__ = "cs_advocacy_points"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    entry: str = Field(max_length=6, description="earn | redeem")
    points: int
    reason: str | None = Field(default=None, max_length=2000)
    actor: str = Field(max_length=200)
    at: datetime = utc_field(default_now=True)
