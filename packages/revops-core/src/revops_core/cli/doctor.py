"""`revops doctor`: start-up validation, one line per check with ok / warn / error and what to do.

Exit 1 when any check is an error, so it can gate a deployment.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from revops_core.cli.common import EXIT_FAILED, EXIT_OK, print_json

if TYPE_CHECKING:
    from revops_core.db import Database
    from revops_core.settings import Settings
    from revops_core.vendor_kit import VendorSpec

Status = Literal["ok", "warn", "error"]
REQUIRED_MODULES = (
    "mcp", "pydantic", "pydantic_settings", "sqlmodel", "psycopg", "redis", "httpx", "structlog",
    "cryptography", "tenacity", "platformdirs", "prometheus_client", "rfc8785", "uvicorn",
)  # fmt: skip
SERVERS = ("sales", "marketing", "cs")


@dataclass
class Check:
    name: str
    status: Status
    message: str
    hint: str | None = None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="Check the installation and configuration; exit 1 on errors.")
    doctor.add_argument("--json", action="store_true", help="Machine-readable output.")
    doctor.set_defaults(func=doctor_cmd)


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    # Reachable when an older interpreter runs the console script of a mis-built environment.
    if sys.version_info >= (3, 11):  # noqa: UP036
        return Check("python", "ok", f"Python {version}")
    return Check("python", "error", f"Python {version} is too old", "Install Python 3.11 or newer.")


def check_dependencies() -> Check:
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return Check(
            "dependencies", "error", f"Not importable: {', '.join(missing)}", "Reinstall: `uv sync --frozen`."
        )
    return Check("dependencies", "ok", f"{len(REQUIRED_MODULES)} required packages importable")


def installed_servers() -> list[str]:
    return [s for s in SERVERS if importlib.util.find_spec(f"revops_{s}") is not None]


def check_key_material(settings: Settings) -> Check:
    """The vault's key: REVOPS_MASTER_KEY parses, or the key file exists with mode 0600. Never creates one."""
    from revops_core.errors import RevOpsError
    from revops_core.vault import KEY_FILE_NAME, load_keyring

    if settings.master_key is not None:
        try:
            ring = load_keyring(settings)
        except RevOpsError as err:
            return Check("key_material", "error", err.message, err.hint)
        return Check("key_material", "ok", f"REVOPS_MASTER_KEY holds {len(ring.keys)} key(s)")
    path = settings.data_dir / KEY_FILE_NAME
    if not path.exists():
        return Check(
            "key_material",
            "warn",
            f"No vault key file at {path} yet",
            "It is created (mode 0600) on first use; back it up, or set REVOPS_MASTER_KEY for servers.",
        )
    if os.name == "posix" and path.stat().st_mode & 0o077:
        mode = oct(path.stat().st_mode & 0o777)
        return Check("key_material", "error", f"{path} has mode {mode}", f"Run `chmod 600 {path}`.")
    try:
        ring = load_keyring(settings)
    except RevOpsError as err:
        return Check("key_material", "error", err.message, err.hint)
    return Check("key_material", "ok", f"Key file {path} (0600, {len(ring.keys)} key(s))")


def check_database(db: Database) -> Check:
    from sqlalchemy import text

    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means unreachable; the URL itself is never printed
        return Check(
            "database",
            "error",
            f"{db.dialect} unreachable ({type(exc).__name__})",
            "Check DATABASE_URL, that the server runs and accepts this user.",
        )
    return Check("database", "ok", f"{db.dialect} reachable")


def check_migrations(db: Database) -> Check:
    from revops_core.db import pending_migrations

    pending = pending_migrations(db)
    if not pending:
        return Check("migrations", "ok", "Schema up to date")
    names = ", ".join(f"{c} v{m.version}" for c, m in pending)
    if db.settings.should_auto_migrate:
        return Check(
            "migrations",
            "warn",
            f"Pending: {names}",
            "Applied automatically at start, or run `revops db upgrade`.",
        )
    return Check(
        "migrations", "error", f"Pending: {names}", "Run `revops db upgrade` before starting the servers."
    )


def check_redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", "ok", "Not configured (single-process limits and locks)")
    import redis

    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # connection or auth failure
        return Check("redis", "error", f"Redis unreachable ({type(exc).__name__})", "Check REDIS_URL.")
    return Check("redis", "ok", "Redis reachable")


def vendor_specs(server: str) -> list[VendorSpec]:
    """The `VendorSpec` of every vendor client a server ships (`SPEC` in `revops_<s>.vendors.*`)."""
    import importlib
    import pkgutil

    from revops_core.vendor_kit import VendorSpec

    try:
        package = importlib.import_module(f"revops_{server}.vendors")
    except ImportError:
        return []
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        spec = getattr(importlib.import_module(f"{package.__name__}.{info.name}"), "SPEC", None)
        if isinstance(spec, VendorSpec):
            found.append(spec)
    return found


