"""Survey answers and free-text feedback, with offline sentiment."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field
from revops_cs.analytics.surveys import nps_category

FeedbackKind = Literal["nps", "csat", "ces", "text"]
FEEDBACK_KINDS: tuple[str, ...] = get_args(FeedbackKind)


class CsFeedback(SQLModel, table=True):
    __tablename__ = "cs_feedback"
    __table_args__ = (
        Index("ix_cs_feedback_client_time", "client_id", "submitted_at"),
        Index("ix_cs_feedback_time", "submitted_at"),  # portfolio-wide survey windows
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id")
    contact_id: int | None = Field(default=None, foreign_key="core_contact.id")
    kind: str = Field(max_length=10, index=True)
    score: int | None = Field(default=None, description="NPS 0–10, CSAT 1–5, CES 1–7; null for text.")
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sentiment: float | None = Field(default=None, description="VADER compound score, −1..1.")
    sentiment_label: str | None = Field(default=None, max_length=10)
    feature: str | None = Field(default=None, max_length=100, index=True, description="Feature requested.")
    source: str = Field(default="api", max_length=30)
    submitted_at: datetime = utc_field(default_now=True)

    @property
    def nps_category(self) -> str | None:
        """promoter / passive / detractor for an NPS answer; None for other kinds."""
        return nps_category(self.score) if self.kind == "nps" and self.score is not None else None
