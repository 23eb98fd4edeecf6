"""Keyset paging: `paginate(session, query, cursor=..., limit=..., keys=...)` → `Page[T]`.

A page ends at the last row's sort key; the next page starts strictly after it. Unlike an offset,
that stays right while rows are added or removed between two pages: archiving a client on page 1
cannot push a live client from page 2 onto page 1 unseen. The cursor is opaque to the client,
names the list it belongs to (`scope`), and a foreign or tampered one is a `validation_error`.

The sort keys always end with a unique column (the primary key), so the order is total; all keys
sort in one direction. Filtering, counting and paging happen in SQL: no list is paged in Python.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from revops_core.errors import ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T] = Field(description="This page of results.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
    total: int = Field(description="Number of matching records across all pages.")


# --------------------------------------------------------------------------- cursors


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, sort_keys=True).encode()).decode().rstrip("=")


def _malformed(message: str = "The cursor is not one this server issued.") -> ValidationFailed:
    return ValidationFailed(message, field="cursor", hint="Omit cursor to start from the first page.")


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    """Decode a cursor from a previous page; a tampered or foreign cursor is a validation error."""
    if not cursor:
        return {}
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed() from exc
    if not isinstance(value, dict):
        raise _malformed("The cursor is malformed.")
    return value


def _key_value(value: Any) -> Any:
    """A sort-key value as JSON (dates tagged so they come back as dates)."""
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if value is None or isinstance(value, int | float | str):
        return value
    raise TypeError(f"cannot page on a key of type {type(value).__name__}")


def _key_from_json(value: Any) -> Any:
    try:
        if isinstance(value, dict) and set(value) == {"dt"}:
            return datetime.fromisoformat(value["dt"])
        if isinstance(value, dict) and set(value) == {"d"}:
            return date.fromisoformat(value["d"])
    except (TypeError, ValueError) as exc:
        raise _malformed("The cursor is malformed.") from exc
    if value is None or isinstance(value, int | float | str):
        return value
    raise _malformed("The cursor is malformed.")


def _position(cursor: str | None, scope: str, width: int) -> list[Any] | None:
    raw = decode_cursor(cursor)
    if not raw:
        return None
    if raw.get("s") != scope:
        raise _malformed(f"That cursor belongs to another list ({raw.get('s')!r}), not {scope!r}.")
    after = raw.get("k")
    if not isinstance(after, list) or len(after) != width:
        raise _malformed("The cursor is malformed.")
    values = [_key_from_json(v) for v in after]
    if any(v is None for v in values):
        raise _malformed("The cursor is malformed.")
    return values


# --------------------------------------------------------------------------- paginate


def paginate(
    session: Any,
    query: Any,
    *,
    cursor: str | None,
    limit: int,
    keys: Sequence[Any],
    scope: str,
    descending: bool = False,
    item: Callable[[Any], T] | None = None,
) -> Page[T]:
    """One page of `query` (a SQLAlchemy/SQLModel `select`) ordered by `keys`.

    `keys` are columns (or labelled expressions) whose last element is unique; the cursor records
    the last row's values of each. Pass the same `keys` as rows' attributes: a key's `.key` (its
    column or label name) is read from every row. `item` turns a row into the page's item
    (default: the row itself, e.g. `Model.model_validate`). `total` counts the filtered query.
    NULL sort values are not supported: sort on a non-null expression (e.g. `coalesce`).
    """
    from sqlalchemy import func, literal, select, tuple_

    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}.", field="limit", hint="Pass a smaller page size."
        )
    if not keys:
        raise TypeError("paginate needs at least one key, ending with a unique column")
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    total = int(session.execute(counted).scalar_one())
    after = _position(cursor, scope, len(keys))
    page_query = query
    if after is not None:
        bound = tuple_(*keys) if len(keys) > 1 else keys[0]
        value = (
            tuple_(*(literal(v, k.type) for k, v in zip(keys, after, strict=True)))
            if len(keys) > 1
            else after[0]
        )
        page_query = page_query.where(bound < value if descending else bound > value)
    page_query = page_query.order_by(None).order_by(*(k.desc() if descending else k.asc() for k in keys))
    rows = list(session.execute(page_query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    convert = item or (lambda row: row)
    items = [convert(_unwrap(row)) for row in rows]
    next_cursor = None
    if more:
        last = _unwrap(rows[-1])
        next_cursor = encode_cursor({"s": scope, "k": [_key_value(_read_key(last, k)) for k in keys]})
    return Page[Any](items=items, next_cursor=next_cursor, total=total)


def _unwrap(row: Any) -> Any:
    """A one-entity row is that entity; a multi-column row stays a row."""
    return row[0] if len(row) == 1 else row


def _read_key(row: Any, key: Any) -> Any:
    """A sort key's value in a row: an entity's attribute, a labelled column, or the attribute of
    the joined entity whose table the key's column belongs to."""
    name = getattr(key, "key", None) or getattr(key, "name", None)
    if name is None:
        raise TypeError(f"sort key {key!r} has no name; label it")
    mapping = getattr(row, "_mapping", None)
    if mapping is None:
        return getattr(row, name)
    if name in mapping:
        return mapping[name]
    table = getattr(key, "table", None)
    for value in row:
        if getattr(value, "__table__", None) is table:
            return getattr(value, name)
    raise TypeError(f"sort key {name!r} is not in the selected row")


# --------------------------------------------------------------------------- simple id keyset


def after_id(cursor: str | None) -> int:
    """The last id of the previous page (0 for the first page) for lists paged by id alone."""
    value = decode_cursor(cursor).get("after", 0)
    if not isinstance(value, int) or value < 0:
        raise _malformed("The cursor is malformed.")
    return value


def next_cursor(rows: list[Any], limit: int, *, id_attr: str = "id") -> str | None:
    """Cursor for the page after `rows` (fetch limit+1 rows to know whether one exists)."""
    if len(rows) <= limit:
        return None
    return encode_cursor({"after": getattr(rows[limit - 1], id_attr)})
