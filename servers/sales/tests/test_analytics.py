"""Analytics (issue 8): stage conversion, the rep leaderboard, activity per rep and won revenue by
source — against numbers the test computed from the rows it inserted."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from revops_core.testing import call_error, call_ok, connect
from revops_sales.models.deals import SalesDeal
from revops_sales.services import activities

pytestmark = pytest.mark.anyio


def _stages(pipeline: dict[str, Any]) -> dict[str, int]:
    return {s["name"]: s["id"] for s in pipeline["stages"]}


def _edit_deal(server: Any, deal_id: int, **values: Any) -> None:
    with server.runtime.db.session(write=True) as session:
        deal = session.get(SalesDeal, deal_id)
        assert deal is not None
        for name, value in values.items():
            setattr(deal, name, value)
        session.add(deal)


def _activities(server: Any, rows: list[tuple[str | None, str, int | None, datetime]]) -> None:
    with server.runtime.db.session(write=True) as session:
        for owner, kind, deal_id, at in rows:
            activities.record(session, "default", kind=kind, owner=owner, deal_id=deal_id, occurred_at=at)


async def test_stage_conversion_follows_each_deal_down_the_pipeline(sales_server) -> None:
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        stage = _stages(pipeline)
        paths = [
            ["qualification", "closed won"],
            ["qualification", "closed lost"],
            ["closed lost"],
            [],  # still in prospecting
            ["proposal"],  # skipped qualification
        ]
        for path in paths:
            deal = await call_ok(client, "create_deal", pipeline_id=pipeline["id"], name="d", amount_minor=1)
            for name in path:
                await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=stage[name])
        got = await call_ok(client, "get_stage_conversion", pipeline_id=pipeline["id"])
        missing = await call_error(client, "get_stage_conversion", pipeline_id=pipeline["id"] + 99)
        backwards = await call_error(
            client, "get_stage_conversion", pipeline_id=pipeline["id"], start="2026-02-01", end="2026-01-01"
        )
    rows = {s["stage"]: s for s in got["stages"]}
    keys = ("entered", "advanced", "won", "lost", "still_there")
    assert {k: rows["prospecting"][k] for k in keys} == dict(zip(keys, (5, 3, 1, 2, 1), strict=True))
    assert {k: rows["qualification"][k] for k in keys} == dict(zip(keys, (2, 1, 1, 1, 0), strict=True))
    assert {k: rows["proposal"][k] for k in keys} == dict(zip(keys, (1, 0, 0, 0, 1), strict=True))
    assert rows["prospecting"]["to_next"] == pytest.approx(3 / 5)
    assert rows["qualification"]["cumulative"] == pytest.approx(3 / 5 * 1 / 2)
    assert rows["proposal"]["cumulative"] == 0
    assert rows["negotiation"]["entered"] == 0
    assert rows["negotiation"]["to_next"] is None
    assert rows["negotiation"]["cumulative"] is None  # no deal entered: not a measured 0
    assert rows["needs analysis"]["cumulative"] is None  # skipped, and left out of the product
    assert next(s["stage"] for s in got["stages"]) == "prospecting"
    assert "closed won" not in rows
    assert (missing["code"], missing["field"]) == ("not_found", "pipeline_id")
    assert (backwards["code"], backwards["field"]) == ("validation_error", "end")


async def test_leaderboard_and_activity_per_rep(sales_server) -> None:
    now = datetime.now(UTC)
    today = now.date()
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        stage = _stages(pipeline)
        closed = [
            ("ana", 5_000, "closed won", 10),
            ("ana", 3_000, "closed won", 30),
            ("ana", 2_000, "closed lost", 5),
            ("bo", 9_000, "closed won", 40),
            ("cy", 1_000, "closed lost", 3),
            (None, 500, "closed won", 2),
        ]
        deal_ids = []
        for owner, amount, final, age in closed:
            deal = await call_ok(
                client,
                "create_deal",
                pipeline_id=pipeline["id"],
                name="d",
                amount_minor=amount,
                **({"owner": owner} if owner else {}),
            )
            await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=stage[final])
            _edit_deal(sales_server, deal["id"], created_at=now - timedelta(days=age))
            deal_ids.append(deal["id"])
        old = await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="old", amount_minor=7, owner="bo"
        )
        await call_ok(client, "move_deal_stage", deal_id=old["id"], stage_id=stage["closed won"])
        _edit_deal(sales_server, old["id"], closed_at=now - timedelta(days=200))  # outside the period
        inside, outside = now - timedelta(hours=2), now - timedelta(days=45)
        _activities(
            sales_server,
            [
                ("ana", "call", deal_ids[0], inside),
                ("ana", "call", deal_ids[1], inside),
                ("ana", "email_sent", deal_ids[0], inside),
                ("ana", "meeting", None, outside),
                ("bo", "email_received", deal_ids[3], inside),
                ("dee", "task_done", None, inside),
                ("dee", "note", None, inside),
                ("dee", "note", None, inside),
                (None, "call", None, inside),
            ],
        )
        board = await call_ok(client, "get_rep_leaderboard")
        top2 = await call_ok(client, "get_rep_leaderboard", top=2, rank_by="win_rate")
        by_activity = await call_ok(client, "get_rep_leaderboard", rank_by="activities")
        month = await call_ok(client, "get_activity_metrics")
        ana = await call_ok(
            client, "get_activity_metrics", owner="ana", start=(today - timedelta(days=59)).isoformat()
        )
        bad_top = await call_error(client, "get_rep_leaderboard", top=0)
    reps = {r["owner"]: r for r in board["reps"]}
    assert [r["owner"] for r in board["reps"]] == ["bo", "ana", "(no owner)", "cy", "dee"]
    assert [r["rank"] for r in board["reps"]] == [1, 2, 3, 4, 5]
    assert (reps["ana"]["won"], reps["ana"]["lost"], reps["ana"]["won_minor"]) == (2, 1, 8_000)
    assert reps["ana"]["win_rate_count"] == pytest.approx(2 / 3)
    assert reps["ana"]["win_rate_value"] == pytest.approx(8_000 / 10_000)
    assert reps["ana"]["median_cycle_days"] == pytest.approx(statistics.median([10, 30]), abs=0.01)
    assert reps["ana"]["activities"] == 4  # the 45-day-old meeting is inside the default 90 days
    assert (reps["bo"]["won"], reps["bo"]["won_minor"]) == (1, 9_000)  # the 200-day-old win is outside
    assert reps["cy"]["win_rate_count"] == 0
    assert reps["cy"]["median_cycle_days"] is None
    assert reps["dee"]["win_rate_count"] is None
    assert reps["dee"]["activities"] == 3
    assert board["ranked"] == 5
    # By win rate: bo and (no owner) 100 %, ana 67 %: ties go to more won value (bo first).
    assert [r["owner"] for r in top2["reps"]] == ["bo", "(no owner)"]
    assert top2["ranked"] == 5
    assert [r["owner"] for r in by_activity["reps"]][:2] == ["ana", "dee"]
    assert (bad_top["code"], bad_top["field"]) == ("validation_error", "top")
    # Activity over the default 30 days: the 45-day-old meeting is outside.
    per = {r["owner"]: r for r in month["reps"]}
    assert per["ana"]["total"] == 3
    assert per["ana"]["by_kind"]["call"] == 2
    assert per["ana"]["by_kind"]["meeting"] == 0
    assert per["ana"]["deals_touched"] == 2
    assert per["ana"]["per_day"] == pytest.approx(3 / 30)
    assert per["dee"]["by_kind"] == {
        "call": 0,
        "email_sent": 0,
        "email_received": 0,
        "meeting": 0,
        "note": 2,
        "task_done": 1,
    }
    assert per["(no owner)"]["total"] == 1
    assert month["totals"]["call"] == 3
    assert sum(month["totals"].values()) == 8
    assert [r["owner"] for r in ana["reps"]] == ["ana"]
    assert ana["reps"][0]["total"] == 4
    assert ana["days"] == 60


async def test_won_revenue_by_source_keeps_unrecorded(sales_server) -> None:
    now = datetime.now(UTC)
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        stage = _stages(pipeline)
        specs = [
            (4_000, "closed won", "webinar", "spring-launch", None),
            (1_000, "closed won", "webinar", "spring-launch", None),
            (2_000, "closed won", "webinar", None, None),
            (3_000, "closed won", None, None, None),
            (8_000, "closed lost", "webinar", "spring-launch", None),  # lost: not revenue
            (6_000, "closed won", "referral", None, 200),  # closed before the period
        ]
        for amount, final, source, campaign, closed_days_ago in specs:
            deal = await call_ok(
                client, "create_deal", pipeline_id=pipeline["id"], name="d", amount_minor=amount
            )
            await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=stage[final])
            values: dict[str, Any] = {"source": source, "campaign": campaign}
            if closed_days_ago:
                values["closed_at"] = now - timedelta(days=closed_days_ago)
            _edit_deal(sales_server, deal["id"], **values)
        eur = await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="e", amount_minor=50, currency="EUR"
        )
        await call_ok(client, "move_deal_stage", deal_id=eur["id"], stage_id=stage["closed won"])
        got = await call_ok(client, "get_won_revenue_by_source")
        euros = await call_ok(client, "get_won_revenue_by_source", currency="EUR")
        bad = await call_error(client, "get_won_revenue_by_source", currency="usd")
    rows = [(r["source"], r["campaign"], r["deals"], r["won_minor"]) for r in got["rows"]]
    assert rows == [
        ("webinar", "spring-launch", 2, 5_000),
        ("unrecorded", "unrecorded", 1, 3_000),
        ("webinar", "unrecorded", 1, 2_000),
    ]
    assert (got["deals"], got["won_minor"], got["unrecorded_minor"]) == (4, 10_000, 3_000)
    assert got["rows"][0]["share"] == pytest.approx(5_000 / 10_000)
    assert [(r["source"], r["won_minor"]) for r in euros["rows"]] == [("unrecorded", 50)]
    assert (bad["code"], bad["field"]) == ("validation_error", "currency")


async def test_an_unknown_pipeline_is_not_found_not_a_page_of_zeros(sales_server) -> None:
    async with connect(sales_server) as client:
        errors = [
            await call_error(client, tool, pipeline_id=424_242)
            for tool in (
                "forecast_period",
                "get_pipeline_metrics",
                "get_pipeline_waterfall",
                "get_stage_conversion",
            )
        ]
    assert [(e["code"], e["field"]) for e in errors] == [("not_found", "pipeline_id")] * 4
