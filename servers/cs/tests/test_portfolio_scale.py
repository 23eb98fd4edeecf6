"""Portfolio reads at scale, without id lists (issue 12, "Reads at portfolio scale").

A query that binds one parameter per client fails on PostgreSQL past 65 535 clients (`number of
parameters must be between 0 and 65535`). 70 000 clients are bulk-inserted with Core executemany
(as `revops_suite.bench_cs.populate` does; the tools store one row per call) and every portfolio
tool is called through the protocol, each answer checked against numbers computed here from the
inserted rows. The trend reduction is also checked on a small portfolio on both backends, with
weeks that hold several snapshots.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import add_client, at
from test_clients import AS_OF

from revops_core.testing import call_ok, connect
from revops_cs.models.health import CsHealthSnapshot

pytestmark = pytest.mark.anyio

N = 70_000
BANDS = ((90.0, "excellent"), (70.0, "good"), (50.0, "at_risk"))
WEEKS = 12  # analyze_health_trends' default window
HISTORY_WEEKS = 7  # + the snapshot calculate_health_score stores on AS_OF = 8 weekly points


def band(score: float) -> str:
    return next((name for floor, name in BANDS if score >= floor), "critical")


@dataclass(frozen=True)
class Row:
    """One inserted client and what the tools should make of it."""

    i: int
    id: int
    arr_minor: int
    currency: str
    churned: bool
    archived: bool
    login_days_ago: int | None  # None: no usage at all (unscored)
    slope: float | None  # the weekly slope of its stored history; None: no history

    @property
    def live(self) -> bool:
        return not self.archived

    @property
    def in_portfolio(self) -> bool:
        return self.live and not self.churned

    @property
    def score(self) -> float | None:
        """Only engagement has data (no seats, tickets, NPS, features or billing): 100 − 2·days."""
        if not self.in_portfolio or self.login_days_ago is None:
            return None
        return float(max(0, 100 - 2 * self.login_days_ago))


def _plan(i: int) -> dict[str, Any]:
    days = None if i % 500 == 1 else i % 40
    return {
        "churned": i % 1000 == 999,
        "archived": i % 2000 == 3,
        "login_days_ago": days,
        "currency": "EUR" if i % 5 == 0 else "USD",
        "arr_minor": (i % 100 + 1) * 1_000,
    }


def _populate(server: Any) -> list[Row]:
    """N clients, one login each (most), and a weekly history for every 10th scorable client."""
    from sqlalchemy import insert

    from revops_core.models import CoreCompany
    from revops_cs.models.clients import CsClient
    from revops_cs.models.usage import CsUsageEvent

    now = datetime.now(UTC)
    plans = [_plan(i) for i in range(N)]
    with server.runtime.db.session(write=True) as s:
        conn = s.connection()
        conn.execute(
            insert(CoreCompany),
            [{"name": f"Scale {i}", "created_at": now, "updated_at": now} for i in range(N)],
        )
        company_ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM core_company ORDER BY id")]
        conn.execute(
            insert(CsClient),
            [
                {
                    "company_id": company_id,
                    "name": f"Scale {i}",
                    "tier": ("smb", "mid_market", "enterprise")[i % 3],
                    "stage": "churned" if p["churned"] else "mature",
                    "arr_minor": p["arr_minor"],
                    "currency": p["currency"],
                    "created_at": now,
                    "updated_at": now,
                    "stage_changed_at": now,
                    "deleted_at": now if p["archived"] else None,
                }
                for i, (company_id, p) in enumerate(zip(company_ids, plans, strict=True))
            ],
        )
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM cs_client ORDER BY id")]
        conn.execute(
            insert(CsUsageEvent),
            [
                {
                    "client_id": cid,
                    "user_ref": f"u{cid}",
                    "event": "login",
                    "quantity": 1.0,
                    "occurred_at": at(AS_OF - timedelta(days=p["login_days_ago"])),
                    "source": "scale",
                }
                for cid, p in zip(ids, plans, strict=True)
                if p["login_days_ago"] is not None
            ],
        )
        rows = []
        history = []
        for i, (cid, p) in enumerate(zip(ids, plans, strict=True)):
            row = Row(i=i, id=cid, slope=None, **p)
            today = row.score
            if today is not None and i % 10 == 0:
                # A straight line through the score stored on AS_OF: rising to a high score,
                # falling to a low one, 0.5–3 points a week.
                step = 0.5 * (1 + (i // 10) % 6)
                row = Row(i=i, id=cid, slope=step if today >= 70 else -step, **p)
                for w in range(1, HISTORY_WEEKS + 1):
                    score = today - step * w if today >= 70 else today + step * w
                    history.append(_snapshot(cid, AS_OF - timedelta(days=7 * w), score, now))
            rows.append(row)
        conn.execute(insert(CsHealthSnapshot), history)
    return rows


def _snapshot(client_id: int, day: date, score: float, now: datetime) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "as_of": day,
        "score": score,
        "band": band(score),
        "components": "{}",
        "weights": "{}",
        "missing": "[]",
        "inputs_hash": f"history-{client_id}-{day}",
        "computed_at": now,
    }


def _rounded(value: float) -> float:
    return round(value, 3)


async def test_seventy_thousand_clients_on_postgresql(cs_server, backend):
    if backend is None:
        pytest.skip("PostgreSQL's 65 535-parameter limit is what this guards; SQLite has other tests")
    rows = _populate(cs_server)
    portfolio = [r for r in rows if r.in_portfolio]
    scored = [r for r in portfolio if r.score is not None]
    as_of = AS_OF.isoformat()
    async with connect(cs_server) as client:
        calc = await call_ok(client, "calculate_health_score", scope="portfolio", as_of=as_of)
        page = await call_ok(client, "list_clients", limit=50)
        critical = await call_ok(client, "list_clients", limit=50, health_band="critical")
        report = await call_ok(client, "generate_health_report", as_of=as_of)
        trends = await call_ok(client, "analyze_health_trends", as_of=as_of)
        risk = await call_ok(client, "identify_churn_risk", as_of=as_of, limit=5)

    # calculate_health_score: every portfolio client, engagement alone → 100 − 2·days since login.
    assert len(calc["portfolio"]) == len(portfolio)
    assert calc["changed"] == len(scored)
    lines = {line["client_id"]: line for line in calc["portfolio"]}
    assert all(lines[r.id]["score"] == r.score for r in portfolio)

    # list_clients: live clients (churned included) by id, with the latest stored snapshot.
    live = [r for r in rows if r.live]
    assert page["total"] == len(live)
    assert [(c["id"], c["health_score"]) for c in page["items"]] == [(r.id, r.score) for r in live[:50]]
    low = [r for r in live if r.score is not None and band(r.score) == "critical"]
    assert critical["total"] == len(low)
    assert [c["id"] for c in critical["items"]] == [r.id for r in low[:50]]

    # generate_health_report: bands, ARR per currency, who has no snapshot.
    expected: dict[str, dict[str, Any]] = {}
    for r in scored:
        line = expected.setdefault(band(r.score or 0), {"clients": 0, "arr_minor": {}})
        line["clients"] += 1
        line["arr_minor"][r.currency] = line["arr_minor"].get(r.currency, 0) + r.arr_minor
    got = {b["band"]: b for b in report["bands"]}
    for name in ("excellent", "good", "at_risk", "critical"):
        want = expected.get(name, {"clients": 0, "arr_minor": {}})
        assert (got[name]["clients"], got[name]["arr_minor"]) == (want["clients"], want["arr_minor"])
    at_risk: dict[str, int] = {}
    for r in scored:
        if band(r.score or 0) in ("at_risk", "critical"):
            at_risk[r.currency] = at_risk.get(r.currency, 0) + r.arr_minor
    assert report["arr_at_risk_minor"] == at_risk
    assert report["scored"] == len(scored)
    assert report["unscored"] == [r.id for r in portfolio if r.score is None]
    assert report["average_score"] == round(sum(r.score or 0 for r in scored) / len(scored), 1)

    # analyze_health_trends: 8 weekly points on a line of known slope; everyone else is short.
    trending = [r for r in portfolio if r.slope is not None]
    movers = sorted(trending, key=lambda r: (-abs(_rounded(r.slope or 0)), r.id))[:10]
    assert [
        (t["client_id"], t["points"], t["slope_per_week"], t["first_score"], t["latest_score"], t["trend"])
        for t in trends["clients"]
    ] == [
        (
            r.id,
            HISTORY_WEEKS + 1,
            r.slope,
            (r.score or 0) - (r.slope or 0) * HISTORY_WEEKS,
            r.score,
            "stable" if abs(r.slope or 0) <= 2 else "improving" if (r.slope or 0) > 0 else "declining",
        )
        for r in movers
    ]
    assert trends["insufficient_data"] == [r.id for r in portfolio if r.slope is None]

    # identify_churn_risk: no login for 14+ days = 20 points; a login 30–59 days ago is last
    # month's only usage, so this month's usage fell by 100 % = 25 more (medium at 30).
    def points(r: Row) -> int:
        days = r.login_days_ago
        if days is None:
            return 0
        return (20 if days >= 14 else 0) + (25 if 30 <= days <= 59 else 0)

    assert risk["evaluated"] == len(portfolio)
    levels = ["high" if points(r) >= 60 else "medium" if points(r) >= 30 else "low" for r in portfolio]
    assert risk["counts"] == {lv: levels.count(lv) for lv in ("high", "medium", "low")}
    top = sorted(portfolio, key=lambda r: (-points(r), r.id))[:5]
    assert [(c["client_id"], c["score"]) for c in risk["clients"]] == [(r.id, points(r)) for r in top]


def _snap(client_id: int, day: date, score: float) -> CsHealthSnapshot:
    return CsHealthSnapshot(
        client_id=client_id,
        as_of=day,
        score=score,
        band=band(score),
        components=json.dumps({}),
        weights=json.dumps({}),
        inputs_hash=f"{client_id}-{day}-{score}",
    )


def _least_squares(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


async def test_trends_keep_the_latest_snapshot_of_each_week(cs_server):
    """A week holding several snapshots contributes its latest (by date, then id): the SQL
    reduction gives the same points, slope and ranking as reading every snapshot."""
    first = AS_OF - timedelta(days=7 * WEEKS - 1)
    with cs_server.runtime.db.session(write=True) as s:
        daily = add_client(s, "Daily").id or 0  # scored every day: 7 snapshots a week
        weekly = add_client(s, "Weekly").id or 0
        twice = add_client(s, "Twice").id or 0  # two snapshots on one day: the later id wins
        sparse = add_client(s, "Sparse").id or 0
        for k in range(7 * WEEKS):
            day = first + timedelta(days=k)
            s.add(_snap(daily, day, 40.0 + 0.25 * k + (k % 7)))  # noisy within the week
        for w in range(WEEKS):
            s.add(_snap(weekly, first + timedelta(days=7 * w + 3), 90.0 - 1.5 * w))
        for w in range(WEEKS):
            day = first + timedelta(days=7 * w)
            s.add(_snap(twice, day, 10.0))
            s.flush()
            s.add(_snap(twice, day, 50.0 + (w % 3)))
        for w in range(0, WEEKS, 2):  # 6 weekly points: too few
            s.add(_snap(sparse, first + timedelta(days=7 * w), 70.0))
        s.add(_snap(weekly, first - timedelta(days=1), 0.0))  # before the window: ignored
    async with connect(cs_server) as client:
        out = await call_ok(client, "analyze_health_trends", as_of=AS_OF.isoformat())
        one = await call_ok(client, "analyze_health_trends", as_of=AS_OF.isoformat(), client_id=daily)

    def points(kind: str) -> list[tuple[float, float]]:
        if kind == "daily":  # the last day of each week, k = 7w + 6
            return [((7 * w + 6) / 7, 40.0 + 0.25 * (7 * w + 6) + 6) for w in range(WEEKS)]
        if kind == "weekly":
            return [((7 * w + 3) / 7, 90.0 - 1.5 * w) for w in range(WEEKS)]
        return [(float(w), 50.0 + (w % 3)) for w in range(WEEKS)]

    expected = {cid: points(kind) for cid, kind in ((daily, "daily"), (weekly, "weekly"), (twice, "twice"))}
    slopes = {cid: _least_squares(p) for cid, p in expected.items()}
    order = sorted(expected, key=lambda cid: (-abs(round(slopes[cid], 3)), cid))
    assert [
        (t["client_id"], t["points"], t["slope_per_week"], t["first_score"], t["latest_score"])
        for t in out["clients"]
    ] == [(cid, WEEKS, round(slopes[cid], 3), expected[cid][0][1], expected[cid][-1][1]) for cid in order]
    assert round(slopes[weekly], 3) == -1.5
    assert round(slopes[daily], 3) == 1.75
    assert out["insufficient_data"] == [sparse]
    assert [t["client_id"] for t in one["clients"]] == [daily]
    assert one["insufficient_data"] == []
