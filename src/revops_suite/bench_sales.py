"""Sales work at size for `make bench`: the forecast of 5 000 open deals with 10 000 Monte Carlo
runs, and the pipeline-review reads over 50 000 deals (the demo generator's two years of history).

The real `revops-sales` server is driven over stdio on the embedded SQLite file and, when a
PostgreSQL server answers, on a scratch PostgreSQL database; each figure is a median with its
spread (min–max) beside its ratio to the bare SDK server's no-op round trip in the same run.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from revops_suite.bench_scale import Backend, backends, fresh, timed
from revops_suite.bench_scale import peer as server_peer

OPEN_DEALS = 5_000
REVIEW_DEALS = 50_000
SYNC_RECORDS = 10_000
REPO = Path(__file__).resolve().parents[2]
TEST_HELPERS = ("servers/sales/tests", "servers/cs/tests")  # the HubSpot fake and spec validation
SEED = 11
PERIOD_DAYS = 90


def _analyze(db: Any) -> None:
    """Planner statistics after a bulk load: PostgreSQL's autovacuum would gather them within
    minutes on a real server (and may be off on a test one), so a bench that times reads straight
    after loading measures plans no production database would run."""
    if db.dialect == "postgresql":
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()


def _database(data_dir: Path, database_url: str | None) -> Any:
    from revops_core.db import Database, upgrade
    from revops_core.settings import Settings

    db = Database(Settings(data_dir=data_dir, database_url=database_url, redis_url=None, master_key=None))
    upgrade(db)
    return db


def populate_open_deals(data_dir: Path, database_url: str | None, *, deals: int, today: date) -> None:
    """`deals` open deals spread over the open stages of one pipeline, closing in the next quarter."""
    from sqlalchemy import insert, select
    from sqlmodel import col

    from revops_sales.models.deals import SalesDeal, SalesStageMove
    from revops_sales.services import pipelines

    rng = random.Random(SEED)
    db = _database(data_dir, database_url)
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    try:
        with db.session(write=True) as s:
            pipeline = pipelines.create(s, "default", "Bench", None)
            stages = [st for st in pipeline.stages if st.kind == "open"]
            rows = []
            for n in range(deals):
                stage = rng.choice(stages)
                created = now - timedelta(days=rng.randint(1, 200))
                rows.append(
                    {
                        "tenant": "default",
                        "pipeline_id": pipeline.id,
                        "stage_id": stage.id,
                        "name": f"Bench deal {n}",
                        "owner": f"rep {n % 8}",
                        "amount_minor": rng.randint(10, 500) * 10_000,
                        "currency": "USD",
                        "close_date": today + timedelta(days=rng.randint(0, PERIOD_DAYS - 1)),
                        "forecast_category": "pipeline",
                        "created_at": created,
                        "updated_at": created,
                        "stage_entered_at": created,
                    }
                )
            s.execute(insert(SalesDeal), rows)
            ids = s.execute(
                select(col(SalesDeal.id), col(SalesDeal.stage_id), col(SalesDeal.created_at))
            ).all()
            s.execute(
                insert(SalesStageMove),
                [
                    {"deal_id": i, "from_stage_id": None, "to_stage_id": st, "actor": "bench", "at": at}
                    for i, st, at in ids
                ],
            )
        _analyze(db)
    finally:
        db.dispose()


def populate_history(data_dir: Path, database_url: str | None, *, deals: int, today: date) -> None:
    from revops_sales.demo import generate_sales_demo

    db = _database(data_dir, database_url)
    try:
        with db.session(write=True) as s:
            generate_sales_demo(s, seed=SEED, deals=deals, as_of=today)
        _analyze(db)
    finally:
        db.dispose()


def _peer(data_dir: Path, backend: Backend) -> Any:
    return server_peer(data_dir, backend, "sales", "--toolsets", "all")


def forecast_rows(root: Path, backend: Backend, postgres_url: str | None, no_op: float) -> list[str]:
    today = date.today()
    data_dir = root / f"sales-forecast-{backend.name.lower()}"
    fresh(backend, postgres_url)
    populate_open_deals(data_dir, backend.database_url, deals=OPEN_DEALS, today=today)
    peer = _peer(data_dir, backend)
    period = {"start": today.isoformat(), "end": (today + timedelta(days=PERIOD_DAYS - 1)).isoformat()}
    try:
        forecast, _ = timed(peer, "forecast_period", {**period, "quota_minor": 1_000_000_000}, 5)
    finally:
        peer.close()
    return [
        f"| {backend.name} | `forecast_period`: {OPEN_DEALS:,} open deals, 10 000 Monte Carlo runs "
        f"(median of 5) | {forecast.cell('ms')} | {forecast.median / no_op:,.0f}× |"
    ]


REVIEW_READS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("list_deals", {"limit": 50}),
    ("forecast_period", {}),
    ("find_stalled_deals", {}),
    ("get_pipeline_metrics", {}),
    ("get_pipeline_waterfall", {}),
)


def review_rows(root: Path, backend: Backend, postgres_url: str | None, no_op: float) -> list[str]:
    today = date.today()
    data_dir = root / f"sales-review-{backend.name.lower()}"
    fresh(backend, postgres_url)
    t0 = time.perf_counter()
    populate_history(data_dir, backend.database_url, deals=REVIEW_DEALS, today=today)
    load_s = time.perf_counter() - t0
    peer = _peer(data_dir, backend)
    lines: list[str] = []
    try:
        for tool, args in REVIEW_READS:
            timing, _ = timed(peer, tool, args, 3)
            lines.append(
                f"| {backend.name} | `{tool}` over {REVIEW_DEALS:,} deals (median of 3; "
                f"loaded in {load_s:.0f} s) | {timing.cell('ms')} | {timing.median / no_op:,.0f}× |"
            )
    finally:
        peer.close()
    return lines


def sync_rows() -> list[str]:
    """A HubSpot incremental sync of `SYNC_RECORDS` changed contacts against the local fake (every
    request still validated against the spec), in process on the embedded SQLite file. The fake
    lives with the tests, so this runs from a checkout (as `make bench` does)."""
    import sys

    import anyio

    for folder in TEST_HELPERS:
        if str(REPO / folder) not in sys.path:
            sys.path.insert(0, str(REPO / folder))
    from hubspot_fake import bench_sync  # type: ignore[import-not-found]

    runs = [anyio.run(bench_sync, SYNC_RECORDS) for _ in range(3)]
    runs.sort()
    return [
        f"| SQLite | HubSpot incremental sync of {SYNC_RECORDS:,} changed contacts against the local fake "
        f"(median of 3) | {runs[1]:,.0f} records/s ({runs[0]:,.0f}–{runs[2]:,.0f}) | — |"
    ]


def sales_section(root: Path, *, no_op_round_trip: float, postgres_url: str | None = None) -> list[str]:
    """Populate, drive revops-sales over stdio on each backend, return markdown lines."""
    with backends(postgres_url) as found:
        lines: list[str] = []
        for backend in found:
            lines += forecast_rows(root, backend, postgres_url, no_op_round_trip)
            lines += review_rows(root, backend, postgres_url, no_op_round_trip)
        lines += sync_rows()
    names = " and ".join(b.name for b in found)
    return [
        "## Sales at size",
        "",
        f"The forecast over {OPEN_DEALS:,} open deals (goal ≤ 1 s) and the pipeline-review reads over "
        f"{REVIEW_DEALS:,} deals of two years' history, and a HubSpot sync ({names}, "
        f"{date.today():%Y-%m-%d}). Median (min–max).",
        "",
        "| backend | operation | time | ratio to the bare no-op round trip |",
        "|---|---|---|---|",
        *lines,
    ]
