"""CS tables for vendors: which vendor record mirrors which local record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class CsExternalRef(SQLModel, table=True):
    """A local record's id at a vendor, e.g. (intercom, contact, core_contact.id) → Intercom contact id."""

    __tablename__ = "cs_external_ref"
    __table_args__ = (
        UniqueConstraint("vendor", "kind", "local_id", name="uq_cs_external_ref_local"),
        UniqueConstraint("vendor", "kind", "external_id", name="uq_cs_external_ref_remote"),
    )

    id: int | None = Field(default=None, primary_key=True)
    vendor: str = Field(max_length=30)
    kind: str = Field(max_length=30)
    local_id: int
    external_id: str = Field(max_length=200)
    synced_at: datetime = utc_field(default_now=True)
