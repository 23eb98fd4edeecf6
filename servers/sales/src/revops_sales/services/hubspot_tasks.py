"""HubSpot tasks → Sales deal tasks (one way, like notes: nothing is pushed back).

A Sales task belongs to a deal, so a HubSpot task lands on its synced deal; one on no synced deal is
skipped and reported. Created through `services.tasks.add` and completed through `tasks.complete`
(HubSpot status COMPLETED); an edited subject or due date updates the local copy.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from revops_core.errors import RevOpsError
from revops_sales.models.deal_work import SalesTask
from revops_sales.models.deals import SalesDeal
from revops_sales.services import sync_records, tasks
from revops_sales.services.sync_records import Stats
from revops_sales.vendors import hubspot

PROPERTIES = ["hs_task_subject", "hs_timestamp", "hs_task_status", "hubspot_owner_id"]
TITLE_LIMIT = 300


def store_page(
    session: Session,
    *,
    tenant: str,
    vendor: str,
    owner_label: dict[str, str],
    page: hubspot.Page,
    deals_of: dict[str, list[str]],
    advance: Callable[[Session], None],
) -> Stats:
    """Write one page of HubSpot tasks (with their deal associations) and its cursor."""
    stats = Stats(pages=1, pulled=len(page.records))
    local_deals = sync_records.local_ids(session, tenant, vendor, "deals")
    known = sync_records.links(session, tenant, vendor, "tasks", [str(r["id"]) for r in page.records])
    for record in page.records:
        tid, props = str(record["id"]), hubspot.properties_of(record)
        title = str(props.get("hs_task_subject") or "").strip()[:TITLE_LIMIT]
        due = hubspot.parse_time(props.get("hs_timestamp"))
        done = str(props.get("hs_task_status") or "").upper() == "COMPLETED"
        at = hubspot.parse_time(record.get("updatedAt")) or hubspot.parse_time(record.get("createdAt"))
        if not title or at is None:
            stats.error(f"tasks {tid}: no subject or no timestamps")
            continue
        try:
            with session.begin_nested():
                lnk = known.get(tid)
                if lnk is None:
                    deal = _deal(session, tid, deals_of, local_deals)
                    if deal is None:
                        stats.error(f"tasks {tid}: not on a synced deal")
                        continue
                    owner = owner_label.get(str(props.get("hubspot_owner_id")))
                    created = tasks.add(
                        session,
                        tenant,
                        deal,
                        title=title,
                        due_date=due.date() if due else None,
                        owner=owner,
                        actor=vendor,
                        at=hubspot.parse_time(record.get("createdAt")) or at,
                    )
                    sync_records.link(session, tenant, vendor, "tasks", created.id, tid, {})
                    row = session.get(SalesTask, created.id)
                    stats.created += 1
                else:
                    row = session.get(SalesTask, lnk.local_id)
                    if row is None:
                        stats.unchanged += 1
                        continue
                    changed = (row.title, row.due_date) != (title, due.date() if due else None)
                    row.title, row.due_date = title, due.date() if due else None
                    session.add(row)
                    stats.updated += int(changed or (done and row.done_at is None))
                    stats.unchanged += int(not changed and not (done and row.done_at is None))
                if done and row is not None and row.done_at is None:
                    deal_row = session.get(SalesDeal, row.deal_id)
                    assert deal_row is not None
                    tasks.complete(session, tenant, deal_row, int(row.id or 0), actor=vendor, at=at)
        except RevOpsError as exc:  # e.g. the deal was archived here since the last sync
            stats.error(f"tasks {tid}: {exc.message}")
    advance(session)
    return stats


def _deal(
    session: Session, tid: str, deals_of: dict[str, list[str]], local_deals: dict[str, int]
) -> SalesDeal | None:
    for vendor_id in deals_of.get(tid, []):
        if vendor_id in local_deals:
            deal = session.get(SalesDeal, local_deals[vendor_id])
            if deal is not None and deal.deleted_at is None:
                return deal
    return None
