"""Pipeline-review reads at scale (issues 8 and 12): the set-based paths give the figures a
straightforward recomputation gives over the demo generator's deals, and the forecast measures
against the stored quota when none is passed."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from revops_core.params import end_of_day, start_of_day
from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.analytics import stalls
from revops_sales.models.activities import SalesActivity
from revops_sales.models.deals import SalesDeal, SalesDealChange, SalesStageMove
from revops_sales.models.pipelines import SalesStage
from revops_sales.models.quotas import SalesQuota
from revops_sales.services.deals import deal_out

pytestmark = pytest.mark.anyio


def _generate(server: Any, deals: int = 400) -> None:
    from revops_sales.demo import generate_sales_demo

    with server.runtime.db.session(write=True) as session:
        generate_sales_demo(session, seed=11, deals=deals, as_of=datetime.now(UTC).date())


def _everything(server: Any) -> dict[str, Any]:
    """Every deal, stage, move, change and activity as ORM objects: the slow, obvious way."""
    with server.runtime.db.session() as s:
        return {
            "deals": {d.id: d for d in s.exec(select(SalesDeal)).all()},
            "stages": {st.id: st for st in s.exec(select(SalesStage)).all()},
            "moves": list(s.exec(select(SalesStageMove).order_by(col(SalesStageMove.id))).all()),
            "changes": list(s.exec(select(SalesDealChange).order_by(col(SalesDealChange.id))).all()),
            "activities": list(s.exec(select(SalesActivity)).all()),
        }


def _expected_alerts(data: dict[str, Any], as_of: date) -> list[dict[str, Any]]:
    deals, stages = data["deals"], data["stages"]
    moment = end_of_day(as_of)  # as_of is in the past: judged at its end
    live = {i: d for i, d in deals.items() if d.deleted_at is None and d.tenant == "default"}
    # Median days in stage over won deals: each stay ends at the deal's next move.
    by_deal: dict[int, list[SalesStageMove]] = {}
    for move in data["moves"]:
        by_deal.setdefault(move.deal_id, []).append(move)
    stays: dict[int, list[float]] = {}
    for deal_id, moves in by_deal.items():
        if deal_id in live and stages[live[deal_id].stage_id].kind == "won":
            for this, following in itertools.pairwise(moves):
                stays.setdefault(this.to_stage_id, []).append(
                    (following.at - this.at).total_seconds() / 86_400
                )
    medians = {stage: statistics.median(days) for stage, days in stays.items()}
    last: dict[int, datetime] = {}
    for activity in data["activities"]:
        if activity.deal_id is not None and activity.occurred_at < moment:
            last[activity.deal_id] = max(
                last.get(activity.deal_id, activity.occurred_at), activity.occurred_at
            )
    since = start_of_day(stalls.quarter_start(as_of))
    pushes: dict[int, list[stalls.Push]] = {}
    for change in data["changes"]:
        if (
            change.field == "close_date"
            and since <= change.at < moment
            and change.old_value
            and change.new_value
        ):
            old, new = date.fromisoformat(change.old_value), date.fromisoformat(change.new_value)
            if new > old:
                pushes.setdefault(change.deal_id, []).append(stalls.Push(old, new))
    found = []
    for deal_id in sorted(live):
        deal = live[deal_id]
        if stages[deal.stage_id].kind != "open":
            continue
        days = max(0.0, (moment - deal.stage_entered_at).total_seconds() / 86_400)
        touched = last.get(deal_id)
        sample = len(stays.get(deal.stage_id, []))
        verdict = stalls.judge(
            days_in_stage=days,
            stage_median=medians.get(deal.stage_id),
            stage_sample=sample,
            close_date=deal.close_date,
            pushes=pushes.get(deal_id, []),
            days_idle=max(0.0, (moment - (touched or deal.created_at)).total_seconds() / 86_400),
            idle_since="the last logged activity" if touched else "the deal was created (no activity logged)",
            as_of=as_of,
        )
        if verdict.stalled or verdict.slipping:
            found.append(
                {
                    "deal_id": deal_id,
                    "days_in_stage": round(days, 1),
                    "stage_median_days": medians.get(deal.stage_id)
                    if sample >= stalls.MIN_STAGE_SAMPLE
                    else None,
                    "stage_sample": sample,
                    "last_activity_at": touched.isoformat().replace("+00:00", "Z") if touched else None,
                    "stalled": verdict.stalled,
                    "slipping": verdict.slipping,
                    "not_evaluated": verdict.not_evaluated,
                }
            )
    found.sort(key=lambda a: -a["days_in_stage"])
    return found


def _utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_stalled_deals_match_a_recomputation_from_every_row(sales_server) -> None:
    _generate(sales_server)
    as_of = datetime.now(UTC).date() - timedelta(days=1)
    expected = _expected_alerts(_everything(sales_server), as_of)
    assert len(expected) > 5  # the generated portfolio has stalled and slipping deals to compare
    async with connect(sales_server) as client:
        got = await call_ok(client, "find_stalled_deals", as_of=as_of.isoformat(), limit=200)
    assert got["open_deals"] >= len(expected)
    alerts = [
        {
            "deal_id": a["deal"]["id"],
            "days_in_stage": a["days_in_stage"],
            "stage_median_days": a["stage_median_days"],
            "stage_sample": a["stage_sample"],
            "last_activity_at": a["last_activity_at"],
            "stalled": a["stalled"],
            "slipping": a["slipping"],
            "not_evaluated": a["not_evaluated"],
        }
        for a in got["alerts"]
    ]
    for alert in alerts:  # the same instant, whatever the backend's timestamp spelling
        alert["last_activity_at"] = _utc(alert["last_activity_at"])
    for alert in expected:
        alert["last_activity_at"] = _utc(alert["last_activity_at"])
    # Exact equality: the medians are the same floats as statistics.median over every stay.
    assert alerts == expected[:200]


async def test_list_deals_pages_match_the_orm_rows(sales_server) -> None:
    _generate(sales_server)
    data = _everything(sales_server)
    stages = data["stages"]
    live = [d for _, d in sorted(data["deals"].items()) if d.deleted_at is None]
    owner = live[0].owner
    async with connect(sales_server) as client:
        for filters in ({}, {"status": "open"}, {"status": "won", "owner": owner}):
            want = [
                deal_out(d, stages[d.stage_id]).model_dump(mode="json")
                for d in live
                if ("status" not in filters or stages[d.stage_id].kind == filters["status"])
                and ("owner" not in filters or d.owner == filters["owner"])
            ]
            got, cursor = [], None
            while True:
                page = await call_ok(
                    client, "list_deals", limit=50, **filters, **({"cursor": cursor} if cursor else {})
                )
                assert page["total"] == len(want)
                got += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert [g["id"] for g in got] == [w["id"] for w in want]
            for g, w in zip(got, want, strict=True):
                assert {k: (_utc(v) if k.endswith("_at") else v) for k, v in g.items()} == {
                    k: (_utc(v) if k.endswith("_at") else v) for k, v in w.items()
                }


async def test_forecast_counts_match_a_recomputation_from_every_row(sales_server) -> None:
    _generate(sales_server)
    data = _everything(sales_server)
    stages = data["stages"]
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=30), today + timedelta(days=59)
    live = [d for d in data["deals"].values() if d.deleted_at is None and d.currency == "USD"]
    open_ = [d for d in live if stages[d.stage_id].kind == "open"]
    in_period = [
        d
        for d in open_
        if d.close_date is not None and start <= d.close_date <= end and d.forecast_category != "omitted"
    ]
    won = [
        d
        for d in live
        if stages[d.stage_id].kind == "won"
        and d.closed_at is not None
        and start_of_day(start) <= d.closed_at < end_of_day(end)
    ]
    async with connect(sales_server) as client:
        got = await call_ok(
            client,
            "forecast_period",
            start=start.isoformat(),
            end=end.isoformat(),
            currency="USD",
            quota_minor=1,
        )
    assert got["open_deals"] == len(in_period)
    assert got["open_minor"] == sum(d.amount_minor for d in in_period)
    assert got["weighted_minor"] == pytest.approx(
        sum(d.amount_minor * stages[d.stage_id].probability_pct / 100 for d in in_period)
    )
    assert got["won_minor"] == sum(d.amount_minor for d in won)
    assert got["without_close_date"] == sum(1 for d in open_ if d.close_date is None)
    assert got["overdue_open_deals"] == sum(
        1 for d in open_ if d.close_date is not None and d.close_date < today
    )


async def test_pipeline_metrics_match_a_recomputation_from_every_row(sales_server) -> None:
    _generate(sales_server)
    data = _everything(sales_server)
    stages = data["stages"]
    today = datetime.now(UTC).date()
    start = today - timedelta(days=89)
    live = [d for d in data["deals"].values() if d.deleted_at is None and d.currency == "USD"]

    def closed(kind: str) -> list[SalesDeal]:
        return [
            d
            for d in live
            if stages[d.stage_id].kind == kind
            and d.closed_at is not None
            and start_of_day(start) <= d.closed_at < end_of_day(today)
        ]

    won, lost = closed("won"), closed("lost")
    async with connect(sales_server) as client:
        got = await call_ok(client, "get_pipeline_metrics", start=start.isoformat(), end=today.isoformat())
    assert (got["won"], got["lost"]) == (len(won), len(lost))
    assert (got["won_minor"], got["lost_minor"]) == (
        sum(d.amount_minor for d in won),
        sum(d.amount_minor for d in lost),
    )
    assert got["open_deals"] == sum(1 for d in live if stages[d.stage_id].kind == "open")


async def test_forecast_uses_the_stored_quota_of_the_period_when_none_is_passed(sales_server) -> None:
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=10), today + timedelta(days=20)
    period = {"start": start.isoformat(), "end": end.isoformat()}
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        stage = {s["name"]: s["id"] for s in pipeline["stages"]}
        for owner, amount, where in (("ana", 40_000, "proposal"), ("bo", 60_000, "negotiation")):
            await call_ok(
                client,
                "create_deal",
                pipeline_id=pipeline["id"],
                name=f"{owner} open",
                amount_minor=amount,
                owner=owner,
                stage_id=stage[where],
                close_date=(today + timedelta(days=5)).isoformat(),
            )
        won = await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="won", amount_minor=30_000, owner="ana"
        )
        await call_ok(client, "move_deal_stage", deal_id=won["id"], stage_id=stage["closed won"])
        # No quota stored yet: null figures and a note naming set_quota.
        bare = await call_ok(client, "forecast_period", **period)
        assert (bare["quota_minor"], bare["p_reach_quota"], bare["coverage"]) == (None, None, None)
        assert any("set_quota" in n and "none stored" in n for n in bare["notes"])
        team = await call_ok(client, "set_quota", owner="*", amount_minor=150_000, **period)
        await call_ok(client, "set_quota", owner="ana", amount_minor=50_000, **period)
        await call_ok(client, "set_quota", owner="ana", amount_minor=1, currency="EUR", **period)
        # A quota of another period (one day longer) is not this period's.
        await call_ok(
            client,
            "set_quota",
            owner="bo",
            amount_minor=9_999,
            start=period["start"],
            end=(end + timedelta(days=1)).isoformat(),
        )
        rows = count_rows(sales_server.runtime.db, SalesQuota)
        teamwide = await call_ok(client, "forecast_period", **period)
        ana = await call_ok(client, "forecast_period", owner="ana", **period)
        bo = await call_ok(client, "forecast_period", owner="bo", **period)
        given = await call_ok(client, "forecast_period", quota_minor=100_000, **period)
        scoped = await call_ok(client, "forecast_period", pipeline_id=pipeline["id"], **period)
        bad = await call_error(client, "forecast_period", quota_minor=0, **period)
        assert count_rows(sales_server.runtime.db, SalesQuota) == rows  # reads store nothing
    # Team: 150 000 quota, 30 000 won, 100 000 open → coverage 100 000 / 120 000.
    assert teamwide["quota_minor"] == 150_000
    assert teamwide["coverage"] == pytest.approx(100_000 / 120_000)
    assert teamwide["p_reach_quota"] == 0.0  # 30 000 + at most 100 000 never reaches 150 000
    assert any(f"stored quota {team['id']}" in n and "150000 USD" in n for n in teamwide["notes"])
    # ana: 50 000 (USD, not the EUR one), 30 000 won, 40 000 open at 65 %: P = 0.65 exactly in the limit.
    assert ana["quota_minor"] == 50_000
    assert ana["coverage"] == pytest.approx(40_000 / 20_000)
    assert ana["p_reach_quota"] == pytest.approx(0.65, abs=0.02)
    assert any("'ana'" in n and "50000 USD" in n for n in ana["notes"])
    # bo's only quota spans another period: nothing is used.
    assert (bo["quota_minor"], bo["p_reach_quota"], bo["coverage"]) == (None, None, None)
    assert any("set_quota" in n and "'bo'" in n for n in bo["notes"])
    # A quota passed wins, without a quota note.
    assert given["quota_minor"] == 100_000
    assert not any(n.startswith("Quota:") for n in given["notes"])
    # Quotas are not per pipeline: a pipeline's forecast is not measured against one.
    assert scoped["quota_minor"] is None
    assert any("pipeline" in n and n.startswith("Quota:") for n in scoped["notes"])
    assert bad["field"] == "quota_minor"


def test_step_3_adds_the_read_indexes_to_a_database_made_before_them(db) -> None:
    from sqlalchemy import inspect, text

    from revops_core.db import upgrade
    from revops_sales.schema import READ_INDEXES

    mine = [(table, name) for table, name, dialect in READ_INDEXES if dialect in (None, db.dialect)]

    def present() -> set[str]:
        found = inspect(db.engine)
        return {str(i["name"]) for table, _ in mine for i in found.get_indexes(table)}

    assert {name for _, name in mine} <= present()  # a new database has them from create_all
    with db.engine.begin() as connection:  # as a database made at sales v2 was
        for _, name in mine:
            connection.execute(text(f"DROP INDEX {name}"))
        connection.execute(text("UPDATE core_schema_version SET version = 2 WHERE component = 'sales'"))
    assert not {name for _, name in mine} & present()
    assert upgrade(db) == ["sales v3: indexes for pipeline reads at portfolio scale"]
    assert {name for _, name in mine} <= present()
    assert upgrade(db) == []  # applied once
