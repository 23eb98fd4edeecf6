"""Record lookups every server repeats: one live record of the caller's tenant (or the `not_found`
naming the field and the tool that lists ids), and the uniqueness check before a write (`conflict`)."""

from __future__ import annotations

from typing import Any, TypeVar

from revops_core.errors import Conflict, NotFound

M = TypeVar("M")


def live(session: Any, model: type[M], record_id: int, *, tenant: str, field: str, what: str, see: str) -> M:
    """The row, unless it is missing, another tenant's or archived (`deleted_at` set)."""
    row: M | None = session.get(model, record_id)
    if (
        row is None
        or getattr(row, "tenant", tenant) != tenant
        or getattr(row, "deleted_at", None) is not None
    ):
        raise NotFound(f"No {what} with id {record_id}.", field=field, hint=f"Find ids with {see}.")
    return row


def ensure_unique(
    session: Any,
    column: Any,
    value: object,
    *,
    tenant_column: Any,
    tenant: str,
    field: str,
    what: str,
    hint: str,
    other_than: int | None = None,
    noun: str | None = None,
) -> None:
    """`conflict` naming `field` when another record of the tenant already holds `value` in `column`
    (e.g. a company domain, a contact e-mail); `other_than` is the record being updated; `noun` is how
    the message names the value (default: the field)."""
    from sqlalchemy import select

    owner = column.table.c.id
    taken = session.execute(select(owner).where(tenant_column == tenant, column == value).limit(1)).scalar()
    if taken is not None and taken != other_than:
        raise Conflict(f"{what} {taken} already has the {noun or field} {value}.", field=field, hint=hint)
