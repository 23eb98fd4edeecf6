"""`revops db upgrade | status`: apply and inspect schema migrations."""

from __future__ import annotations

import argparse
from typing import Any

from revops_core.cli.common import EXIT_FAILED, EXIT_OK, load_settings, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="Database schema: upgrade, status.")
    cmds = db.add_subparsers(dest="db_command", required=True)
    up = cmds.add_parser("upgrade", help="Apply every pending migration (idempotent).")
    up.set_defaults(func=upgrade_cmd)
    st = cmds.add_parser("status", help="Applied and pending migrations per component.")
    st.add_argument("--json", action="store_true", help="Machine-readable output.")
    st.set_defaults(func=status_cmd)


def upgrade_cmd(args: argparse.Namespace) -> int:
    from revops_core.db import Database, upgrade

    db = Database(load_settings())
    try:
        applied = upgrade(db)
    finally:
        db.dispose()
    for line in applied:
        print(f"applied {line}")
    print(f"{len(applied)} migration step(s) applied." if applied else "Schema is up to date.")
    return EXIT_OK


def status_cmd(args: argparse.Namespace) -> int:
    """Exit 1 when steps are pending, so scripts (and Compose) can gate on it."""
    from revops_core.db import Database, current_versions, discover_components, pending_migrations

    db = Database(load_settings())
    try:
        components = discover_components()
        have = current_versions(db)
        pending = pending_migrations(db, components)
    finally:
        db.dispose()
    rows: list[dict[str, Any]] = [
        {
            "component": c.name,
            "applied": have.get(c.name, 0),
            "head": c.head,
            "pending": [f"v{m.version}: {m.description}" for name, m in pending if name == c.name],
        }
        for c in components
    ]
    if args.json:
        print_json({"dialect": db.dialect, "components": rows, "up_to_date": not pending})
    else:
        print(f"database: {db.dialect}")
        for r in rows:
            state = "up to date" if not r["pending"] else f"{len(r['pending'])} pending"
            print(f"  {r['component']:<12} v{r['applied']} / v{r['head']}  {state}")
            for step in r["pending"]:
                print(f"      pending {step}")
        if pending:
            print("Run `revops db upgrade` to apply the pending steps.")
    return EXIT_FAILED if pending else EXIT_OK
