"""The parameter vocabulary every tool is written with: declared once, valid on every backend.

A tool parameter is `Annotated[<type>, <one of these>]` (or one of the ready aliases), so "client id"
or "page size" means the same bounds, the same description style and the same error everywhere.
Bounds are those every supported database accepts: an id above PostgreSQL's INTEGER range would
otherwise reach the driver and fail as an internal error instead of a `validation_error`.

    def get_ticket(call: Call, ticket_id: Annotated[int, Id("ticket", see="list_tickets")]) -> ...
    def list_clients(call: Call, limit: Limit = 50, cursor: Cursor = None) -> Page[ClientOut]: ...
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo
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


# --------------------------------------------------------------------------- input hygiene

TEXT_INPUT: dict[str, Any] = {"revops_text_input": True}
"""Validation context for values read from text (a CSV cell): `Model.model_validate(row,
context=TEXT_INPUT)` lets a whole number arrive as the string "42". Tool arguments arrive as JSON
and are validated without it, so there a string or a boolean is never a number."""


def _whole_number(value: Any, info: ValidationInfo) -> Any:
    # pydantic's lax mode reads true as 1 and "7" as 7: `client_id=true` would reach client 1.
    # Booleans are refused everywhere; strings only outside text input. A whole float (7.0) stays
    # accepted: JSON Schema counts it as an integer, and that is the schema we publish.
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    if isinstance(value, str | bytes) and not (info.context or {}).get("revops_text_input"):
        raise ValueError("must be a JSON number, not a string")
    return value


WholeNumber = BeforeValidator(_whole_number)
"""Refuse booleans (and, outside `TEXT_INPUT`, strings) where a whole number is expected:
`Annotated[int, Field(ge=0), WholeNumber]`. `Id`, `IdValue`, `Count`, `Limit` and `MinorUnits` carry it.
It changes nothing in the published schema (already `"type": "integer"`)."""

_BIDI = "\u202a-\u202e\u2066-\u2069"
# C0 controls, DEL, C1 controls and the bidi embeddings/overrides/isolates (Trojan Source); a
# single line also refuses tab, line breaks and U+2028/U+2029 (line and paragraph separators).
_NOT_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
_NOT_IN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]")


def _kind(char: str) -> str:
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return "a bidirectional override"
    if char in "\n\r\u2028\u2029":
        return "a line break"
    return "a control character"


def text_problem(value: str, *, multiline: bool) -> str | None:
    """What makes `value` not plain text (a control character, a bidi override…), or None.

    Names the code point and where it is, never the text itself (it is the caller's data).
    """
    found = (_NOT_IN_TEXT if multiline else _NOT_IN_LINE).search(value)
    if found is None:
        return None
    char = found.group()
    what = (
        "plain text is expected (tab and line breaks allowed)"
        if multiline
        else "one line of plain text is expected"
    )
    return f"contains {_kind(char)} (U+{ord(char):04X}) at character {found.start() + 1} ({what})"


def _plain(multiline: bool) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and (problem := text_problem(value, multiline=multiline)):
            raise ValueError(problem)
        return value

    return check


SingleLine = AfterValidator(_plain(multiline=False))
"""Refuse control characters, line breaks and bidi overrides: names, titles, subjects, e-mails."""
MultiLine = AfterValidator(_plain(multiline=True))
"""Refuse control characters other than tab/CR/LF, and bidi overrides: bodies, notes, reasons.
(A CSV text is checked cell by cell by `revops_core.csv_input`, which can name the line.)"""


def _field(*validators: Any, **constraints: Any) -> FieldInfo:
    """`Field(...)` typed as the FieldInfo it returns (pydantic types it Any so it can pose as a default),
    with `validators` (e.g. `WholeNumber`) applied after its constraints' metadata."""
    info: FieldInfo = Field(**constraints)
    info.metadata.extend(validators)
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
    return _field(WholeNumber, ge=1, le=MAX_ID, description=text)


IdValue = Annotated[int, Field(ge=1, le=MAX_ID), WholeNumber]
"""One id inside a list (the bounds of `Id` without a description)."""


def Ids(entity: str, *, max_items: int = MAX_PAGE, see: str | None = None) -> FieldInfo:
    """A list of `<entity>` ids: `Annotated[list[IdValue], Ids("client")]`."""
    text = f"{_entity_label(entity)} ids (1–{max_items})"
    text += f"; see {see}." if see else "."
    return _field(min_length=1, max_length=max_items, description=text)


def Count(description: str, *, ge: int = 0, le: int = MAX_COUNT) -> FieldInfo:
    """A whole-number quantity (seats, points, days) within what every backend stores; never a boolean."""
    return _field(WholeNumber, ge=ge, le=le, description=description)


MULTILINE_ABOVE = 300
"""`Text` longer than this may span lines (bodies, notes); up to it, it is one line (names, titles)."""


def Text(
    description: str, *, max_length: int = 200, min_length: int = 1, multiline: bool | None = None
) -> FieldInfo:
    """A bounded string parameter, free of control characters and bidi overrides.

    `multiline` (default: `max_length > MULTILINE_ABOVE`) also allows tab, CR and LF.
    """
    lines = max_length > MULTILINE_ABOVE if multiline is None else multiline
    return _field(
        MultiLine if lines else SingleLine,
        min_length=min_length,
        max_length=max_length,
        description=description,
    )


Confirm = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=100,
        description="plan_id to execute; omit to get a plan (changes nothing).",
    ),
    SingleLine,
]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page size."), WholeNumber]
Cursor = Annotated[
    str | None, Field(max_length=500, description="next_cursor of the previous page."), SingleLine
]
AsOf = Annotated[date | None, Field(description="As-of day; default today.")]
Start = Annotated[date | None, Field(description="First day (inclusive).")]
End = Annotated[date | None, Field(description="Last day (inclusive).")]
MinorUnits = Annotated[
    int,
    Field(ge=0, le=MAX_MINOR, description="Amount in minor units (cents for USD), never negative."),
    WholeNumber,
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
