"""Stored health-score snapshots: one per client and day, with the explanation they were scored from."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class CsHealthSnapshot(SQLModel, table=True):
    """A computed health score with its explanation, stored for trends."""

    __tablename__ = "cs_health_snapshot"
    # (client, as_of, id) serves "latest snapshot per client" (ordered by as_of, then id) from the
    # index alone: the correlated subquery behind list_clients' band filter and the report.
    __table_args__ = (Index("ix_cs_health_client_asof_id", "client_id", "as_of", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id")
    as_of: date
    score: float
    band: str = Field(max_length=20)
    components: str = Field(
        sa_column=Column(Text, nullable=False), description="JSON: component → sub-score."
    )
    weights: str = Field(sa_column=Column(Text, nullable=False), description="JSON: weights used.")
    missing: str = Field(default="[]", sa_column=Column(Text, nullable=False), description="JSON list.")
    inputs_hash: str = Field(max_length=64, description="SHA-256 of the inputs: same inputs, same hash.")
    computed_at: datetime = utc_field(default_now=True)
