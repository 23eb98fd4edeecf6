"""Compact wire schemas: same meaning for inputs, looser-never-stricter for outputs."""

from __future__ import annotations

from datetime import date
from typing import Literal

import jsonschema
from pydantic import BaseModel, Field

from revops_core.wire_schema import compact_input_schema, compact_output_schema


class Line(BaseModel):
    name: str = Field(description="Line name.")
    amount_minor: int = Field(description="Amount.")


class Report(BaseModel):
    title: str = Field(description="A field that happens to be called title.")
    as_of: date = Field(description="Date.")
    note: str | None = Field(default=None, description="Optional note.")
    lines: list[Line] = Field(description="Lines.")
    totals: dict[str, int] = Field(description="Totals by currency.")
    best: Line | None = Field(description="Best line.")


class Args(BaseModel):
    title: str = Field(max_length=10, description="Title parameter.")
    level: Literal["a", "b"] | None = Field(default=None, description="Level.")
    limit: int = Field(default=5, ge=1, le=200, description="Limit.")


def test_input_compaction_keeps_a_parameter_named_title_and_its_meaning():
    full = Args.model_json_schema()
    wire = compact_input_schema(full)
    assert "title" in wire["properties"]
    assert "title" not in wire["properties"]["title"]
    # An optional parameter defaulting to null is published as "leave it out": no null alternative.
    assert wire["properties"]["level"]["type"] == "string"
    assert "default" not in wire["properties"]["level"]
    assert wire["properties"]["limit"]["default"] == 5
    assert wire["properties"]["level"]["enum"] == ["a", "b"]
    for good in ({"title": "x"}, {"title": "x", "limit": 200}, {"title": "x", "level": "a"}):
        jsonschema.validate(good, full)
        jsonschema.validate(good, wire)
    # Never looser than the server: what the wire refuses (an explicit null) the server still accepts.
    jsonschema.validate({"title": "x", "level": None}, full)
    for bad in ({"title": "x" * 11}, {"title": "x", "limit": 0}, {}, {"title": "x", "level": "c"}):
        for schema in (full, wire):
            try:
                jsonschema.validate(bad, schema)
            except jsonschema.ValidationError:
                continue
            raise AssertionError(f"{bad} accepted")


def test_output_compaction_accepts_every_valid_result():
    full = Report.model_json_schema()
    wire = compact_output_schema(full)
    assert "$defs" not in wire
    assert wire["properties"]["lines"] == {"type": "array"}
    assert wire["properties"]["best"]["type"] == ["null", "object"]
    result = Report(
        title="t",
        as_of=date(2026, 1, 1),
        lines=[Line(name="a", amount_minor=1)],
        totals={"USD": 1},
        best=None,
    ).model_dump(mode="json")
    jsonschema.validate(result, full)
    jsonschema.validate(result, wire)
    assert "required" not in wire
