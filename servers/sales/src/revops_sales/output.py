"""Base of Sales result models: built from rows with `Model.model_validate(row)`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)
