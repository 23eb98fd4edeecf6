"""The `core` schema component: every `core_*` table of revops_core."""

from __future__ import annotations

import importlib

from sqlalchemy import Connection, Table
from sqlmodel import SQLModel

from revops_core.db import Component, Migration

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


CORE = Component(name="core", steps=[Migration(1, "core tables", _create_core_tables)])
