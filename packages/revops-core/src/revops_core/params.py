"""The parameter vocabulary every tool is written with: declared once, valid on every backend.

A tool parameter is `Annotated[<type>, <one of these>]` (or one of the ready aliases), so "client id"
or "page size" means the same bounds, the same description style and the same error everywhere.
Bounds are those every supported database accepts: an id above PostgreSQL's INTEGER range would
otherwise reach the driver and fail as an internal error instead of a `validation_error`.

    def get_ticket(call: Call, ticket_id: Annotated[int, Id("ticket", see="list_tickets")]) -> ...
    def list_clients(call: Call, limit: Limit = 50, cursor: Cursor = None) -> Page[ClientOut]: ...
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import Field
from pydantic.fields import FieldInfo

from revops_core.errors import ValidationFailed

MAX_ID = 2**31 - 1
"""Largest id any table holds (PostgreSQL INTEGER); ids above it are refused before any query."""
MAX_COUNT = 2**31 - 1
"""Largest count/quantity a column holds (seats, points, minutes)."""
MAX_MINOR = 10**15
"""Largest money amount in minor units a column holds (PostgreSQL BIGINT leaves ample room)."""
MAX_PAGE = 200
"""Largest page a list tool returns."""


def _field(**constraints: Any) -> FieldInfo:
    """`Field(...)` typed as the FieldInfo it returns (pydantic types it Any so it can pose as a default)."""
    info: FieldInfo = Field(**constraints)
    return info


def _entity_label(entity: str) -> str:
    return entity.replace("_", " ").capitalize()


def Id(entity: str, *, see: str | None = None, optional: str | None = None) -> FieldInfo:
    """Bounds and description of one `<entity>` id: `Annotated[int, Id("client", see="list_clients")]`.

    `optional` is the sentence a nullable id adds (e.g. "omit for every client").
    """
    text = f"{_entity_label(entity)} id"
    if see:
        text += f" (see {see})"
    text += "."
    if optional:
        text += f" {optional[0].upper()}{optional[1:]}"
        text += "" if optional.endswith(".") else "."
    return _field(ge=1, le=MAX_ID, description=text)


IdValue = Annotated[int, Field(ge=1, le=MAX_ID)]
"""One id inside a list (the bounds of `Id` without a description)."""


def Ids(entity: str, *, max_items: int = MAX_PAGE, see: str | None = None) -> FieldInfo:
    """A list of `<entity>` ids: `Annotated[list[IdValue], Ids("client")]`."""
    text = f"{_entity_label(entity)} ids (1–{max_items})"
    text += f"; see {see}." if see else "."
    return _field(min_length=1, max_length=max_items, description=text)


def Count(description: str, *, ge: int = 0, le: int = MAX_COUNT) -> FieldInfo:
    """A whole-number quantity (seats, points, days) within what every backend stores."""
    return _field(ge=ge, le=le, description=description)


def Text(description: str, *, max_length: int = 200, min_length: int = 1) -> FieldInfo:
    """A bounded string parameter."""
    return _field(min_length=min_length, max_length=max_length, description=description)


Confirm = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=100,
        description="plan_id to execute; omit to get a plan (changes nothing).",
    ),
]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page size.")]
Cursor = Annotated[str | None, Field(max_length=500, description="next_cursor of the previous page.")]
AsOf = Annotated[date | None, Field(description="As-of day; default today.")]
Start = Annotated[date | None, Field(description="First day (inclusive).")]
End = Annotated[date | None, Field(description="Last day (inclusive).")]
MinorUnits = Annotated[
    int, Field(ge=0, le=MAX_MINOR, description="Amount in minor units (cents for USD), never negative.")
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code, e.g. USD.")]


# --------------------------------------------------------------------------- dates


def today() -> date:
    return datetime.now(UTC).date()


def resolve_as_of(as_of: date | None, *, field: str = "as_of") -> date:
    """`as_of`, defaulting to today; a future date is a validation error (data cannot exist yet)."""
    now = today()
    if as_of is None:
        return now
    if as_of > now:
        raise ValidationFailed(
            f"{field} {as_of.isoformat()} is in the future.",
            field=field,
            hint="Use today or an earlier date.",
        )
    return as_of


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """The exclusive upper bound for events 'as of' a day: the next midnight, UTC."""
    return start_of_day(day) + timedelta(days=1)


class DateRange:
    """A validated `[start, end]` day range; either end defaults from the other and `default_days`."""

    __slots__ = ("end", "start")

    def __init__(self, start: date, end: date) -> None:
        self.start = start
        self.end = end

    @classmethod
    def resolve(
        cls,
        start: date | None,
        end: date | None,
        *,
        default_days: int = 30,
        start_field: str = "start_date",
        end_field: str = "end_date",
        allow_future: bool = False,
    ) -> DateRange:
        last = end or today()
        first = start or last - timedelta(days=default_days - 1)
        if last < first:
            raise ValidationFailed(
                f"{end_field} ({last.isoformat()}) is before {start_field} ({first.isoformat()}).",
                field=end_field,
                hint=f"Give an {end_field} on or after {start_field}.",
            )
        if not allow_future and first > today():
            raise ValidationFailed(
                f"{start_field} {first.isoformat()} is in the future.",
                field=start_field,
                hint="Use today or an earlier date.",
            )
        return cls(first, last)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        """Inclusive lower bound as a UTC instant."""
        return start_of_day(self.start)

    @property
    def until(self) -> datetime:
        """Exclusive upper bound as a UTC instant."""
        return end_of_day(self.end)

    def __repr__(self) -> str:
        return f"DateRange({self.start.isoformat()}, {self.end.isoformat()})"


def require(value: Any, field: str, *, when: str) -> Any:
    """`value`, or a validation error saying what needs `field` — for the rare field that is
    required only in some state (prefer separate tools to optional-everything signatures)."""
    if value is None or value == "":
        raise ValidationFailed(f"{when} needs {field}.", field=field, hint=f"Pass {field}.")
    return value
