"""Compact JSON Schemas for `tools/list`, so a whole server fits in a model's context.

Pydantic's schemas are generous: a `title` on every property, `anyOf: [X, {"type": "null"}]` for
every optional value and a `$defs` entry for every nested model. We publish:

- input schemas with the same meaning, minus titles, with nullable unions folded into
  `"type": [X, "null"]` and a nested model used once written in place instead of behind a
  `$ref` — arguments are still validated against the full pydantic model. One bound is left to
  the server: the storage ceiling of ids and counts (`MAX_ID`, PostgreSQL INTEGER) is not
  published — no caller picks an id near it, and the server still refuses 2**31 as a
  `validation_error` naming the field — every other bound is published as the model has it;
- output schemas that keep every top-level field's name and type but collapse deeper structure to
  `object` / `array` of `object`, without descriptions or `required` (every field is always sent).
  Every result still validates against it (it is looser, never stricter); field names are chosen
  to read on their own, and the full shape with every description is in docs/tools.md.
"""

from __future__ import annotations

import copy
from typing import Any

from revops_core.params import MAX_COUNT, MAX_ID

_SIMPLE = {"string", "integer", "number", "boolean", "array", "object"}


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs") and isinstance(value, dict):
                out[key] = {name: _strip_titles(sub) for name, sub in value.items()}
            else:
                out[key] = _strip_titles(value)
        return out
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def _fold_nullable(node: Any) -> Any:
    """`anyOf: [{type: X, …}, {type: null}]` → `{type: [X, "null"], …}` where X is a plain type."""
    if isinstance(node, list):
        return [_fold_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _fold_nullable(v) for k, v in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        other = next(o for o in options if o != {"type": "null"})
        if isinstance(other.get("type"), str) and other["type"] in _SIMPLE and "$ref" not in other:
            merged = {k: v for k, v in node.items() if k != "anyOf"}
            merged.update(other)
            merged["type"] = [other["type"], "null"]
            if "enum" in merged and None not in merged["enum"]:
                merged["enum"] = [*merged["enum"], None]
            return merged
    return node


def _shallow(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A nested value reduced to its kind plus its description."""
    resolved = _resolve(schema, root)
    kinds = _kinds(resolved, root)
    out: dict[str, Any] = {"type": sorted(kinds)[0] if len(kinds) == 1 else sorted(kinds)} if kinds else {}
    if "array" in kinds:
        item_kinds = _kinds(_resolve(_array_items(resolved, root), root), root)
        if item_kinds and not (item_kinds & {"object", "array"}):
            out["items"] = {"type": sorted(item_kinds)[0] if len(item_kinds) == 1 else sorted(item_kinds)}
    if "enum" in resolved:
        out["enum"] = resolved["enum"]
    return out


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root.get("$defs", {}).get(ref.rsplit("/", 1)[1], {}), root)
    return schema


def _array_items(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    items: dict[str, Any]
    if "items" in schema:
        items = schema["items"]
        return items
    for option in schema.get("anyOf", []):
        option = _resolve(option, root)
        if "items" in option:
            items = option["items"]
            return items
    return {}


def _kinds(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    kinds: set[str] = set()
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        kinds |= _kinds(_resolve(option, root), root)
    if not kinds and ("properties" in schema or "additionalProperties" in schema):
        kinds.add("object")
    return kinds


def _refs(node: Any, counts: dict[str, int]) -> dict[str, int]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[1]
            counts[name] = counts.get(name, 0) + 1
        for value in node.values():
            _refs(value, counts)
    elif isinstance(node, list):
        for value in node:
            _refs(value, counts)
    return counts


def _replace_ref(node: Any, name: str, body: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_replace_ref(v, name, body) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("$ref") == f"#/$defs/{name}":
        # Keys beside the `$ref` (the field's own description) win over the model's.
        return {**body, **{k: v for k, v in node.items() if k != "$ref"}}
    return {k: _replace_ref(v, name, body) for k, v in node.items()}


def _inline_single_use(schema: dict[str, Any]) -> dict[str, Any]:
    """A `$defs` model referenced once is written where it is used: the same schema, without the
    `$ref` indirection and its name (shorter, and some clients resolve no `$ref`). A model used
    more than once, or by itself (recursive), stays in `$defs`."""
    while True:
        defs = schema.get("$defs", {})
        counts = _refs(schema, {})
        name = next((n for n in defs if counts.get(n) == 1 and not _refs(defs[n], {}).get(n)), None)
        if name is None:
            return schema
        body = defs.pop(name)
        schema = _replace_ref(schema, name, body)
        if not schema.get("$defs"):
            schema.pop("$defs", None)


def _drop_null_defaults(node: Any) -> Any:
    """`"default": null` says nothing an absent `required` entry does not."""
    if isinstance(node, dict):
        return {k: _drop_null_defaults(v) for k, v in node.items() if not (k == "default" and v is None)}
    if isinstance(node, list):
        return [_drop_null_defaults(v) for v in node]
    return node


def _omit_means_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional top-level parameter whose default is null is simply left out, so it is published
    without the `null` alternative. The published schema is then a little stricter than the server,
    never looser: arguments are still validated by the full model, which also accepts null."""
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if name in required or prop.get("default", ...) is not None:
            continue
        kinds = prop.get("type")
        if isinstance(kinds, list) and "null" in kinds:
            rest = [k for k in kinds if k != "null"]
            prop["type"] = rest[0] if len(rest) == 1 else rest
            if isinstance(prop.get("enum"), list):
                prop["enum"] = [v for v in prop["enum"] if v is not None]
    return schema


def _drop_storage_ceiling(node: Any) -> Any:
    """`"maximum": 2147483647` on every id says only "fits a database column" (see module doc)."""
    if isinstance(node, list):
        return [_drop_storage_ceiling(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _drop_storage_ceiling(v) for k, v in node.items()}
    kinds = out.get("type")
    integer = kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds)
    if integer and out.get("maximum") in (MAX_ID, MAX_COUNT):
        del out["maximum"]
    return out


def compact_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    folded = _fold_nullable(_strip_titles(_inline_single_use(copy.deepcopy(schema))))
    compact: dict[str, Any] = _drop_storage_ceiling(_drop_null_defaults(_omit_means_null(folded)))
    return compact


def compact_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    root = copy.deepcopy(schema)
    top = _resolve(root, root)
    out: dict[str, Any] = {"type": "object"}
    props = top.get("properties", {})
    # No `required`: every field of a result model is always serialised, so listing them adds
    # length and no information.
    out["properties"] = {name: _shallow(prop, root) for name, prop in props.items()}
    compact: dict[str, Any] = _fold_nullable(_strip_titles(out))
    return compact
