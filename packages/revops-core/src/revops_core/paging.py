"""Opaque cursors for paged lists (keyset on a monotonic id, so pages stay stable under inserts)."""

from __future__ import annotations

import base64
import json
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


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    """Decode a cursor from a previous page; a tampered or foreign cursor is a validation error."""
    if not cursor:
        return {}
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "The cursor is not one this server issued.",
            field="cursor",
            hint="Omit cursor to start from the first page.",
        ) from exc
    if not isinstance(value, dict):
        raise ValidationFailed("The cursor is malformed.", field="cursor", hint="Omit cursor to start again.")
    return value


def after_id(cursor: str | None) -> int:
    """The last id of the previous page (0 for the first page)."""
    value = decode_cursor(cursor).get("after", 0)
    if not isinstance(value, int) or value < 0:
        raise ValidationFailed("The cursor is malformed.", field="cursor", hint="Omit cursor to start again.")
    return value


def next_cursor(rows: list[Any], limit: int, *, id_attr: str = "id") -> str | None:
    """Cursor for the page after `rows` (fetch limit+1 rows to know whether one exists)."""
    if len(rows) <= limit:
        return None
    return encode_cursor({"after": getattr(rows[limit - 1], id_attr)})
