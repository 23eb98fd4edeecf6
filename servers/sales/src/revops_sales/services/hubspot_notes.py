"""HubSpot notes → Sales notes (one way: HubSpot is where reps write them; nothing is pushed back).

A note lands on its synced deal, else contact, else company (a Sales note has exactly one subject);
one on none of them is skipped and reported. Written through `services.notes.add`, so each note is
also a `note` activity. An edited HubSpot note updates the body of the local copy. HubSpot keeps
notes as HTML: the local copy is its plain text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from sqlmodel import Session

from revops_core.errors import RevOpsError
from revops_sales.models.deal_work import SalesNote
from revops_sales.services import notes, sync_records
from revops_sales.services.sync_records import Stats
from revops_sales.vendors import hubspot

PROPERTIES = ["hs_note_body", "hs_timestamp", "hubspot_owner_id"]
SUBJECTS = ("deals", "contacts", "companies")  # the order a note's subject is chosen in
_BREAK = re.compile(r"<\s*(br|/p|/div|/li)\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def plain_text(body: str) -> str:
    """HubSpot's note HTML as text: line breaks kept, tags dropped, entities decoded."""
    text = _TAG.sub("", _BREAK.sub("\n", body))
    lines = [line.strip() for line in html.unescape(text).splitlines()]
    return "\n".join(line for line in lines if line).strip()


def store_page(
    session: Session,
    *,
    tenant: str,
    vendor: str,
    owner_label: dict[str, str],
    page: hubspot.Page,
    targets: dict[str, dict[str, list[str]]],
    advance: Callable[[Session], None],
) -> Stats:
    """Write one page of HubSpot notes (with their associations per subject type) and its cursor."""
    stats = Stats(pages=1, pulled=len(page.records))
    local = {obj: sync_records.local_ids(session, tenant, vendor, obj) for obj in SUBJECTS}
    known = sync_records.links(session, tenant, vendor, "notes", [str(r["id"]) for r in page.records])
    for record in page.records:
        nid, props = str(record["id"]), hubspot.properties_of(record)
        body = plain_text(str(props.get("hs_note_body") or ""))
        if not body:
            stats.error(f"notes {nid}: the note is empty")
            continue
        lnk = known.get(nid)
        if lnk is not None:
            row = session.get(SalesNote, lnk.local_id)
            if row is not None and row.body != body:
                row.body = body
                session.add(row)
                stats.updated += 1
            else:
                stats.unchanged += 1
            continue
        subject = _subject(nid, targets, local)
        if subject is None:
            stats.error(f"notes {nid}: not on a synced deal, contact or company")
            continue
        at = hubspot.parse_time(props.get("hs_timestamp") or record.get("createdAt"))
        if at is None:
            stats.error(f"notes {nid}: no timestamp")
            continue
        try:
            with session.begin_nested():
                created = notes.add(
                    session,
                    tenant,
                    body=body,
                    deal_id=subject[1] if subject[0] == "deals" else None,
                    contact_id=subject[1] if subject[0] == "contacts" else None,
                    company_id=subject[1] if subject[0] == "companies" else None,
                    author=owner_label.get(str(props.get("hubspot_owner_id")), vendor),
                    at=at,
                )
                sync_records.link(session, tenant, vendor, "notes", created.id, nid, {})
            stats.created += 1
        except RevOpsError as exc:  # e.g. the deal was archived here since the last sync
            stats.error(f"notes {nid}: {exc.message}")
    advance(session)
    return stats


def _subject(
    nid: str, targets: dict[str, dict[str, list[str]]], local: dict[str, dict[str, int]]
) -> tuple[str, int] | None:
    for obj in SUBJECTS:
        for vendor_id in targets.get(obj, {}).get(nid, []):
            if vendor_id in local[obj]:
                return obj, local[obj][vendor_id]
    return None
