"""The `cs` schema component: every `cs_*` table, created from the model modules below.

A model module may define `after_create(connection)` for what SQLModel cannot express
(full-text search tables, triggers); it runs after the tables exist.
"""

from __future__ import annotations

import importlib

from sqlalchemy import Connection
from sqlmodel import SQLModel

from revops_core.db import Component, Migration
from revops_core.schema import load_core_tables

CS_MODEL_MODULES = tuple(
    f"revops_cs.models.{name}"
    for name in (
        "clients",
        "usage",
        "health",
        "onboarding",
        "retention",
        "escalations",
        "expansion",
        "support",
        "feedback",
        "communication",
        "vendors",
        "reviews",
    )
)


def _create_cs_tables(connection: Connection) -> None:
    load_core_tables()  # cs tables reference core_company / core_contact
    modules = [importlib.import_module(name) for name in CS_MODEL_MODULES]
    tables = [t for name, t in SQLModel.metadata.tables.items() if name.startswith("cs_")]
    SQLModel.metadata.create_all(connection, tables=tables)
    for module in modules:
        hook = getattr(module, "after_create", None)
        if hook is not None:
            hook(connection)


def _usage_covering_indexes(connection: Connection) -> None:
    """Databases created before the indexes joined `models.usage` get them here (new ones already
    have them from step 1, hence IF NOT EXISTS)."""
    for name, columns in (
        ("ix_cs_usage_client_login", "client_id, event, occurred_at, user_ref"),
        ("ix_cs_usage_client_feature", "client_id, feature, occurred_at"),
    ):
        connection.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON cs_usage_event ({columns})")


def _latest_snapshot_index(connection: Connection) -> None:
    """(client_id, as_of, id) replaces (client_id, as_of), its prefix (new databases have it from
    step 1, hence IF [NOT] EXISTS)."""
    connection.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_cs_health_client_asof_id ON cs_health_snapshot (client_id, as_of, id)"
    )
    connection.exec_driver_sql("DROP INDEX IF EXISTS ix_cs_health_client_asof")


CS = Component(
    name="cs",
    steps=[
        Migration(1, "customer success tables", _create_cs_tables),
        Migration(2, "covering indexes for set-based health scoring", _usage_covering_indexes),
        Migration(3, "latest-snapshot index (client, as_of, id)", _latest_snapshot_index),
    ],
)
