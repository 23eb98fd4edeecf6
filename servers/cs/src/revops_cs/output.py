"""Lean JSON schemas for CS tool models (`Out` for results, `LeanIn` for nested inputs).

Why: every tool's schemas are part of `tools/list`, which must fit an LLM's context. Pydantic's
per-property `title` repeats the property name and the class docstring repeats the tool
description, so both go; `X | None` becomes `"type": [X, "null"]` (equivalent, shorter). Result
models also drop `required`: every result field is always present. Field descriptions stay.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def _nullable(prop: dict[str, Any]) -> None:
    options = prop.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return
    other = next(o for o in options if o != {"type": "null"})
    if not isinstance(other.get("type"), str) or "$ref" in other or "items" in other:
        return
    del prop["anyOf"]
    prop.update(other)
    prop["type"] = [other["type"], "null"]
    if "enum" in other:
        prop["enum"] = [*other["enum"], None]


def nullable(schema: dict[str, Any]) -> None:
    """Field-level `json_schema_extra` for an optional tool parameter: `X | None = None` as one schema."""
    _nullable(schema)
    if "default" in schema and schema["default"] is None:
        del schema["default"]  # absent means "not given"; saying so costs context on every tool


def _lean(schema: dict[str, Any], *, keep_required: bool) -> None:
    schema.pop("title", None)
    schema.pop("description", None)
    if not keep_required:
        schema.pop("required", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        _nullable(prop)


class Out(BaseModel):
    """Base class of tool result models (lean schema, no `required`)."""

    model_config = ConfigDict(json_schema_extra=lambda schema, cls: _lean(schema, keep_required=False))


class LeanIn(BaseModel):
    """Base class of nested input models (lean schema, `required` kept)."""

    model_config = ConfigDict(json_schema_extra=lambda schema, cls: _lean(schema, keep_required=True))
