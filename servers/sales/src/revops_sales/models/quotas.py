"""Quotas: a target amount for a rep (or the whole team) over a period."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

TEAM = "*"
"""The `owner` of a team-wide quota."""


class SalesQuota(SQLModel, table=True):
    __tablename__ = "sales_quota"
    __table_args__ = (UniqueConstraint("tenant", "owner", "start", "end", "currency", name="uq_sales_quota"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    owner: str = Field(max_length=200, description="Rep, or '*' for the team.")
    start: date
    end: date
    amount_minor: int = Field(ge=0, sa_type=BigInteger)  # up to MAX_MINOR on every backend
    currency: str = Field(default="USD", max_length=3)
    updated_at: datetime = utc_field(default_now=True)
