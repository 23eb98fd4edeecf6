"""Duplicate companies and contacts, and merging one into another.

Companies match on their normalised domain (scheme, `www.`, path and case dropped) or their
normalised name (case, punctuation and legal suffixes such as Inc or GmbH dropped); contacts on
their e-mail (case-insensitive) or on first + last name at the same company. A merge moves every
Sales link of the loser (contacts, deals, activities, leads, meetings… any `sales_*` column that
references it, plus associations and custom values) to the survivor, archives the loser and keeps a
`sales_merge` row; other servers' tables are left as they are.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Table, delete, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from revops_core.db import utcnow
from revops_core.errors import NotFound, ValidationFailed
from revops_core.guards import PlanPreview
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_sales.models.crm import SalesCompanyOwner, SalesMerge
from revops_sales.services import associations, custom_properties
from revops_sales.services.companies import get_company, get_contact, owners_of

Entity = Literal["company", "contact"]
LEGAL_SUFFIXES = frozenset(
    {"inc", "incorporated", "llc", "ltd", "limited", "corp", "corporation", "co", "company", "gmbh"}
    | {"ag", "sa", "sas", "bv", "nv", "plc", "pty", "oy", "ab"}
)
# Tables a merge handles itself, not by their foreign keys.
OWN_TABLES = frozenset({"sales_association", "sales_custom_value", "sales_merge", "sales_company_owner"})


class RecordRef(Out):
    id: int = Field(description="Record id.")
    label: str = Field(description="Name or e-mail.")


class DuplicateGroup(Out):
    reason: str = Field(description="domain, name, email or name_company.")
    key: str = Field(description="The normalised value they share.")
    records: list[RecordRef] = Field(description="The records, oldest first (the suggested survivor).")


class DuplicatesOut(Out):
    entity: str = Field(description="company or contact.")
    groups: list[DuplicateGroup] = Field(description="Groups of likely duplicates (first `top`).")
    total_groups: int = Field(description="Groups found in all.")


class MergeOut(Out):
    merge_id: int = Field(description="Merge record id.")
    entity: str = Field(description="company or contact.")
    survivor_id: int = Field(description="Record kept.")
    loser_id: int = Field(description="Record archived.")
    moved: dict[str, int] = Field(description="Rows moved to the survivor, per table.")


def normal_domain(domain: str | None) -> str | None:
    if not domain:
        return None
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", domain.strip().lower())
    text = text.split("/", 1)[0].split("?", 1)[0].rstrip(".").removeprefix("www.")
    return text or None


def normal_name(name: str | None) -> str | None:
    words = re.sub(r"[^0-9a-z]+", " ", (name or "").lower()).split()
    kept = [w for w in words if w not in LEGAL_SUFFIXES] or words
    return "".join(kept) or None


def _groups(keyed: dict[tuple[str, str], list[RecordRef]]) -> list[DuplicateGroup]:
    found = [
        DuplicateGroup(reason=reason, key=key, records=sorted(refs, key=lambda r: r.id))
        for (reason, key), refs in keyed.items()
        if len(refs) > 1
    ]
    return sorted(found, key=lambda g: (g.records[0].id, g.reason))


def find(session: Session, tenant: str, entity: str, *, top: int) -> DuplicatesOut:
    """Groups of live records that look like one; a record can be in a domain and a name group."""
    keyed: dict[tuple[str, str], list[RecordRef]] = defaultdict(list)
    if entity == "company":
        rows = session.execute(
            select(col(CoreCompany.id), col(CoreCompany.name), col(CoreCompany.domain)).where(
                CoreCompany.tenant == tenant, col(CoreCompany.deleted_at).is_(None)
            )
        ).all()
        for record_id, name, domain in rows:
            ref = RecordRef(id=record_id, label=name)
            if key := normal_domain(domain):
                keyed[("domain", key)].append(ref)
            if key := normal_name(name):
                keyed[("name", key)].append(ref)
    else:
        people = session.execute(
            sa_select(
                col(CoreContact.id),
                col(CoreContact.email),
                col(CoreContact.first_name),
                col(CoreContact.last_name),
                col(CoreContact.company_id),
            ).where(col(CoreContact.tenant) == tenant, col(CoreContact.deleted_at).is_(None))
        ).all()
        for record_id, email, first, last, company_id in people:
            ref = RecordRef(id=record_id, label=email)
            keyed[("email", email.strip().lower())].append(ref)
            if first and last and company_id is not None:
                keyed[
                    ("name_company", f"{first.strip().lower()} {last.strip().lower()}@{company_id}")
                ].append(ref)
    groups = _groups(keyed)
    return DuplicatesOut(entity=entity, groups=groups[:top], total_groups=len(groups))


# --------------------------------------------------------------------------- merge


def _referencing_columns(entity: str) -> list[tuple[Table, str]]:
    """(table, column) of every Sales column (and core_contact.company_id) pointing at the entity."""
    from revops_sales.schema import load_sales_models

    load_sales_models()
    target = "core_company" if entity == "company" else "core_contact"
    found: list[tuple[Table, str]] = []
    for name, table in sorted(SQLModel.metadata.tables.items()):
        if name in OWN_TABLES or not (name.startswith("sales_") or name == "core_contact"):
            continue
        for column in table.columns:
            if any(fk.column.table.name == target for fk in column.foreign_keys):
                found.append((table, column.name))
    return found


def _records(session: Session, tenant: str, entity: str, survivor_id: int, loser_id: int) -> tuple[Any, Any]:
    if survivor_id == loser_id:
        raise ValidationFailed(
            "A record cannot be merged into itself.", field="loser_id", hint="Pass two different ids."
        )
    get = get_company if entity == "company" else get_contact
    found = []
    for record_id, field in ((survivor_id, "survivor_id"), (loser_id, "loser_id")):
        try:
            found.append(get(session, tenant, record_id))
        except NotFound:  # the same not_found, naming this tool's field
            raise NotFound(
                f"No live {entity} with id {record_id}.", field=field, hint="Find ids with find_duplicates."
            ) from None
    survivor, loser = found
    return survivor, loser


def _counts(session: Session, tenant: str, entity: str, loser_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table, column in _referencing_columns(entity):
        where = [table.c[column] == loser_id]
        if "tenant" in table.c:
            where.append(table.c.tenant == tenant)
        n = int(session.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
        if n:
            counts[f"{table.name}.{column}"] = n
    links = associations.count_links(session, tenant, entity, loser_id)
    values = custom_properties.count_values(session, tenant, entity, loser_id)
    if links:
        counts["sales_association"] = links
    if values:
        counts["sales_custom_value"] = values
    return counts


def _state(row: Any) -> dict[str, str]:
    return {name: str(getattr(row, name)) for name in sorted(type(row).model_fields)}


def plan_merge(
    session: Session, tenant: str, entity: str, *, survivor_id: int, loser_id: int
) -> tuple[PlanPreview, Any]:
    """What merging would move (rows per table) and the fingerprint of both records and those rows."""
    survivor, loser = _records(session, tenant, entity, survivor_id, loser_id)
    counts = _counts(session, tenant, entity, loser_id)
    label = "name" if entity == "company" else "email"
    preview = PlanPreview(
        summary=f"Merge {entity} {loser_id} into {survivor_id}: move {sum(counts.values())} linked row(s), "
        f"archive {loser_id}.",
        affected_count=sum(counts.values()) + 1,
        sample=[{"table": t, "rows": n} for t, n in sorted(counts.items())],
        reversible=False,
        notes=[
            f"Keeps {entity} {survivor_id} ({getattr(survivor, label)}); archives {loser_id} "
            f"({getattr(loser, label)}). Where both have a custom value or link, the survivor's stays.",
            "Other servers' records (e.g. Customer Success) keep pointing at the archived record.",
        ],
    )
    owners = owners_of(session, tenant, [survivor_id, loser_id]) if entity == "company" else {}
    state = {"survivor": _state(survivor), "loser": _state(loser), "counts": counts, "owners": owners}
    return preview, state


def _move_owner(session: Session, tenant: str, *, loser: int, survivor: int) -> bool:
    """The loser's owner passes to a survivor without one (else it is dropped)."""
    owners = owners_of(session, tenant, [loser, survivor])
    if loser not in owners:
        return False
    table = SalesCompanyOwner.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    if survivor in owners:
        connection.execute(delete(table).where(table.c.company_id == loser))
        return False
    connection.execute(update(table).where(table.c.company_id == loser).values(company_id=survivor))
    return True


