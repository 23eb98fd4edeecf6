"""Common bases and the parameter helper of the CS tools.

The compact wire schemas (no titles, folded nullable unions, no `default: null`) are produced for
every tool by `revops_core.wire_schema` in `RevOpsMCPServer.list_tools`, so nothing here rewrites
schemas: these bases only mark result models (`Out`) and nested input models (`LeanIn`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from revops_core.db import MAX_ID
from revops_core.outputs import FromJson, Out  # the CS tools' bases are the core ones

__all__ = ["MAX_ID", "FromJson", "LeanIn", "Out", "arg"]


class LeanIn(BaseModel):
    """Base of nested CS tool input models."""


def arg(description: str, **constraints: Any) -> Any:
    """`Field(...)` for a tool parameter: its description plus any constraints (ge, le, max_length…)."""
    return Field(description=description, **constraints)
