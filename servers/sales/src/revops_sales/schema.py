"""The `sales` schema component: every `sales_*` table, created from the modules of `revops_sales.models`.

Every module of the `models` package is loaded, so a new entity needs only its module. A step that
adds tables re-runs `_create_sales_tables` (SQLAlchemy's `create_all` creates only the missing ones);
a step that adds columns to an existing table adds them with `revops_core.db.add_missing_columns`.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import Connection
from sqlalchemy.schema import CreateIndex
from sqlmodel import SQLModel

from revops_core.db import Component, Migration, add_missing_columns
from revops_core.schema import load_core_tables


def load_sales_models() -> None:
    """Import every module of `revops_sales.models` (each declares its tables on import)."""
    from revops_sales import models

    for module in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{module.name}")


def _create_sales_tables(connection: Connection) -> None:
    load_core_tables()  # deals reference core_company / core_contact
    load_sales_models()
    tables = [t for name, t in SQLModel.metadata.tables.items() if name.startswith("sales_")]
    SQLModel.metadata.create_all(connection, tables=tables)


def _crm_and_selling_tables(connection: Connection) -> None:
    _create_sales_tables(connection)
    add_missing_columns(connection, "sales_deal", ("source", "campaign"))


READ_INDEXES = (
    ("sales_deal", "ix_sales_deal_live", "sqlite"),
    ("sales_deal", "ix_sales_deal_live_pg", "postgresql"),
    ("sales_stage_move", "ix_sales_stage_move_deal_order", None),
)
"""Indexes of the pipeline-review reads at portfolio scale, and the one backend each is for (None:
every backend). New databases get them from create_all."""


def _read_indexes(connection: Connection) -> None:
    load_sales_models()
    for table, name, dialect in READ_INDEXES:
        if dialect not in (None, connection.dialect.name):
            continue
        index = next(i for i in SQLModel.metadata.tables[table].indexes if i.name == name)
        connection.execute(CreateIndex(index, if_not_exists=True))


SALES = Component(
    name="sales",
    steps=[
        Migration(1, "pipelines, stages, deals and stage moves", _create_sales_tables),
        Migration(
            2,
            "leads, line items, tasks, notes, forecasts, meetings, e-mail, sync; deal source and campaign",
            _crm_and_selling_tables,
        ),
        Migration(3, "indexes for pipeline reads at portfolio scale", _read_indexes),
    ],
)