def check_data_dir(settings: Settings) -> Check:
    """The data dir (SQLite database, vault key file) should be 0700: created so, never chmod-ed by us."""
    path = settings.data_dir
    if not path.exists():
        return Check("data_dir", "ok", f"{path} is created (0700) on first use")
    mode = path.stat().st_mode & 0o777
    if os.name == "posix" and mode & 0o077:
        return Check(
            "data_dir",
            "warn",
            f"{path} has mode {oct(mode)}: other users can list it",
            f"Run `chmod 700 {path}`.",
        )
    return Check("data_dir", "ok", f"{path} ({mode:04o})")


def check_vault_keys(db: Database, settings: Settings) -> list[Check]:
    """Decrypt-test one stored secret per key id (its data key is unwrapped, no value is opened).

    A key file replaced by another valid key or a key dropped from REVOPS_MASTER_KEY passes the
    key-material check but leaves every secret it wrapped unreadable: that is an error here.
    Read-only: creates no key file and writes no audit entry.
    """
    from revops_core.errors import RevOpsError
    from revops_core.vault import Vault

    try:
        probes = Vault(db, settings).probe_keys()
    except RevOpsError as err:
        return [Check("vault_keys", "error", err.message, err.hint)]
    if not probes:
        return [Check("vault_keys", "ok", "No secrets stored yet")]
    checks = []
    for p in probes:
        where = f"on {p.tested} ({p.secrets} secret(s) under this key)"
        if p.error is None:
            checks.append(Check(f"vault_key:{p.key_id}", "ok", f"Decrypt test passed {where}"))
        else:
            checks.append(
                Check(f"vault_key:{p.key_id}", "error", f"Decrypt test failed {where}: {p.error}", p.hint)
            )
    return checks


def check_vendor_credentials(
    db: Database, settings: Settings, failed_keys: frozenset[str] = frozenset()
) -> list[Check]:
    """Vendors are optional (tools work on local data), so a missing credential is a warning.

    Reads entry metadata only (never a value), picking the entry the vendor kit would use: the
    server's own, else the suite-wide one, whole. An entry whose key id failed the decrypt test
    (`failed_keys`) is an error: every call would fail.
    """
    from revops_core.vault import Vault
    from revops_core.vendor_kit import SUITE_WIDE

    stored = Vault(db, settings).list()
    checks = []
    for server in installed_servers():
        for spec in vendor_specs(server):
            entries = {e.server: e for e in stored if e.provider == spec.provider and e.name == "default"}
            entry = entries.get(server, entries.get(SUITE_WIDE))
            name = f"credentials:{server}:{spec.provider}"
            if entry is not None and entry.key_id in failed_keys:
                checks.append(
                    Check(
                        name,
                        "error",
                        f"{spec.title} credential stored but its key failed the decrypt test "
                        f"({entry.key_id})",
                        f"See the vault_key:{entry.key_id} check.",
                    )
                )
                continue
            missing = [f for f in spec.fields if entry is None or f not in entry.fields]
            if missing:
                detail = "" if entry is None else f" (missing {', '.join(missing)})"
                example = " ".join(f"{f}=-" for f in missing)
                checks.append(
                    Check(
                        name,
                        "warn",
                        f"{spec.title} not configured{detail}; {server} uses local data",
                        f"`revops vault set {spec.provider} {example}` (values read from stdin).",
                    )
                )
            else:
                checks.append(Check(name, "ok", f"{spec.title} credential stored"))
    return checks


def run_checks() -> list[Check]:
    """Every check, in order; later checks are skipped when what they need is broken."""
    from revops_core.cli.common import load_settings
    from revops_core.db import Database
    from revops_core.errors import RevOpsError

    checks = [check_python(), check_dependencies()]
    servers = installed_servers()
    checks.append(
        Check("servers", "ok", f"Installed: {', '.join(servers)}")
        if servers
        else Check(
            "servers", "warn", "No server package installed", "Install revops-sales, -marketing or -cs."
        )
    )
    try:
        settings = load_settings()
    except RevOpsError as err:
        return [*checks, Check("settings", "error", err.message, err.hint)]
    checks.append(Check("settings", "ok", f"Valid (tenant {settings.tenant}, data dir {settings.data_dir})"))
    checks.append(check_data_dir(settings))
    key_material = check_key_material(settings)
    checks.append(key_material)
    db = Database(settings)
    try:
        checks.append(check_database(db))
        if checks[-1].status == "ok":
            checks.append(check_migrations(db))
            # Reading the vault needs the schema and the key.
            if checks[-1].status == "ok" and key_material.status != "error":
                key_checks = check_vault_keys(db, settings)
                checks.extend(key_checks)
                failed = frozenset(
                    c.name.removeprefix("vault_key:") for c in key_checks if c.status == "error"
                )
                checks.extend(check_vendor_credentials(db, settings, failed))
        checks.append(check_redis(settings))
    finally:
        db.dispose()
    return checks


def doctor_cmd(args: argparse.Namespace) -> int:
    checks = run_checks()
    errors = sum(c.status == "error" for c in checks)
    if args.json:
        print_json({"ok": errors == 0, "checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            line = f"[{c.status:<5}] {c.name:<32} {c.message}"
            print(line + (f"\n        → {c.hint}" if c.hint and c.status != "ok" else ""))
        warns = sum(c.status == "warn" for c in checks)
        print(f"{len(checks)} checks: {errors} error(s), {warns} warning(s).")
    return EXIT_FAILED if errors else EXIT_OK
