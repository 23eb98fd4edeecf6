"""Sync status per vendor: each stream's cursor, the last run, the last success and the last error,
and how many records are linked per object. Read-only; every figure is read from the sync tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.outputs import FromJson, Out
from revops_sales.models.sync import SalesSyncCursor, SalesSyncLink, SalesSyncRun, SalesSyncUsage


class CursorOut(Out):
    stream: str = Field(description="Object, or <object>:archived for the deletions walk.")
    since: datetime | None = Field(description="Records modified at or after this are read next (UTC).")
    after: str | None = Field(description="Vendor page token inside the current query (null: none open).")
    pages: int = Field(description="Pages committed through this cursor, all runs.")
    updated_at: datetime = Field(description="Last committed page (UTC).")


class RunOut(Out):
    id: int = Field(description="Run id.")
    status: str = Field(description="running, ok, partial or failed.")
    objects: str = Field(description="Objects synced.")
    actor: str = Field(description="Who ran it.")
    pulled: int = Field(description="Vendor records read.")
    created: int = Field(description="Local rows created.")
    updated: int = Field(description="Local rows updated.")
    archived: int = Field(description="Local rows archived.")
    pushed_created: int = Field(description="Vendor records created.")
    pushed_updated: int = Field(description="Vendor records updated.")
    pushed_archived: int = Field(description="Vendor records archived.")
    conflicts: int = Field(description="Conflicts resolved by policy.")
    skipped: int = Field(description="Records not synced.")
    errors: Annotated[list[str], FromJson] = Field(description="Per-record problems (first 20).")
    error_code: str | None = Field(description="Why the run failed.")
    error_message: str | None = Field(description="The failure, readable.")
    started_at: datetime = Field(description="Started (UTC).")
    finished_at: datetime | None = Field(description="Finished (UTC); null while running.")


class LinkCount(Out):
    object: str = Field(description="companies, contacts, deals, pipeline or stage.")
    linked: int = Field(description="Local rows linked to a live vendor record.")
    archived: int = Field(description="Links whose record is archived.")


class SyncStatusOut(Out):
    vendor: str = Field(description="Vendor.")
    cursors: list[CursorOut] = Field(description="One per stream.")
    last_run: RunOut | None = Field(description="The most recent run (null: never run).")
    last_success_at: datetime | None = Field(description="When the last ok run finished (null: never).")
    last_error: RunOut | None = Field(description="The most recent failed run (null: none).")
    links: list[LinkCount] = Field(description="Linked records per object.")
    api_used: int | None = Field(description="API calls used (Salesforce's last answer; else null).")
    api_limit: int | None = Field(description="API calls allowed per 24 h (null: not reported).")


def status(session: Session, tenant: str, vendor: str) -> SyncStatusOut:
    runs = select(SalesSyncRun).where(SalesSyncRun.tenant == tenant, SalesSyncRun.vendor == vendor)
    newest = (col(SalesSyncRun.started_at).desc(), col(SalesSyncRun.id).desc())
    last = session.exec(runs.order_by(*newest)).first()
    failed = session.exec(runs.where(SalesSyncRun.status == "failed").order_by(*newest)).first()
    success = session.exec(
        select(func.max(SalesSyncRun.finished_at)).where(
            SalesSyncRun.tenant == tenant, SalesSyncRun.vendor == vendor, SalesSyncRun.status == "ok"
        )
    ).one()
    cursors = session.exec(
        select(SalesSyncCursor)
        .where(SalesSyncCursor.tenant == tenant, SalesSyncCursor.vendor == vendor)
        .order_by(col(SalesSyncCursor.stream))
    ).all()
    counts = session.exec(
        select(
            SalesSyncLink.object,
            func.count(),
            func.count(col(SalesSyncLink.archived_at)),
        )
        .where(SalesSyncLink.tenant == tenant, SalesSyncLink.vendor == vendor)
        .group_by(SalesSyncLink.object)
        .order_by(SalesSyncLink.object)
    ).all()
    usage = session.exec(
        select(SalesSyncUsage).where(SalesSyncUsage.tenant == tenant, SalesSyncUsage.vendor == vendor)
    ).first()
    return SyncStatusOut(
        vendor=vendor,
        api_used=usage.used if usage else None,
        api_limit=usage.allowed if usage else None,
        cursors=[CursorOut.model_validate(c) for c in cursors],
        last_run=RunOut.model_validate(last) if last else None,
        last_success_at=success,
        last_error=RunOut.model_validate(failed) if failed else None,
        links=[LinkCount(object=o, linked=int(n) - int(a), archived=int(a)) for o, n, a in counts],
    )
