"""Compact wire schemas: same meaning for inputs, looser-never-stricter for outputs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import jsonschema
import pydantic
import pytest
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


class Step(BaseModel):
    days: int = Field(ge=0, le=30, description="Days.")


class Tree(BaseModel):
    label: str = Field(description="Label.")
    children: list[Tree] = Field(default_factory=list, description="Sub-trees.")


class Plan(BaseModel):
    first: Step | None = Field(default=None, description="First step.")
    steps: list[Step] = Field(description="Steps.")
    shared_a: Line = Field(description="A.")
    shared_b: Line = Field(description="B.")
    tree: Tree | None = Field(default=None, description="A tree.")


def test_a_model_used_once_is_written_in_place() -> None:
    class Once(BaseModel):
        only: Step | None = Field(default=None, description="The step.")

    full = Once.model_json_schema()
    wire = compact_input_schema(full)
    assert "$defs" not in wire
    # Folded like any optional parameter: the step's own schema, its field's description, no null.
    assert wire["properties"]["only"] == {
        "description": "The step.",
        "properties": {"days": {"description": "Days.", "maximum": 30, "minimum": 0, "type": "integer"}},
        "required": ["days"],
        "type": "object",
    }
    for good, bad in (({}, {"only": {"days": 31}}), ({"only": {"days": 3}}, {"only": {}})):
        jsonschema.validate(good, wire)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, wire)


def test_shared_and_recursive_models_stay_in_defs() -> None:
    wire = compact_input_schema(Plan.model_json_schema())
    assert set(wire["$defs"]) == {"Step", "Line", "Tree"}
    assert wire["properties"]["shared_a"]["$ref"] == "#/$defs/Line"
    jsonschema.Draft202012Validator.check_schema(wire)
    args = {
        "steps": [{"days": 1}],
        "shared_a": {"name": "a", "amount_minor": 1},
        "shared_b": {"name": "b", "amount_minor": 2},
        "tree": {"label": "r", "children": [{"label": "c"}]},
    }
    jsonschema.validate(args, wire)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**args, "steps": [{"days": 99}]}, wire)


def test_the_storage_ceiling_of_an_id_is_left_to_the_server() -> None:
    from revops_core.params import MAX_ID, Count, Id

    class Ids(BaseModel):
        client_id: int = Id("client", see="list_clients")
        seats: int = Count("Seats.", le=500)
        ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(description="Ids.")

    full = Ids.model_json_schema()
    wire = compact_input_schema(full)
    # Only the column's ceiling goes; the floor and every bound a tool chose stay published.
    assert wire["properties"]["client_id"] == {
        "description": "Client id (see list_clients).",
        "minimum": 1,
        "type": "integer",
    }
    assert wire["properties"]["ids"]["items"] == {"minimum": 1, "type": "integer"}
    assert wire["properties"]["seats"]["maximum"] == 500
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"client_id": 0, "seats": 1, "ids": []}, wire)
    with pytest.raises(pydantic.ValidationError):  # the server still refuses 2**31
        Ids(client_id=MAX_ID + 1, seats=1, ids=[])
