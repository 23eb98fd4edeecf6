"""Compact JSON schemas for the support and feedback tools, so `tools/list` stays within its budget.

Pydantic emits a `title` for every property (noise for a model reading the list) and spells optional
values as `anyOf: [{X}, {"type": "null"}]`. Both are rewritten to the equivalent shorter forms; the
schemas still accept and describe exactly the same values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def compact_property(prop: dict[str, Any]) -> None:
    """Drop the title; fold `anyOf [{type: X, …}, {type: null}]` into `type: [X, "null"]`."""
    prop.pop("title", None)
    any_of = prop.get("anyOf")
    if not isinstance(any_of, list) or len(any_of) != 2 or {"type": "null"} not in any_of:
        return
    other = next(s for s in any_of if s != {"type": "null"})
    if isinstance(other.get("type"), str):
        del prop["anyOf"]
        prop.update(other)
        prop["type"] = [other["type"], "null"]
        if "enum" in other:
            prop["enum"] = [*other["enum"], None]


def _compact_model(schema: dict[str, Any]) -> None:
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        compact_property(prop)


class Out(BaseModel):
    """Base of every result model here: compact output schema."""

    model_config = ConfigDict(json_schema_extra=_compact_model)


def arg(description: str, **constraints: Any) -> Any:
    """`Field(...)` for a tool parameter, with the compact schema."""
    return Field(description=description, json_schema_extra=compact_property, **constraints)
