"""Generate docs/tools.md — the tool reference — from each server's live tools/list.

`python -m revops_suite.docgen` rewrites it; a test fails when it is out of date.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from revops_suite.servers import SERVER_NAMES, factory

OUTPUT = Path("docs/tools.md")
CONFIG_OUTPUT = Path("docs/configuration.md")
TIER_NOTE = {
    "read": "read",
    "write": "write",
    "destructive": "destructive (plan → confirm)",
    "critical": "critical (plan → confirm + human approval)",
}


async def _list(name: str, data_dir: Path) -> list[tuple[Any, Any, bool]]:
    """(tool with full schemas, its ToolDef, on by default) for every toolset, in registration order."""
    from revops_core.settings import Settings

    settings = Settings(
        data_dir=data_dir / name, database_url=None, redis_url=None, master_key=None, toolsets=["all"]
    )
    server = factory(name)(settings)
    try:
        full = {tool.name: tool for tool in await server.mcp.list_tools_full()}
        defaults = _default_toolsets(name, data_dir)
    finally:
        server.runtime.db.dispose()
    return [(full[t.name], t, t.toolset in defaults) for t in server.tools]


def _default_toolsets(name: str, data_dir: Path) -> set[str]:
    """The toolsets a server lists when no --toolsets is given."""
    from revops_core.settings import Settings

    settings = Settings(data_dir=data_dir / name, database_url=None, redis_url=None, master_key=None)
    server = factory(name)(settings)
    try:
        return {t.toolset for t in server.tools}
    finally:
        server.runtime.db.dispose()


def _param_rows(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = []
    for pname, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or " or ".join(
            str(p.get("type", p.get("$ref", "?")).split("/")[-1]) for p in prop.get("anyOf", [])
        )
        desc = str(prop.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{pname}` | {kind} | {'yes' if pname in required else 'no'} | {desc} |")
    return rows


def _output_rows(schema: dict[str, Any] | None) -> list[str]:
    rows = []
    for fname, prop in ((schema or {}).get("properties") or {}).items():
        desc = str(prop.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{fname}` | {desc} |")
    return rows


def render(tools_by_server: dict[str, list[tuple[Any, Any, bool]]]) -> str:
    out = [
        "# Tool reference",
        "",
        "Generated from each server's `tools/list` by `python -m revops_suite.docgen`; do not edit by hand.",
        "Tiers: read · write · destructive (returns a plan first; call again with `confirm=<plan_id>`) · "
        "critical (also needs a person's approval).",
        "Toolsets marked *default* are listed when a server starts without `--toolsets`; list the "
        "others by name (`--toolsets clients,support`) or all of them with `--toolsets all`.",
        "",
    ]
    for server, tools in tools_by_server.items():
        out += [f"## `revops-{server}` ({len(tools)} tools)", ""]
        renamed = [(defn.replaces, tool.name) for tool, defn, _ in tools if defn.replaces]
        if renamed:
            out += ["Tools that took over an older tool (or one of its actions):", ""]
            out += ["| was | now |", "|---|---|", *(f"| `{old}` | `{new}` |" for old, new in renamed), ""]
        by_toolset: dict[str, list[tuple[Any, Any]]] = {}
        default_of: dict[str, bool] = {}
        for tool, defn, is_default in tools:
            by_toolset.setdefault(defn.toolset, []).append((tool, defn))
            default_of[defn.toolset] = is_default
        for toolset, items in by_toolset.items():
            out += [f"### Toolset `{toolset}`{' (default)' if default_of[toolset] else ''}", ""]
            for tool, defn in items:
                out += [
                    f"#### `{tool.name}` — {defn.title or tool.name} · {TIER_NOTE.get(defn.tier, defn.tier)}",
                    "",
                    (tool.description or "").strip(),
                    "",
                ]
                rows = _param_rows(tool.input_schema)
                if rows:
                    out += ["| parameter | type | required | description |", "|---|---|---|---|", *rows, ""]
                results = _output_rows(tool.output_schema)
                if results:
                    out += ["| result field | description |", "|---|---|", *results, ""]
    return "\n".join(out).rstrip() + "\n"


def generate() -> str:
    async def collect() -> dict[str, list[tuple[Any, Any, bool]]]:
        with tempfile.TemporaryDirectory() as tmp:
            return {name: await _list(name, Path(tmp)) for name in SERVER_NAMES}

    return render(anyio.run(collect))


def _env_name(name: str, field: Any) -> str:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return " / ".join(f"`{c}`" for c in choices)
    return f"`REVOPS_{name.upper()}`"


def _default(name: str, field: Any) -> str:
    if field.default_factory is not None:
        return {"data_dir": "per-user data folder (platformdirs)", "actor": "`local:$USER`"}.get(
            name, "computed"
        )
    return "unset" if field.default is None else f"`{field.default}`"


def generate_configuration() -> str:
    """docs/configuration.md from the Settings model: one row per setting."""
    from revops_core.settings import Settings

    out = [
        "# Configuration",
        "",
        "Generated from `revops_core.settings.Settings` by `python -m revops_suite.docgen`.",
        "",
        "Precedence: environment variables > the TOML config file (`REVOPS_CONFIG`, else",
        "`<data dir>/config.toml`, keys are the setting names below) > defaults. Invalid values stop",
        "start-up with the variable named; `revops doctor` checks the whole set-up.",
        "",
        "| setting | environment | default | description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        desc = (field.description or "").replace("|", "\\|")
        out.append(f"| `{name}` | {_env_name(name, field)} | {_default(name, field)} | {desc} |")
    return "\n".join(out) + "\n"


def main() -> int:
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(generate())
    CONFIG_OUTPUT.write_text(generate_configuration())
    print(f"wrote {OUTPUT} and {CONFIG_OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
