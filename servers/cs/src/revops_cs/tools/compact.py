"""Compact JSON schemas for the support and feedback tools, so `tools/list` stays within its budget.

Pydantic emits a `title` for every property (noise for a model reading the list) and spells optional
values as `anyOf: [{X}, {"type": "null"}]`; both are rewritten to the equivalent shorter forms. Result
schemas also drop `default` and `required` (every result field is always present), so they accept a
superset of what the tools return and describe every field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from revops_core.db import MAX_ID

__all__ = ["MAX_ID", "Out", "arg", "compact_property"]


def compact_property(prop: dict[str, Any]) -> None:
    """Drop the title and a null default (an omitted optional value is null anyway); fold
    `anyOf [{type: X, …}, {type: null}]` into `type: [X, "null"]`."""
    prop.pop("title", None)
    if "default" in prop and prop["default"] is None:
        del prop["default"]
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
    # Every result field is always present; a `required` list repeating each name adds only length.
    schema.pop("required", None)
    for prop in schema.get("properties", {}).values():
        compact_property(prop)
        prop.pop("default", None)  # results always carry every field; defaults say nothing


class Out(BaseModel):
    """Base of every result model here: compact output schema."""

    model_config = ConfigDict(json_schema_extra=_compact_model)


def arg(description: str, **constraints: Any) -> Any:
    """`Field(...)` for a tool parameter, with the compact schema."""
    return Field(description=description, json_schema_extra=compact_property, **constraints)
