"""Every whole-number argument of every tool of every server refuses `true` and `"7"`.

pydantic's lax mode reads `true` as 1 and `"7"` as 7, so `client_id=true` reached client 1. The
published schema says `"type": "integer"`; the server now holds callers to it (see
`revops_core.params.WholeNumber`). The sweep walks each tool's wire schema, so a tool added with a
bare `Field(ge=…)` integer fails here until it uses the vocabulary (`Id`, `Count`, `WholeNumber`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from revops_core.settings import Settings
from revops_core.testing import connect, error_of
from revops_suite.servers import SERVER_NAMES, factory

pytestmark = pytest.mark.anyio


def _is_integer(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def _integer_paths(
    schema: dict[str, Any], defs: dict[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    """Paths to every integer in an input schema: ("client_ids", 0), ("events", 0, "client_id")…"""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if _is_integer(schema) and path:
        yield path
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from _integer_paths(branch, defs, path)
    for name, sub in schema.get("properties", {}).items():
        yield from _integer_paths(sub, defs, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from _integer_paths(schema["items"], defs, (*path, 0))


def _arguments(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """The smallest arguments putting `value` at `path` (a list holds one item, an object one key)."""
    built: Any = value
    for step in reversed(path[1:]):
        built = [built] if isinstance(step, int) else {step: built}
    return {str(path[0]): built}


_BRANCHES = {"str", "int", "float", "bool", "list", "dict", "none"}


def _refused(result: Any, where: str, reason: str) -> bool:
    """A `validation_error` whose message names `where` (or a union branch of it) with `reason`."""
    if not result.is_error or error_of(result)["code"] != "validation_error":
        return False
    message = error_of(result)["message"]
    if not message.startswith("Invalid arguments for "):  # refused by the tool itself (a CSV header)
        return error_of(result)["field"] == where and reason in message
    message = message.partition(": ")[2]  # the SDK's argument check, field by field
    for problem in message.split("; "):
        loc, _, text = problem.partition(": ")
        # pydantic names the union branch it tried ("value.list[…].0.function-after[…]"): drop it.
        steps = [s for s in loc.split(".") if "[" not in s and s not in _BRANCHES]
        if ".".join(steps) == where and reason in text:
            return True
    return False


def _settings(tmp_path: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=None,
        redis_url=None,
        master_key=None,
        actor="test:suite",
        toolsets=["all"],
    )


@pytest.mark.parametrize("server_name", SERVER_NAMES)
async def test_every_integer_argument_refuses_booleans_and_strings(server_name: str, tmp_path: Any) -> None:
    server = factory(server_name)(_settings(tmp_path))
    accepted: list[str] = []
    checked = 0
    try:
        async with connect(server, "legacy") as client:
            for tool in (await client.list_tools()).tools:
                schema = tool.input_schema
                for path in _integer_paths(schema, schema.get("$defs", {})):
                    where = ".".join(str(p) for p in path)
                    for value in (True, False, "7"):
                        result = await client.call_tool(tool.name, _arguments(path, value))
                        checked += 1
                        if not _refused(result, where, "Value error, must be"):
                            accepted.append(f"{tool.name}({where}={value!r})")
    finally:
        server.runtime.db.dispose()
    assert accepted == [], f"{len(accepted)} of {checked} calls took a boolean or string as a number"
    if server_name == "cs":
        assert checked > 300  # the sweep really reached the CS tools' integers


def _string_paths(
    schema: dict[str, Any], defs: dict[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], bool]]:
    """Paths to every free string of an input schema, each with whether a pattern/format checks it."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    kind = schema.get("type")
    if path and (kind == "string" or (isinstance(kind, list) and "string" in kind)) and "enum" not in schema:
        # A pattern or a format (date, date-time) refuses the probe for its own reason.
        yield path, "pattern" in schema or "format" in schema
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from _string_paths(branch, defs, path)
    for name, sub in schema.get("properties", {}).items():
        yield from _string_paths(sub, defs, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from _string_paths(schema["items"], defs, (*path, 0))


# A CSV text is checked cell by cell by the tool (`revops_core.csv_input`), so the line and column
# can be named: these tools need their other arguments for the probe to reach that check.
_REACH_THE_BODY: dict[str, dict[str, Any]] = {
    "manage_churn_model": {"action": "import", "dataset": "d"},
    "import_crm_csv": {"entity": "company"},
}


@pytest.mark.parametrize("server_name", SERVER_NAMES)
async def test_every_text_argument_refuses_bidi_overrides(server_name: str, tmp_path: Any) -> None:
    """Names, titles, bodies, tokens: no string argument takes a right-to-left override (Trojan
    Source: "Invoice\u202efdp.exe" displays as "Invoiceexe.pdf")."""
    server = factory(server_name)(_settings(tmp_path))
    accepted: list[str] = []
    try:
        async with connect(server, "legacy") as client:
            for tool in (await client.list_tools()).tools:
                schema = tool.input_schema
                for path, shaped in _string_paths(schema, schema.get("$defs", {})):
                    where = ".".join(str(p) for p in path)
                    arguments = _REACH_THE_BODY.get(tool.name, {}) | _arguments(path, "ab\u202ecd")
                    result = await client.call_tool(tool.name, arguments)
                    if not _refused(result, where, "" if shaped else "bidirectional override (U+202E)"):
                        accepted.append(f"{tool.name}({where})")
    finally:
        server.runtime.db.dispose()
    assert accepted == [], accepted
