"""Salesforce Lead → Sales leads (one way: nothing is pushed back).

Created and updated through `services.leads` (matched by the Salesforce id, so a page read twice adds
nothing). A lead Salesforce converted is left alone: its contact, account and opportunity arrive
through those objects. Salesforce's lead statuses are an org picklist; the default values map to the
local statuses by their words (Open/New/Not Contacted → new, Working/Contacted → working, Qualified →
qualified, Not Converted / Unqualified → disqualified); any other value leaves the local status
as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from revops_core.errors import RevOpsError
from revops_sales.models.leads import SalesLead
from revops_sales.services import leads, sync_records
from revops_sales.services.sync_records import Stats

VENDOR = "salesforce"
FIELDS = [
    "FirstName", "LastName", "Email", "Company", "Website", "Title", "Industry",
    "NumberOfEmployees", "LeadSource", "Status", "OwnerId", "IsConverted",
]  # fmt: skip
_STATUS_WORDS = (  # first match wins: "Open - Not Contacted" is new, "Working - Contacted" working
    ("not converted", "disqualified"),
    ("not contacted", "new"),
    ("unqualified", "disqualified"),
    ("disqualified", "disqualified"),
    ("qualified", "qualified"),
    ("working", "working"),
    ("contacted", "working"),
    ("open", "new"),
    ("new", "new"),
)
LIMITS = {"name": 200, "email": 320, "company_name": 200, "title": 150, "industry": 100, "source": 100}


def status_of(value: Any) -> str | None:
    text = str(value or "").lower()
    return next((local for word, local in _STATUS_WORDS if word in text), None)


def values_of(record: dict[str, Any], owner_label: dict[str, str], domain: str | None) -> dict[str, Any]:
    """The local lead fields of a Salesforce lead; ValueError when it cannot be one."""
    name = " ".join(str(record.get(k) or "").strip() for k in ("FirstName", "LastName")).strip()
    if not name:
        raise ValueError("no name")
    employees = record.get("NumberOfEmployees")
    if employees is not None and (not isinstance(employees, int) or employees < 0):
        raise ValueError(f"NumberOfEmployees {employees!r} is not a whole number ≥ 0")
    values: dict[str, Any] = {
        "name": name,
        "email": str(record["Email"]).strip().lower() if record.get("Email") else None,
        "company_name": record.get("Company") or None,
        "company_domain": domain,
        "title": record.get("Title") or None,
        "industry": record.get("Industry") or None,
        "employees": employees,
        "source": record.get("LeadSource") or None,
        "owner": owner_label.get(str(record.get("OwnerId"))) if record.get("OwnerId") else None,
        "status": status_of(record.get("Status")),
    }
    for name_, limit in LIMITS.items():
        if isinstance(values[name_], str) and len(values[name_]) > limit:
            raise ValueError(f"{name_} is longer than {limit} characters")
    return values


def store_page(
    session: Session,
    tenant: str,
    owner_label: dict[str, str],
    records: list[dict[str, Any]],
    domain_of: Callable[[Any], str | None],
    advance: Callable[[Session], None],
) -> Stats:
    """Write one page of leads and its cursor (in the caller's transaction)."""
    stats = Stats(pages=1, pulled=len(records))
    known = sync_records.links(session, tenant, VENDOR, "leads", [str(r["Id"]) for r in records])
    for record in records:
        rid = str(record["Id"])
        if record.get("IsConverted"):
            stats.unchanged += 1
            continue
        try:
            values = values_of(record, owner_label, domain_of(record.get("Website")))
        except ValueError as exc:
            stats.error(f"leads {rid}: {exc}")
            continue
        lnk = known.get(rid)
        try:
            with session.begin_nested():  # one refused lead rolls back alone
                if lnk is None:
                    made = leads.create(session, tenant, {**values, "status": values["status"] or "new"})
                    sync_records.link(session, tenant, VENDOR, "leads", made.id, rid, {})
                    stats.created += 1
                    continue
                row = session.get(SalesLead, lnk.local_id)
                if row is None or row.deleted_at is not None:
                    stats.unchanged += 1  # archived here
                    continue
                changed = {k: v for k, v in values.items() if v is not None and getattr(row, k) != v}
                if changed:
                    leads.update(session, tenant, int(row.id or 0), changed)
                stats.updated += int(bool(changed))
                stats.unchanged += int(not changed)
        except RevOpsError as exc:
            stats.error(f"leads {rid}: {exc.message}")
    advance(session)
    return stats
