"""The `cs` schema component: every `cs_*` table, created from the model modules below.

A model module may define `after_create(connection)` for what SQLModel cannot express
(full-text search tables, triggers); it runs after the tables exist.
"""

from __future__ import annotations

import importlib

from sqlalchemy import Connection
from sqlmodel import SQLModel

from revops_core.db import Component, Migration, add_missing_columns
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


_POINTER_COLUMNS = ("health_snapshot_id", "health_as_of", "health_score", "health_band")
# A snapshot moves the pointer only past the one it holds, compared on the client row's own
# columns: on PostgreSQL two concurrent writers serialise on that row and the second re-checks the
# condition against the first's committed values, so the pointer ends on the true latest.
_NEWER = (
    "(health_snapshot_id IS NULL OR health_as_of < {n}.as_of"
    " OR (health_as_of = {n}.as_of AND health_snapshot_id < {n}.id))"
)
_SQLITE_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS cs_health_snapshot_latest AFTER INSERT ON cs_health_snapshot
BEGIN
  UPDATE cs_client SET health_snapshot_id = NEW.id, health_as_of = NEW.as_of,
    health_score = NEW.score, health_band = NEW.band
  WHERE id = NEW.client_id AND {_NEWER.format(n="NEW")};
END
"""
# One statement-level trigger with a transition table: a COPY or executemany of 10 000 snapshots
# runs one set-based UPDATE, not 10 000.
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION cs_health_snapshot_latest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE cs_client SET health_snapshot_id = s.id, health_as_of = s.as_of,
    health_score = s.score, health_band = s.band
  FROM (SELECT DISTINCT ON (client_id) id, client_id, as_of, score, band FROM new_rows
        ORDER BY client_id, as_of DESC, id DESC) AS s
  WHERE cs_client.id = s.client_id AND {_NEWER.format(n="s")};
  RETURN NULL;
END $$
"""
_PG_TRIGGER = """
CREATE TRIGGER cs_health_snapshot_latest AFTER INSERT ON cs_health_snapshot
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs_health_snapshot_latest()
"""
_BACKFILL = """
UPDATE cs_client SET health_snapshot_id = s.id, health_as_of = s.as_of, health_score = s.score,
  health_band = s.band
FROM (SELECT h.id, h.client_id, h.as_of, h.score, h.band FROM cs_health_snapshot h
      WHERE h.id = (SELECT l.id FROM cs_health_snapshot l WHERE l.client_id = h.client_id
                    ORDER BY l.as_of DESC, l.id DESC LIMIT 1)) AS s
WHERE cs_client.id = s.client_id
"""


def _latest_health_pointer(connection: Connection) -> None:
    """Each client's latest snapshot on its own row, kept by a trigger (see `models.clients`)."""
    importlib.import_module("revops_cs.models.clients")  # the columns' types come from the model
    add_missing_columns(connection, "cs_client", _POINTER_COLUMNS)
    connection.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_cs_client_tenant_band ON cs_client (tenant, health_band, id)"
    )
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_PG_FUNCTION)
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS cs_health_snapshot_latest ON cs_health_snapshot")
        connection.exec_driver_sql(_PG_TRIGGER)
    else:
        connection.exec_driver_sql(_SQLITE_TRIGGER)
    connection.exec_driver_sql(_BACKFILL)


CS = Component(
    name="cs",
    steps=[
        Migration(1, "customer success tables", _create_cs_tables),
        Migration(2, "covering indexes for set-based health scoring", _usage_covering_indexes),
        Migration(3, "latest-snapshot index (client, as_of, id)", _latest_snapshot_index),
        Migration(4, "latest health snapshot on the client row, kept by a trigger", _latest_health_pointer),
    ],
)
