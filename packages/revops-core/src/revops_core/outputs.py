"""Bases of tool results: built from rows with `Model.model_validate(row)`, never field by field."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class Out(BaseModel):
    """Base of every tool result model: validates straight from a row's attributes."""

    model_config = ConfigDict(from_attributes=True)


def _from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


FromJson = BeforeValidator(_from_json)
"""`tags: Annotated[list[str], FromJson]`: a JSON-text column (tags, attendees) read straight from its row."""
