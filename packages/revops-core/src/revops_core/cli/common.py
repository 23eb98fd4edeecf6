"""What every `revops` subcommand shares: settings, the database, output, confirmation, exit codes."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revops_core.db import Database
    from revops_core.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem (tampered audit log, doctor errors)
EXIT_USAGE = 2  # bad input or configuration; nothing changed


def load_settings() -> Settings:
    """Settings from the environment / config file (validation errors surface as ConfigurationError)."""
    from pydantic import ValidationError

    from revops_core.errors import ConfigurationError
    from revops_core.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        # Aliased settings report their variable name (DATABASE_URL); the rest are REVOPS_<FIELD>.
        variable = name if name.isupper() else f"REVOPS_{name.upper()}"
        raise ConfigurationError(
            f"Invalid setting {variable}: {first['msg']}.",
            field=name,
            hint=f"Fix {variable} (environment or config.toml); `revops doctor` checks everything.",
        ) from None


def open_db(settings: Settings, *, migrate: bool = True) -> Database:
    """The database, with the schema checked (auto-migrated on the embedded default)."""
    from revops_core.db import Database, ensure_schema

    db = Database(settings)
    if migrate:
        ensure_schema(db)
    return db


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, sort_keys=True))


def confirm(prompt: str, *, assume_yes: bool) -> bool:
    """Ask on the terminal; `--yes` skips the question. No terminal and no --yes means no."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"{prompt} — refusing without a terminal; pass --yes to confirm.", file=sys.stderr)
        return False
    answer = input(f"{prompt} Type 'yes' to continue: ")
    return answer.strip().lower() == "yes"


def local_user() -> str:
    """The person at this terminal, as recorded in the audit log."""
    import getpass

    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "local:unknown"
