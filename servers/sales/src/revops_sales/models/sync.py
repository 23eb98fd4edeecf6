"""CRM sync bookkeeping: which local row is which vendor record, where each stream stopped, each
run's counts and errors, and the per-object field mapping and conflict policy.

`SalesSyncLink.synced_values` is the JSON of the mapped values both sides agreed on at the last sync:
a field differing from it on one side is a change on that side, on both sides a conflict (resolved by
`SalesSyncSetting`'s policy). `SalesSyncCursor` is written in the same transaction as the page it
follows, so an interrupted run resumes at the first page not committed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class SalesSyncLink(SQLModel, table=True):
    """One local row ↔ one vendor record, per object kind (company, contact, deal, pipeline, stage)."""

    __tablename__ = "sales_sync_link"
    __table_args__ = (
        UniqueConstraint("tenant", "vendor", "object", "vendor_id", name="uq_sales_sync_link_vendor"),
        UniqueConstraint("tenant", "vendor", "object", "local_id", name="uq_sales_sync_link_local"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    vendor: str = Field(max_length=20)
    object: str = Field(max_length=20)
    local_id: int
    vendor_id: str = Field(max_length=100)
    synced_values: str = Field(default="{}", description="JSON: mapped values at the last sync.")
    vendor_updated_at: datetime | None = utc_field(nullable=True)
    archived_at: datetime | None = utc_field(nullable=True)
    synced_at: datetime = utc_field(default_now=True)


class SalesSyncCursor(SQLModel, table=True):
    """Where one stream (`contacts`, `contacts:archived`, …) of a vendor stopped.

    `since` is the modification time the current query started from, `after` the vendor's page token
    inside that query, `high_water` the newest modification seen so far in it (the next `since`).
    """

    __tablename__ = "sales_sync_cursor"
    __table_args__ = (UniqueConstraint("tenant", "vendor", "stream", name="uq_sales_sync_cursor"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    vendor: str = Field(max_length=20)
    stream: str = Field(max_length=40)
    since: datetime | None = utc_field(nullable=True)
    after: str | None = Field(default=None, max_length=200)
    high_water: datetime | None = utc_field(nullable=True)
    pages: int = Field(default=0, description="Pages committed through this cursor, all runs.")
    updated_at: datetime = utc_field(default_now=True)


class SalesSyncRun(SQLModel, table=True):
    """One sync run: what it pulled and pushed, and how it ended."""

    __tablename__ = "sales_sync_run"
    __table_args__ = (Index("ix_sales_sync_run_vendor", "tenant", "vendor", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    vendor: str = Field(max_length=20)
    objects: str = Field(max_length=200, description="Comma-separated object kinds.")
    actor: str = Field(max_length=200)
    status: str = Field(default="running", max_length=10, description="running, ok, partial or failed.")
    pages: int = 0
    pulled: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    archived: int = 0
    pushed_created: int = 0
    pushed_updated: int = 0
    pushed_archived: int = 0
    conflicts: int = 0
    skipped: int = 0
    errors: str = Field(default="[]", description="JSON list of per-record problems (first 20).")
    error_code: str | None = Field(default=None, max_length=40)
    error_message: str | None = Field(default=None, max_length=500)
    started_at: datetime = utc_field(default_now=True)
    finished_at: datetime | None = utc_field(nullable=True)


class SalesSyncSetting(SQLModel, table=True):
    """Per vendor and object: field mapping (local field → vendor property), conflict policy, direction."""

    __tablename__ = "sales_sync_setting"
    __table_args__ = (UniqueConstraint("tenant", "vendor", "object", name="uq_sales_sync_setting"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    vendor: str = Field(max_length=20)
    object: str = Field(max_length=20)
    field_map: str = Field(
        default="{}", description="JSON: local field → vendor property (null: not synced)."
    )
    conflict_policy: str = Field(default="vendor_wins", max_length=20)
    field_policies: str = Field(
        default="{}", description="JSON: local field → policy overriding the default."
    )
    direction: str = Field(default="both", max_length=10, description="both, pull or push.")
    default_currency: str | None = Field(default=None, max_length=3)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = utc_field(default_now=True)


class SalesSyncUsage(SQLModel, table=True):
    """A vendor's API allowance as its last answer reported it (Salesforce `Sforce-Limit-Info`)."""

    __tablename__ = "sales_sync_usage"
    __table_args__ = (UniqueConstraint("tenant", "vendor", name="uq_sales_sync_usage"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    vendor: str = Field(max_length=20)
    used: int = Field(description="Calls used in the vendor's rolling 24 h window.")
    allowed: int = Field(description="Calls allowed in that window.")
    read_at: datetime = utc_field(default_now=True)
