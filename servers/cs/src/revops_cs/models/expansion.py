"""Monthly recurring revenue history per client: the source of NRR, GRR and expansion figures."""

from __future__ import annotations

from datetime import date

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class CsMrrMonth(SQLModel, table=True):
    __tablename__ = "cs_mrr_month"
    __table_args__ = (UniqueConstraint("client_id", "month", name="uq_cs_mrr_client_month"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    month: date = Field(index=True, description="First day of the month.")
    mrr_minor: int = Field(ge=0)
    currency: str = Field(default="USD", max_length=3)
