"""Activities: one row per touch with a deal, contact or company (call, e-mail, meeting, note, task).

Each capability that makes a touch (notes, tasks, meetings, e-mail, lead conversion) records it here
through `services.activities.record`, so activity metrics, "last touches" in a meeting brief and
stalled-deal reasons read one table instead of one per capability.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

ActivityKind = Literal["call", "email_sent", "email_received", "meeting", "note", "task_done"]
ACTIVITY_KINDS: tuple[str, ...] = get_args(ActivityKind)


class SalesActivity(SQLModel, table=True):
    __tablename__ = "sales_activity"
    __table_args__ = (
        Index("ix_sales_activity_owner_at", "tenant", "owner", "occurred_at"),
        Index("ix_sales_activity_deal_at", "deal_id", "occurred_at"),
        Index("ix_sales_activity_contact_at", "contact_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    kind: str = Field(max_length=20, description="One of ACTIVITY_KINDS.")
    owner: str | None = Field(default=None, max_length=200, description="The rep who made the touch.")
    deal_id: int | None = Field(default=None, foreign_key="sales_deal.id")
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    company_id: int | None = Field(default=None, foreign_key="core_company.id", index=True)
    subject: str | None = Field(default=None, max_length=300)
    source_table: str | None = Field(
        default=None, max_length=40, description="Row behind it, e.g. sales_note."
    )
    source_id: int | None = Field(default=None)
    occurred_at: datetime = utc_field(default_now=True)
