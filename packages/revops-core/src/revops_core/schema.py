"""The `core` schema component: every `core_*` table of revops_core."""

from __future__ import annotations

import importlib

from sqlalchemy import Connection, Table, text
from sqlmodel import SQLModel

from revops_core.db import Component, Migration
from revops_core.logs import get_logger

_log = get_logger(__name__)

# Modules that define core_* tables; importing them registers the tables on SQLModel.metadata.
CORE_TABLE_MODULES = (
    "revops_core.models",
    "revops_core.audit",
    "revops_core.vault",
    "revops_core.guards",
    "revops_core.events",
    "revops_core.apikeys",
)


def load_core_tables() -> list[Table]:
    for module in CORE_TABLE_MODULES:
        importlib.import_module(module)
    return [t for name, t in SQLModel.metadata.tables.items() if name.startswith("core_")]


def _create_core_tables(connection: Connection) -> None:
    SQLModel.metadata.create_all(connection, tables=load_core_tables())


def _unique_api_key_names(connection: Connection) -> None:
    """One name per API key (the name is the audited actor, `key:<name>`).

    Databases from before this step may hold duplicates. Per name, the oldest active key keeps it
    (else the oldest key); every other key is renamed `<name>#<id>` (`-2`, `-3`… if that is taken),
    so no working key stops working and each key's future audit entries name it alone. Renames are
    logged (not audited: the audit log's own schema may still be behind at this step). New
    databases already have the index from step 1, hence IF NOT EXISTS.
    """
    rows = connection.execute(
        text("SELECT id, name, revoked_at IS NULL AS active FROM core_api_key ORDER BY id")
    ).all()
    taken = {str(r.name) for r in rows}
    groups: dict[str, list[tuple[int, bool]]] = {}
    for r in rows:
        groups.setdefault(str(r.name), []).append((int(r.id), bool(r.active)))
    for name, keys in groups.items():
        if len(keys) < 2:
            continue
        keeper = next((key_id for key_id, active in keys if active), keys[0][0])
        for key_id, _ in keys:
            if key_id == keeper:
                continue
            base = f"{name[: 99 - len(str(key_id))]}#{key_id}"  # the column holds 100 characters
            candidate, n = base, 1
            while candidate in taken:
                n += 1
                candidate = f"{base[: 99 - len(str(n))]}-{n}"
            taken.add(candidate)
            connection.execute(
                text("UPDATE core_api_key SET name = :new WHERE id = :id"), {"new": candidate, "id": key_id}
            )
            _log.warning("apikey.renamed_duplicate", key_id=key_id, old_name=name, new_name=candidate)
    connection.exec_driver_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_core_api_key_name ON core_api_key (name)"
    )


CORE = Component(
    name="core",
    steps=[
        Migration(1, "core tables", _create_core_tables),
        Migration(2, "one name per API key", _unique_api_key_names),
    ],
)