def merge(
    session: Session, tenant: str, entity: str, *, survivor_id: int, loser_id: int, actor: str
) -> MergeOut:
    """Move the loser's links to the survivor, archive the loser, record the merge."""
    _, loser = _records(session, tenant, entity, survivor_id, loser_id)
    moved: dict[str, int] = {}
    connection = session.connection()
    for table, column in _referencing_columns(entity):
        where = [table.c[column] == loser_id]
        if "tenant" in table.c:
            where.append(table.c.tenant == tenant)
        n = int(connection.execute(update(table).where(*where).values({column: survivor_id})).rowcount or 0)
        if n:
            moved[f"{table.name}.{column}"] = n
    if links := associations.repoint_for_merge(session, tenant, entity, loser=loser_id, survivor=survivor_id):
        moved["sales_association"] = links
    if values := custom_properties.move_values(session, tenant, entity, loser=loser_id, survivor=survivor_id):
        moved["sales_custom_value"] = values
    if entity == "company" and _move_owner(session, tenant, loser=loser_id, survivor=survivor_id):
        moved["sales_company_owner"] = 1
    now = utcnow()
    loser.deleted_at = now
    if entity == "company":
        loser.updated_at = now
    session.add(loser)
    record = SalesMerge(
        tenant=tenant,
        entity=entity,
        survivor_id=survivor_id,
        loser_id=loser_id,
        actor=actor,
        moved=json.dumps(moved),
    )
    session.add(record)
    session.flush()
    return MergeOut(
        merge_id=record.id or 0, entity=entity, survivor_id=survivor_id, loser_id=loser_id, moved=moved
    )
