"""CS work at portfolio size for `make bench`: 10 000 clients / 1 000 000 usage events, and a
scaling table at 1 000 / 10 000 / 50 000 clients.

Every table the health score reads is loaded (usage events, the feature catalogue, tickets, NPS
answers, billing events), so no component is skipped for want of data. The rows are bulk-inserted
straight into the tables (the demo generator is built for believability, not for millions of
rows); then the real `revops-cs` server is driven over stdio, on the embedded SQLite file and — when
a PostgreSQL server is reachable — on a scratch PostgreSQL database. Each figure is the median of
repeated calls with its spread (min–max), beside its ratio to the bare SDK server's no-op round
trip measured in the same run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from revops_suite.bench_scale import Backend, backends, fresh, timed
from revops_suite.bench_scale import peer as server_peer

CLIENTS = 10_000
EVENTS = 1_000_000
SCALES = (1_000, 10_000, 50_000)
SCALE_EVENTS_PER_CLIENT = 20
SEED = 7
CHUNK = 20_000
FEATURES = ("dashboards", "reports", "automations", "integrations", "api", "exports")
ENTERPRISE_ONLY = ("api",)


def write_tool() -> tuple[str, Callable[[int], dict[str, Any]]]:
    """The write measured in the round-trip table: storing one usage event for client 1."""

    def args(i: int) -> dict[str, Any]:
        return {
            "events": [
                {
                    "client_id": 1,
                    "user_ref": f"bench{i % 7}@bench.example",
                    "event": "login",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "external_id": f"bench-{i}",
                }
            ],
            "source": "bench",
        }

    return "record_usage_events", args


def seed_write_target(data_dir: Path) -> None:
    """The write tool needs client 1 to exist."""
    populate(data_dir, None, clients=1, events_per_client=0)


def populate(data_dir: Path, database_url: str | None, *, clients: int, events_per_client: int) -> None:
    """Create the schema and load `clients` clients with every kind of row the health score reads."""
    from sqlalchemy import insert

    from revops_core.db import Database, upgrade
    from revops_core.models import CoreCompany
    from revops_core.settings import Settings
    from revops_cs.models.clients import CsClient
    from revops_cs.models.feedback import CsFeedback
    from revops_cs.models.retention import CsBillingEvent
    from revops_cs.models.support import CsTicket
    from revops_cs.models.usage import CsFeature, CsUsageEvent

    settings = Settings(data_dir=data_dir, database_url=database_url, redis_url=None, master_key=None)
    db = Database(settings)
    upgrade(db)
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    today = now.date()
    with db.session(write=True) as s:
        conn = s.connection()
        conn.execute(
            insert(CsFeature),
            [
                {
                    "key": f,
                    "name": f,
                    "tiers": '["enterprise"]' if f in ENTERPRISE_ONLY else "[]",
                    "created_at": now,
                }
                for f in FEATURES
            ],
        )
        conn.execute(
            insert(CoreCompany),
            [
                {"name": f"Bench {i}", "domain": f"bench{i}.example", "created_at": now, "updated_at": now}
                for i in range(clients)
            ],
        )
        company_ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM core_company ORDER BY id")]
        conn.execute(
            insert(CsClient),
            [
                {
                    "company_id": cid,
                    "name": f"Bench {i}",
                    "tier": rng.choice(("smb", "mid_market", "enterprise")),
                    "stage": "mature",
                    "arr_minor": rng.randint(5_000, 200_000) * 100,
                    "seats_purchased": rng.randint(5, 200),
                    "contract_start": today - timedelta(days=rng.randint(60, 900)),
                    "renewal_date": today + timedelta(days=rng.randint(1, 365)),
                    "created_at": now,
                    "updated_at": now,
                    "stage_changed_at": now,
                }
                for i, cid in enumerate(company_ids)
            ],
        )
        client_ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM cs_client ORDER BY id")]

        def ago(max_days: int) -> datetime:
            return now - timedelta(days=rng.randint(0, max_days), minutes=rng.randint(0, 1440))

        for model, rows in (
            (CsUsageEvent, _usage_rows(client_ids, events_per_client, ago)),
            (CsTicket, _ticket_rows(client_ids, rng, ago)),
            (CsFeedback, _nps_rows(client_ids, rng, ago)),
            (CsBillingEvent, _billing_rows(client_ids, rng, ago)),
        ):
            for batch in _chunks(rows):
                conn.execute(insert(model), batch)
    if db.dialect == "postgresql":  # what autovacuum does after a bulk load, before we time reads
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    db.dispose()


def _usage_rows(
    client_ids: list[int], per_client: int, ago: Callable[[int], datetime]
) -> Iterator[dict[str, Any]]:
    for cid in client_ids:
        for k in range(per_client):
            login = k % 3 == 0
            yield {
                "client_id": cid,
                "user_ref": f"u{k % 12}@c{cid}.example",
                "event": "login" if login else "feature_used",
                "feature": None if login else FEATURES[k % len(FEATURES)],
                "quantity": 1.0,
                "occurred_at": ago(120),
                "source": "bench",
            }


def _ticket_rows(
    client_ids: list[int], rng: random.Random, ago: Callable[[int], datetime]
) -> Iterator[dict[str, Any]]:
    for cid in client_ids:
        for _ in range(rng.randint(0, 4)):
            at = ago(90)
            yield {
                "client_id": cid,
                "subject": "bench",
                "description": "",
                "created_at": at,
                "updated_at": at,
            }


def _nps_rows(
    client_ids: list[int], rng: random.Random, ago: Callable[[int], datetime]
) -> Iterator[dict[str, Any]]:
    for cid in client_ids:
        for _ in range(rng.randint(0, 2)):
            yield {"client_id": cid, "kind": "nps", "score": rng.randint(0, 10), "submitted_at": ago(200)}


def _billing_rows(
    client_ids: list[int], rng: random.Random, ago: Callable[[int], datetime]
) -> Iterator[dict[str, Any]]:
    for cid in client_ids:
        for _ in range(3):
            kind = "payment_failed" if rng.random() < 0.1 else "payment_succeeded"
            yield {"client_id": cid, "kind": kind, "amount_minor": 10_000, "occurred_at": ago(120)}


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def portfolio_rows(root: Path, backend: Backend, postgres_url: str | None, no_op: float) -> list[str]:
    """Whole-portfolio health at 10 000 clients / 1 000 000 events: the first run stores every
    snapshot; the repeats find the same inputs and reuse them."""
    data_dir = root / f"cs-portfolio-{backend.name.lower()}"
    fresh(backend, postgres_url)
    t0 = time.perf_counter()
    populate(data_dir, backend.database_url, clients=CLIENTS, events_per_client=EVENTS // CLIENTS)
    load_s = time.perf_counter() - t0
    peer = server_peer(data_dir, backend)
    try:
        first, result = timed(peer, "calculate_health_score", {"scope": "portfolio"}, 1)
        structured = result["structuredContent"]
        scored = sum(1 for line in structured["portfolio"] if line["score"] is not None)
        again, _ = timed(peer, "calculate_health_score", {"scope": "portfolio"}, 3)
        overview, _ = timed(peer, "get_client_overview", {"client_id": 1 + CLIENTS // 2}, 30)
    finally:
        peer.close()
    return [
        f"| {backend.name} | `calculate_health_score` scope=portfolio, first run "
        f"({scored:,} scored, {structured['changed']:,} snapshots written; loaded in {load_s:.0f} s) "
        f"| {first.cell()} | {first.median / no_op:,.0f}× |",
        f"| {backend.name} | the same, inputs unchanged (snapshots reused; median of 3) "
        f"| {again.cell()} | {again.median / no_op:,.0f}× |",
        f"| {backend.name} | `get_client_overview` (median of 30) | {overview.cell('ms')} "
        f"| {overview.median / no_op:,.1f}× |",
    ]


READS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("list_clients", {"limit": 50}),
    ("generate_health_report", {}),
    ("identify_churn_risk", {}),
)


def scaling_rows(root: Path, backend: Backend, postgres_url: str | None) -> list[str]:
    """Portfolio reads at each scale (after one portfolio recompute stored the snapshots)."""
    lines: list[str] = []
    for n in SCALES:
        data_dir = root / f"cs-scale-{backend.name.lower()}-{n}"
        fresh(backend, postgres_url)
        populate(data_dir, backend.database_url, clients=n, events_per_client=SCALE_EVENTS_PER_CLIENT)
        peer = server_peer(data_dir, backend)
        try:
            health, _ = timed(peer, "calculate_health_score", {"scope": "portfolio"}, 1)
            cells = [health.cell()]
            for tool, args in READS:
                timing, _ = timed(peer, tool, args, 3)
                cells.append(timing.cell("ms"))
        finally:
            peer.close()
        lines.append(f"| {backend.name} | {n:,} | " + " | ".join(cells) + " |")
    return lines


def portfolio_section(root: Path, *, no_op_round_trip: float, postgres_url: str | None = None) -> list[str]:
    """Populate, drive revops-cs over stdio on each backend, return markdown lines."""
    with backends(postgres_url) as found:
        main: list[str] = []
        scale: list[str] = []
        for backend in found:
            main += portfolio_rows(root, backend, postgres_url, no_op_round_trip)
            scale += scaling_rows(root, backend, postgres_url)
    names = " and ".join(b.name for b in found)
    return [
        "## Customer Success at portfolio size",
        "",
        f"{CLIENTS:,} clients, {EVENTS:,} usage events, 0–4 tickets, 0–2 NPS answers and 3 billing events a "
        f"client, a 6-feature catalogue ({names}, {date.today():%Y-%m-%d}). Median (min–max).",
        "",
        "| backend | operation | time | ratio to the bare no-op round trip |",
        "|---|---|---|---|",
        *main,
        "",
        f"Scaling ({SCALE_EVENTS_PER_CLIENT} usage events a client; reads are medians of 3 after one "
        "portfolio recompute stored the snapshots):",
        "",
        "| backend | clients | portfolio health | `list_clients` (page of 50) | `generate_health_report` "
        "| `identify_churn_risk` (portfolio) |",
        "|---|---|---|---|---|---|",
        *scale,
    ]
