"""Hypothesis strategies from a tool's JSON input schema (the subset pydantic emits).

Mostly schema-valid values, so the fuzzer reaches tool bodies, plus a share of type-violating
values, so the validation path is exercised too.
"""

from __future__ import annotations

import string
from datetime import date
from typing import Any

from hypothesis import strategies as st

_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_.@'\"é<>%;", max_size=40)
_JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TEXT, st.just([]))


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.split("/")[-1]], root)
    return schema


def from_schema(
    schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0
) -> st.SearchStrategy[Any]:
    root = root or schema
    schema = _resolve(schema, root)
    if depth > 3:
        return st.none()
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, root, depth + 1) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return st.dates(min_value=date(2019, 1, 1), max_value=date.today()).map(date.isoformat)
        if fmt == "date-time":
            return st.dates(min_value=date(2019, 1, 1), max_value=date.today()).map(
                lambda d: f"{d}T12:00:00Z"
            )
        if fmt == "email":
            return st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.com", fullmatch=True)
        lo, hi = schema.get("minLength", 0), min(schema.get("maxLength", 40), 60)
        return st.text(
            alphabet=string.ascii_letters + string.digits + " -_.@é", min_size=lo, max_size=max(lo, hi)
        )
    if kind == "integer":
        lo = schema.get(
            "minimum",
            schema.get("exclusiveMinimum", -(10**6) - 1) + 1 if "exclusiveMinimum" in schema else -(10**6),
        )
        hi = schema.get("maximum", 10**6)
        return st.integers(min_value=int(lo), max_value=int(hi))
    if kind == "number":
        lo = schema.get("minimum", -1e6)
        hi = schema.get("maximum", 1e6)
        return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}), root, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" or "properties" in schema:
        return object_from_schema(schema, root, depth + 1)
    return _JUNK


def object_from_schema(
    schema: dict[str, Any], root: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    req = {k: from_schema(v, root, depth) for k, v in props.items() if k in required}
    opt = {k: from_schema(v, root, depth) for k, v in props.items() if k not in required}
    return st.fixed_dictionaries(req, optional=opt)


def tool_arguments(input_schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments for a tool: 85 % schema-valid, 15 % with one field replaced by junk."""
    valid = object_from_schema(input_schema, input_schema)
    names = list(input_schema.get("properties", {}))
    if not names:
        return valid
    corrupted = st.tuples(valid, st.sampled_from(names), _JUNK).map(lambda t: {**t[0], t[1]: t[2]})
    return st.one_of(valid, valid, valid, valid, valid, corrupted)
