"""`Out`: the base of CS tool results, with a lean JSON schema.

Why: every tool's outputSchema is part of `tools/list`, which must fit an LLM's context. Pydantic's
per-property `title` repeats the property name and the class docstring repeats the tool description,
so both are dropped; field descriptions stay.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def _lean(schema: dict[str, Any], cls: type) -> None:
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)


class Out(BaseModel):
    """Base class of tool result models (lean schema)."""

    model_config = ConfigDict(json_schema_extra=_lean)
