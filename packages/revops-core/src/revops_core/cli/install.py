"""`revops install claude --server sales|marketing|cs|all`: add the servers to Claude Desktop's config.

Idempotent; writes a timestamped backup before changing an existing file; keeps every other entry;
refuses (and writes nothing) when the existing file is not valid JSON. The config holds other
servers' secrets: the new file keeps the old one's mode (0600 for a new file), as does the backup,
and both are written through a private temporary file, so no byte is ever readable by others.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revops_core.cli.common import EXIT_OK

SERVERS = ("sales", "marketing", "cs")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install = sub.add_parser("install", help="Register the servers with an MCP client.")
    clients = install.add_subparsers(dest="client", required=True)
    claude = clients.add_parser("claude", help="Claude Desktop (claude_desktop_config.json).")
    claude.add_argument("--server", required=True, choices=[*SERVERS, "all"], help="Which server(s) to add.")
    claude.add_argument(
        "--config", type=Path, help="Config file (default: Claude Desktop's for this platform)."
    )
    claude.set_defaults(func=install_claude_cmd)


def claude_config_path(platform: str | None = None, env: dict[str, str] | None = None) -> Path:
    """Where Claude Desktop reads its config on this platform."""
    platform = platform or sys.platform
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if platform.startswith("win"):
        appdata = env.get("APPDATA") or str(home / "AppData" / "Roaming")
        return Path(appdata) / "Claude" / "claude_desktop_config.json"
    config_home = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(config_home) / "Claude" / "claude_desktop_config.json"


def server_entry(server: str) -> dict[str, Any]:
    """How Claude Desktop starts one server: the console script by absolute path, else `python -m`."""
    script = shutil.which(f"revops-{server}")
    entry: dict[str, Any] = (
        {"command": str(Path(script).resolve()), "args": []}
        if script
        else {"command": sys.executable, "args": ["-m", f"revops_{server}"]}
    )
    data_dir = os.environ.get("REVOPS_DATA_DIR")
    if data_dir:
        entry["env"] = {"REVOPS_DATA_DIR": str(Path(data_dir).resolve())}
    return entry


def merge_config(existing: dict[str, Any], servers: list[str]) -> dict[str, Any]:
    """`existing` with our entries set under mcpServers; everything else untouched."""
    from revops_core.errors import ValidationFailed

    merged = dict(existing)
    entries = merged.get("mcpServers", {})
    if not isinstance(entries, dict):
        raise ValidationFailed(
            "The config's mcpServers is not an object.",
            field="mcpServers",
            hint="Fix the file by hand first.",
        )
    entries = dict(entries)
    for server in servers:
        entries[f"revops-{server}"] = server_entry(server)
    merged["mcpServers"] = entries
    return merged


def install_claude(
    config: Path, servers: list[str], *, now: datetime | None = None
) -> tuple[bool, Path | None]:
    """Write the merged config. Returns (changed, backup path). Raises ValidationFailed on bad JSON."""
    from revops_core.errors import ValidationFailed

    existing: dict[str, Any] = {}
    if config.exists():
        try:
            existing = json.loads(config.read_text(encoding="utf-8") or "{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationFailed(
                f"{config} is not valid JSON ({type(exc).__name__}); nothing was written.",
                field="config",
                hint="Fix or move the file, then run the command again.",
            ) from None
        if not isinstance(existing, dict):
            raise ValidationFailed(
                f"{config} does not hold a JSON object; nothing was written.", field="config"
            )
    merged = merge_config(existing, servers)
    if config.exists() and merged == existing:
        return False, None
    backup = None
    config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the mode applies only when created
    mode = stat.S_IMODE(config.stat().st_mode) if config.exists() else 0o600
    if config.exists():
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
        backup = config.with_name(f"{config.name}.{stamp}.bak")
        _write_private(backup, config.read_bytes(), mode, replace=False)
    _write_private(config, (json.dumps(merged, indent=2) + "\n").encode(), mode, replace=True)
    return True, backup


def _write_private(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Write `path` atomically with `mode`: a 0600 temporary file, fsync, chmod, rename.

    Claude never reads a half-written file and nobody else can read it while it is written.
    Without `replace`, an existing `path` is never overwritten (FileExistsError).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def install_claude_cmd(args: argparse.Namespace) -> int:
    servers = list(SERVERS) if args.server == "all" else [args.server]
    config = args.config or claude_config_path()
    changed, backup = install_claude(config, servers)
    names = ", ".join(f"revops-{s}" for s in servers)
    if not changed:
        print(f"{config} already has {names}; nothing changed.")
        return EXIT_OK
    print(f"Added {names} to {config}.")
    if backup:
        print(f"Previous version saved as {backup}.")
    print("Restart Claude Desktop to load the servers.")
    return EXIT_OK
