"""The `sales` schema component: every `sales_*` table, created from the model modules below."""

from __future__ import annotations

import importlib

from sqlalchemy import Connection
from sqlmodel import SQLModel

from revops_core.db import Component, Migration
from revops_core.schema import load_core_tables

SALES_MODEL_MODULES = (
    "revops_sales.models.pipelines",
    "revops_sales.models.deals",
    "revops_sales.models.quotas",
)


def _create_sales_tables(connection: Connection) -> None:
    load_core_tables()  # deals reference core_company
    for name in SALES_MODEL_MODULES:
        importlib.import_module(name)
    tables = [t for name, t in SQLModel.metadata.tables.items() if name.startswith("sales_")]
    SQLModel.metadata.create_all(connection, tables=tables)


SALES = Component(
    name="sales", steps=[Migration(1, "pipelines, stages, deals and stage moves", _create_sales_tables)]
)
