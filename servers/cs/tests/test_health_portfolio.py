"""A portfolio recompute: the same numbers as scoring each client, computed set-based, and a write
lock held only to store (issue 7, "Speed at portfolio scale")."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from typing import Any

import anyio
import pytest
from factories import add_client, at
from test_clients import AS_OF, add_events, call, rows
from test_health import _scored_client

from revops_core.testing import connect, error_of
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.usage import CsUsageEvent
from revops_cs.server import create_server

pytestmark = pytest.mark.anyio


def _varied_portfolio(s: Any) -> dict[str, int]:
    """Clients that exercise every component, a bare one, and a churned one (not in the portfolio)."""
    full = _scored_client(s)  # every component, and the feature catalogue (test_health's worked example)
    ent = add_client(
        s, "Enterprise", tier="enterprise", seats_purchased=4, renewal_date=AS_OF - timedelta(days=3)
    )
    add_events(
        s,
        ent,
        [
            ("2026-03-30", "a", "login", ""),
            ("2026-03-29", "b", "login", ""),
            ("2026-03-29", "b", "sso", "sso"),
            ("2026-04-02", "c", "login", ""),  # after as_of: not counted
        ],
    )
    s.add(CsBillingEvent(client_id=ent.id, kind="payment_succeeded", occurred_at=at("2026-03-01")))
    s.add(CsFeedback(client_id=ent.id, kind="nps", score=10, submitted_at=at("2026-03-01")))

    login_only = add_client(s, "Login only", tier="mid_market")  # no seats: usage missing
    add_events(s, login_only, [("2026-03-01", "x", "login", "")])
    bare = add_client(s, "Bare", tier="smb", seats_purchased=5)
    churned = add_client(s, "Gone", tier="smb", seats_purchased=5, stage="churned")
    add_events(s, churned, [("2026-03-30", "z", "login", "")])
    s.flush()
    return {"Full": full} | {c.name: c.id or 0 for c in (ent, login_only, bare, churned)}


async def test_portfolio_scores_equal_per_client_scores_and_reuse_their_snapshots(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        ids = _varied_portfolio(s)
    as_of = AS_OF.isoformat()
    async with connect(cs_server) as client:
        portfolio = await call(client, "calculate_health_score", {"scope": "portfolio", "as_of": as_of})
        singles = {
            cid: (await call(client, "calculate_health_score", {"client_id": cid, "as_of": as_of}))["client"]
            for cid in ids.values()
            if cid != ids["Gone"]
        }
    lines = {line["client_id"]: line for line in portfolio["portfolio"]}
    assert sorted(lines) == sorted(singles)  # the churned client is not in the portfolio
    for cid, single in singles.items():
        assert (lines[cid]["score"], lines[cid]["band"], lines[cid]["missing"]) == (
            single["score"],
            single["band"],
            single["missing"],
        )
        # Same inputs hash: each per-client call reuses the snapshot the portfolio run stored.
        assert single["reused"] is (single["score"] is not None)
    # Worked from the rows above (weights 30/20/15/15/10/10 of the components with data):
    # Full: usage 50, engagement 90, support 80, sentiment 66.67, adoption 50 (1 of 2), contract 75.
    assert lines[ids["Full"]]["score"] == 67.5
    # Enterprise: usage 83.33 (2 of 4 active vs 0.6: 100·min(0.5/0.6, 1)), engagement 98 (1 day),
    # support 100 (tickets recorded for the tenant, none here), sentiment 100 (NPS 100), adoption
    # 33.33 (sso of 3), contract 50 (renewal date passed).
    expected_ent = (83.33 * 30 + 98 * 20 + 100 * 15 + 100 * 15 + 33.33 * 10 + 50 * 10) / 100
    assert lines[ids["Enterprise"]]["score"] == round(expected_ent, 1) == 82.9
    assert lines[ids["Login only"]]["missing"] == ["contract", "sentiment", "usage"]
    assert lines[ids["Bare"]]["score"] is None
    assert portfolio["changed"] == 3  # the bare client stores nothing
    assert rows(cs_server, CsHealthSnapshot) == 3


async def test_portfolio_recompute_reads_without_holding_the_write_lock(make_settings, backend):
    """Another connection holds SQLite's write lock while the recompute runs: every client is
    gathered and scored meanwhile (progress arrives), and the snapshots land once it lets go."""
    if backend is not None:
        pytest.skip("SQLite's database-wide write lock; PostgreSQL locks rows")
    server = create_server(make_settings())
    try:
        with server.runtime.db.session(write=True) as s:
            clients = [add_client(s, f"C{i}") for i in range(5)]
            for c in clients:
                add_events(s, c, [("2026-03-30", "u", "login", "")])
        blocker = sqlite3.connect(str(server.runtime.db.engine.url.database), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        scored = anyio.Event()
        out: dict[str, Any] = {}

        async def progress(done: float, total: float | None, message: str | None) -> None:
            if done == 0:
                scored.set()  # facts gathered (the scoring loop follows without touching the lock)

        async with connect(server) as client:

            async def run() -> None:
                result = await client.call_tool(
                    "calculate_health_score",
                    {"scope": "portfolio", "as_of": "2026-03-31"},
                    progress_callback=progress,
                )
                out.update(result.structured_content or {})

            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                with anyio.fail_after(60):  # a safety net: the old code blocked here until the lock went
                    await scored.wait()
                blocker.execute("COMMIT")
        blocker.close()
        assert out["changed"] == 5
        assert rows(server, CsHealthSnapshot) == 5
    finally:
        server.runtime.db.dispose()


class _Blocker:
    """Another session holding what a usage-event write needs: SQLite's write lock, or on
    PostgreSQL a FOR UPDATE lock on the client row (the insert's foreign-key check waits on it)."""

    def __init__(self, server: Any, backend: str | None, client_id: int) -> None:
        if backend is None:
            self.conn: Any = sqlite3.connect(str(server.runtime.db.engine.url.database), isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.conn = psycopg.connect(backend.replace("postgresql+psycopg://", "postgresql://"))
            self.conn.execute("SELECT id FROM cs_client WHERE id = %s FOR UPDATE", (client_id,))

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


async def test_a_write_blocked_past_the_busy_timeout_is_a_retryable_database_busy(make_settings, backend):
    server = create_server(make_settings(db_busy_timeout_seconds=0.2))
    try:
        with server.runtime.db.session(write=True) as s:
            cid = add_client(s, "Acme").id or 0
        event = {
            "client_id": cid,
            "user_ref": "u",
            "event": "login",
            "occurred_at": at(date(2026, 3, 1)).isoformat(),
        }
        blocker = _Blocker(server, backend, cid)
        try:
            async with connect(server) as client:
                result = await client.call_tool("record_usage_events", {"events": [event]})
        finally:
            blocker.release()
        err = error_of(result)
        assert err["code"] == "database_busy"
        assert err["retryable"] is True
        assert "changed nothing" in err["message"]
        assert rows(server, CsUsageEvent) == 0
    finally:
        server.runtime.db.dispose()
