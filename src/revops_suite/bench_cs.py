"""CS work at portfolio size for `make bench`: 10 000 clients, 1 000 000 usage events.

The data is bulk-inserted straight into the tables (the demo generator is built for believability,
not for a million rows), then the real `revops-cs` server is driven over stdio: the whole-portfolio
`calculate_health_score` and a `get_client_overview` read, each reported with its ratio to the bare
SDK server's no-op round trip measured in the same run.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

CLIENTS = 10_000
EVENTS = 1_000_000
SEED = 7
CHUNK = 20_000
FEATURES = ("dashboards", "reports", "automations", "integrations", "api", "exports")


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
    _populate(data_dir, clients=1, events=0)


def _populate(data_dir: Path, *, clients: int, events: int) -> None:
    from sqlalchemy import insert

    from revops_core.db import Database, upgrade
    from revops_core.models import CoreCompany
    from revops_core.settings import Settings
    from revops_cs.models.clients import CsClient
    from revops_cs.models.usage import CsUsageEvent

    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None, master_key=None)
    db = Database(settings)
    upgrade(db)
    rng = random.Random(SEED)
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    with db.session(write=True) as s:
        conn = s.connection()
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
        per_client = events // max(1, len(client_ids))
        batch: list[dict[str, Any]] = []
        for cid in client_ids:
            for k in range(per_client):
                login = k % 3 == 0
                batch.append(
                    {
                        "client_id": cid,
                        "user_ref": f"u{k % 12}@c{cid}.example",
                        "event": "login" if login else "feature_used",
                        "feature": None if login else FEATURES[k % len(FEATURES)],
                        "quantity": 1.0,
                        "occurred_at": now
                        - timedelta(days=rng.randint(0, 120), minutes=rng.randint(0, 1440)),
                        "source": "bench",
                    }
                )
                if len(batch) >= CHUNK:
                    conn.execute(insert(CsUsageEvent), batch)
                    batch.clear()
        if batch:
            conn.execute(insert(CsUsageEvent), batch)
    db.dispose()


def portfolio_section(root: Path, *, no_op_round_trip: float) -> list[str]:
    """Populate the big portfolio, drive revops-cs over stdio, return markdown lines."""
    from revops_suite.bench import StdioPeer, _bin, _env

    data_dir = root / "cs-portfolio"
    t0 = time.perf_counter()
    _populate(data_dir, clients=CLIENTS, events=EVENTS)
    populate_s = time.perf_counter() - t0

    peer = StdioPeer([_bin("revops-cs")], _env(data_dir))
    peer.initialize()
    t0 = time.perf_counter()
    result = peer.call("calculate_health_score", {"scope": "portfolio"})
    health_s = time.perf_counter() - t0
    scored = len(result["structuredContent"]["portfolio"])
    timings = []
    for i in range(50):
        t1 = time.perf_counter()
        peer.call("get_client_overview", {"client_id": 1 + (i * 197) % CLIENTS})
        timings.append(time.perf_counter() - t1)
    overview_s = statistics.median(timings)
    peer.close()
    return [
        "## Customer Success at portfolio size",
        "",
        f"{CLIENTS:,} clients and {EVENTS:,} usage events bulk-loaded in {populate_s:.1f} s "
        f"(embedded SQLite, {date.today():%Y-%m-%d}).",
        "",
        "| operation | time | ratio to the bare no-op round trip |",
        "|---|---|---|",
        f"| `calculate_health_score` scope=portfolio ({scored:,} clients scored, snapshots stored) "
        f"| {health_s:.1f} s | {health_s / no_op_round_trip:,.0f}× |",
        f"| `get_client_overview` (median of 50) | {overview_s * 1000:.1f} ms "
        f"| {overview_s / no_op_round_trip:,.1f}× |",
    ]
