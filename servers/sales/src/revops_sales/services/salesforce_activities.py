"""Salesforce Task and Event → Sales activities (one way: nothing is pushed back).

An Event is a meeting at its `StartDateTime`. A Task is a touch only once done (`IsClosed`): a call
(`TaskSubtype` Call), an e-mail sent (Email) or else a completed task, at its `CompletedDateTime`
(else its last modification). An open task is not yet a touch and is left until it closes.
The activity lands on the synced opportunity or account its `WhatId` names and the synced contact
its `WhoId` names; one on neither is skipped and reported. Written through `activities.record`; a
changed record updates its activity (matched by the Salesforce id, so a page read twice adds nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from revops_core.db import utcnow
from revops_sales.models.activities import SalesActivity
from revops_sales.services import activities, sync_records
from revops_sales.services.sync_records import Stats
from revops_sales.vendors import salesforce

VENDOR = "salesforce"
LINK = "activity"  # sync link object: Salesforce Task/Event id ↔ local activity id
FIELDS: dict[str, list[str]] = {
    "Task": ["Subject", "IsClosed", "TaskSubtype", "CompletedDateTime", "OwnerId", "WhatId", "WhoId"],
    "Event": ["Subject", "StartDateTime", "OwnerId", "WhatId", "WhoId"],
}
TASK_KINDS = {"Call": "call", "Email": "email_sent"}


def _kind_and_time(sobject: str, record: dict[str, Any]) -> tuple[str, datetime | None] | None:
    if sobject == "Event":
        return "meeting", salesforce.parse_time(record.get("StartDateTime"))
    if not record.get("IsClosed"):
        return None
    done = record.get("CompletedDateTime") or record.get("SystemModstamp")
    return TASK_KINDS.get(str(record.get("TaskSubtype")), "task_done"), salesforce.parse_time(done)


def store_page(
    session: Session,
    tenant: str,
    owner_label: dict[str, str],
    sobject: str,
    records: list[dict[str, Any]],
    advance: Callable[[Session], None],
) -> Stats:
    """Write one page of tasks or events and its cursor (in the caller's transaction)."""
    stats = Stats(pages=1, pulled=len(records))
    deals = sync_records.local_ids(session, tenant, VENDOR, "deals")
    companies = sync_records.local_ids(session, tenant, VENDOR, "companies")
    contacts = sync_records.local_ids(session, tenant, VENDOR, "contacts")
    known = sync_records.links(session, tenant, VENDOR, LINK, [str(r["Id"]) for r in records])
    for record in records:
        rid = str(record["Id"])
        try:
            found = _kind_and_time(sobject, record)
        except (ValueError, TypeError):
            stats.error(f"{sobject} {rid}: its date is not a Salesforce dateTime")
            continue
        if found is None:
            stats.unchanged += 1  # an open task: read again once it closes
            continue
        kind, at = found
        what, who = str(record.get("WhatId") or ""), str(record.get("WhoId") or "")
        values: dict[str, Any] = {
            "kind": kind,
            "occurred_at": at,
            "owner": owner_label.get(str(record.get("OwnerId"))) if record.get("OwnerId") else None,
            "deal_id": deals.get(what),
            "company_id": companies.get(what),
            "contact_id": contacts.get(who),
            "subject": str(record["Subject"])[:300] if record.get("Subject") else None,
        }
        if at is None:
            stats.error(f"{sobject} {rid}: no date")
            continue
        if values["deal_id"] is None and values["company_id"] is None and values["contact_id"] is None:
            stats.error(f"{sobject} {rid}: not on a synced opportunity, account or contact")
            continue
        lnk = known.get(rid)
        row = session.get(SalesActivity, lnk.local_id) if lnk is not None else None
        if row is None:
            made = activities.record(session, tenant, **values)
            if lnk is None:
                sync_records.link(session, tenant, VENDOR, LINK, int(made.id or 0), rid, {})
            else:  # the local activity was removed: link the new one
                lnk.local_id = int(made.id or 0)
                session.add(lnk)
            stats.created += 1
            continue
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        for name, value in changed.items():
            setattr(row, name, value)
        if changed:
            session.add(row)
            assert lnk is not None
            lnk.synced_at = utcnow()
            session.add(lnk)
        stats.updated += int(bool(changed))
        stats.unchanged += int(not changed)
    advance(session)
    return stats
