"""Quotas, attainment, coverage and pipeline metrics against numbers computed from the test's rows."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from revops_core.testing import call_error, call_ok, connect
from revops_sales.models.deals import SalesDeal

pytestmark = pytest.mark.anyio


def _set_created(server, deal_id: int, days_ago: float) -> None:
    with server.runtime.db.session(write=True) as session:
        deal = session.get(SalesDeal, deal_id)
        assert deal is not None
        deal.created_at = datetime.now(UTC) - timedelta(days=days_ago)
        session.add(deal)


async def test_attainment_coverage_and_metrics(sales_server) -> None:
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=10), today + timedelta(days=20)
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        stage = {s["name"]: s["id"] for s in pipeline["stages"]}
        await call_ok(
            client,
            "set_quota",
            owner="ana",
            start=start.isoformat(),
            end=end.isoformat(),
            amount_minor=10_000,
        )
        team = await call_ok(
            client, "set_quota", owner="*", start=start.isoformat(), end=end.isoformat(), amount_minor=20_000
        )
        again = await call_ok(
            client, "set_quota", owner="*", start=start.isoformat(), end=end.isoformat(), amount_minor=30_000
        )
        outcomes = [
            ("ana", 4_000, "closed won", 10),
            ("ana", 2_000, "closed won", 30),
            ("bo", 5_000, "closed won", 20),
            ("ana", 3_000, "closed lost", 5),
        ]
        for owner, amount, final, age in outcomes:
            deal = await call_ok(
                client, "create_deal", pipeline_id=pipeline["id"], name="d", amount_minor=amount, owner=owner
            )
            _set_created(sales_server, deal["id"], age)
            await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=stage[final])
        for owner, amount in (("ana", 7_000), ("bo", 1_000)):
            await call_ok(
                client,
                "create_deal",
                pipeline_id=pipeline["id"],
                name="open",
                amount_minor=amount,
                owner=owner,
                close_date=(today + timedelta(days=5)).isoformat(),
            )
        report = {q["owner"]: q for q in await call_ok_list(client, "get_quota_attainment")}
        missing = await call_error(client, "get_quota_attainment", owner="cy")
        figures = await call_ok(
            client, "get_pipeline_metrics", start=start.isoformat(), end=today.isoformat()
        )
    assert again["id"] == team["id"]  # replaced, not duplicated
    ana, everyone = report["ana"], report["*"]
    assert (ana["won_minor"], ana["open_minor"]) == (6_000, 7_000)
    assert ana["attainment"] == pytest.approx(6_000 / 10_000)
    assert ana["coverage"] == pytest.approx(7_000 / (10_000 - 6_000))
    assert (everyone["amount_minor"], everyone["won_minor"], everyone["open_minor"]) == (
        30_000,
        11_000,
        8_000,
    )
    assert everyone["coverage"] == pytest.approx(8_000 / (30_000 - 11_000))
    assert (missing["code"], missing["field"]) == ("not_found", "owner")
    assert (figures["won"], figures["lost"], figures["won_minor"], figures["lost_minor"]) == (
        3,
        1,
        11_000,
        3_000,
    )
    assert figures["win_rate_count"] == pytest.approx(3 / 4)
    assert figures["win_rate_value"] == pytest.approx(11_000 / 14_000)
    cycle = statistics.median([10, 30, 20])
    assert figures["median_cycle_days"] == pytest.approx(cycle, abs=0.01)
    assert figures["open_deals"] == 2
    assert figures["velocity_minor_per_day"] == pytest.approx(2 * (11_000 / 3) * 0.75 / cycle, rel=1e-3)


async def call_ok_list(client, tool: str, **arguments) -> list:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return list(result.structured_content["result"])


async def test_metrics_without_closed_deals_are_null_not_zero(sales_server) -> None:
    async with connect(sales_server) as client:
        figures = await call_ok(client, "get_pipeline_metrics")
    assert figures["won"] == figures["lost"] == 0
    assert figures["win_rate_count"] is None
    assert figures["median_cycle_days"] is None
    assert figures["velocity_minor_per_day"] is None
