"""Fetch one live record of the caller's tenant, or the `not_found` that names the field and the
tool that lists valid ids — the lookup every "by id" tool starts with."""

from __future__ import annotations

from typing import Any, TypeVar

from revops_core.errors import NotFound

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
