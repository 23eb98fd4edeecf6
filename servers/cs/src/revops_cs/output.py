"""Common bases and the parameter helper of the CS tools.

The compact wire schemas (no titles, folded nullable unions, no `default: null`) are produced for
every tool by `revops_core.wire_schema` in `RevOpsMCPServer.list_tools`, so nothing here rewrites
schemas: these bases only mark result models (`Out`) and nested input models (`LeanIn`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from revops_core.db import MAX_ID

__all__ = ["MAX_ID", "FromJson", "LeanIn", "Out", "arg"]


class Out(BaseModel):
    """Base of CS tool result models: built from rows with `Model.model_validate(row)`."""

    model_config = ConfigDict(from_attributes=True)


def _from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


FromJson = BeforeValidator(_from_json)
"""`tags: Annotated[list[str], FromJson]`: a JSON-text column (tags, attendees) read straight from its row."""


class LeanIn(BaseModel):
    """Base of nested CS tool input models."""


def arg(description: str, **constraints: Any) -> Any:
    """`Field(...)` for a tool parameter: its description plus any constraints (ge, le, max_length…)."""
    return Field(description=description, **constraints)
