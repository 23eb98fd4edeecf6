"""Meetings booked through Google Calendar, linked to a deal/contact/company, and their outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

MeetingStatus = Literal["scheduled", "held", "no_show", "cancelled"]
MeetingOutcome = Literal["positive", "neutral", "negative"]
OUTCOMES: tuple[str, ...] = get_args(MeetingOutcome)


class SalesMeeting(SQLModel, table=True):
    __tablename__ = "sales_meeting"
    __table_args__ = (Index("ix_sales_meeting_owner_start", "tenant", "owner", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    title: str = Field(max_length=300)
    owner: str = Field(max_length=200, description="The rep who booked it.")
    deal_id: int | None = Field(default=None, foreign_key="sales_deal.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="core_company.id", index=True)
    attendees: str = Field(default="[]", sa_type=Text, description="JSON list of invited addresses.")
    starts_at: datetime = utc_field()
    ends_at: datetime = utc_field()
    calendar_event_id: str = Field(max_length=1024, description="Google event id (we choose it).")
    # created: Google answered; unknown: the insert timed out, the event may exist under that id.
    calendar_status: str = Field(max_length=10)
    calendar_link: str | None = Field(default=None, max_length=500)
    status: str = Field(default="scheduled", max_length=10, description="One of MeetingStatus.")
    outcome: str | None = Field(default=None, max_length=10, description="Held meetings: OUTCOMES.")
    next_steps: str | None = Field(default=None, sa_type=Text)
    logged_at: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field(default_now=True)
