"""Transitional: the old home of the CS parameter types and helpers, now in `revops_core.params`,
`revops_cs.params` and `revops_cs.services.clients`. Remove once no tool module imports it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import Field

from revops_core.db import MAX_ID
from revops_core.errors import ValidationFailed
from revops_cs.services.clients import get_client as get_client

ClientId = Annotated[int, Field(ge=1, le=MAX_ID, description="Client id (see list_clients).")]
OptClient = Annotated[int | None, Field(ge=1, le=MAX_ID, description="One client id; omit for all.")]
AsOf = Annotated[date | None, Field(description="As-of date; default today (UTC).")]
StartDate = Annotated[date | None, Field(description="First day (inclusive).")]
EndDate = Annotated[date | None, Field(description="Last day (inclusive).")]
Limit = Annotated[int, Field(ge=1, le=200, description="Page size (1–200).")]
MaxRows = Annotated[int, Field(ge=1, le=200, description="Max rows (1–200).")]
Cursor = Annotated[
    str | None, Field(max_length=500, description="Cursor from the previous page; omit for page 1.")
]


def resolve_as_of(as_of: date | None) -> date:
    today = datetime.now(UTC).date()
    if as_of is None:
        return today
    if as_of > today:
        raise ValidationFailed(
            f"as_of {as_of.isoformat()} is in the future.",
            field="as_of",
            hint="Use today or an earlier date.",
        )
    return as_of


def end_of_day(day: date) -> datetime:
    """The exclusive upper bound for events 'as of' a day: the next midnight, UTC."""
    return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(days=1)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def check_range(
    start: date, end: date, *, start_field: str = "start_date", end_field: str = "end_date"
) -> None:
    if end < start:
        raise ValidationFailed(
            f"{end_field} ({end.isoformat()}) is before {start_field} ({start.isoformat()}).",
            field=end_field,
            hint=f"Give an {end_field} on or after {start_field}.",
        )


T = TypeVar("T")


def needed(value: T | None, field: str, action: str) -> T:
    """`value`, or a validation error saying `action` needs `field` (raised before anything changes)."""
    if value is None or value == "":
        raise ValidationFailed(f"action={action} needs {field}.", field=field, hint=f"Pass {field}.")
    return value


def require_all(action: str, **values: Any) -> None:
    """`needed` for several fields, reporting the first one missing."""
    for field, value in values.items():
        needed(value, field, action)
