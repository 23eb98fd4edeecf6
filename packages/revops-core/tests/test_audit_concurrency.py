"""Four processes appending at once still produce one valid chain (no fork, no lost entry).

Each worker is a separate interpreter (multiprocessing "spawn") with its own `Database`, appending
one entry per write transaction — the way several server processes share one audit log.
"""

from __future__ import annotations

import json
import multiprocessing
import runpy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from revops_core.audit import AuditEntry, verify

PROCESSES = 4
APPENDS = 500
WORKER_RUN_NAME = "__revops_audit_worker__"

# 2000 separate write transactions across 4 interpreters: tens of seconds on a busy machine.
pytestmark = pytest.mark.slow


def _worker(data_dir: str, database_url: str | None, worker: int, count: int) -> None:
    from revops_core.audit import append
    from revops_core.db import Database
    from revops_core.settings import Settings

    settings = Settings(
        data_dir=Path(data_dir),
        database_url=database_url,
        redis_url=None,
        master_key=None,
        auto_migrate=False,
    )
    db = Database(settings)
    try:
        for i in range(count):
            with db.session(write=True) as s:
                append(s, actor=f"worker:{worker}", action="concurrency.append", details={"i": i})
    finally:
        db.dispose()


def test_concurrent_appends_from_four_processes_form_one_chain(db, settings) -> None:
    # pytest imports test modules under names a spawned child cannot import, so each child runs
    # this file by path (runpy) and the guard at the bottom calls `_worker`.
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=runpy.run_path,
            args=(__file__,),
            kwargs={
                "run_name": WORKER_RUN_NAME,
                "init_globals": {
                    "WORKER_ARGS": (str(settings.data_dir), settings.database_url, worker, APPENDS)
                },
            },
        )
        for worker in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    report = verify(db)
    assert report.ok, report.message
    assert (report.entries_checked, report.head_seq) == (PROCESSES * APPENDS, PROCESSES * APPENDS)
    with db.session() as s:
        per_worker = dict(
            s.exec(select(AuditEntry.actor, func.count()).group_by(AuditEntry.actor)).all()  # type: ignore[arg-type]
        )
        orders = {
            w: [
                json.loads(d)["i"]
                for d in s.exec(
                    select(AuditEntry.details)
                    .where(AuditEntry.actor == f"worker:{w}")
                    .order_by(AuditEntry.seq)
                )
            ]
            for w in range(PROCESSES)
        }
    assert per_worker == {f"worker:{w}": APPENDS for w in range(PROCESSES)}
    # Each worker's own appends are in its program order: the chain order is the commit order.
    assert all(order == list(range(APPENDS)) for order in orders.values())


if __name__ == WORKER_RUN_NAME:
    worker_args: Any = globals()["WORKER_ARGS"]
    _worker(*worker_args)
