"""The pipeline waterfall against flows the test computed from the deals it created and changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from revops_core.testing import call_ok, connect
from revops_sales.models.deals import SalesDeal

pytestmark = pytest.mark.anyio


def _created_days_ago(server, deal_id: int, days: int) -> None:
    with server.runtime.db.session(write=True) as session:
        deal = session.get(SalesDeal, deal_id)
        assert deal is not None
        deal.created_at = datetime.now(UTC) - timedelta(days=days)
        session.add(deal)


async def test_every_change_falls_in_one_category_and_the_ends_reconcile(sales_server) -> None:
    today = datetime.now(UTC).date()
    soon, later = (today + timedelta(days=5)).isoformat(), (today + timedelta(days=40)).isoformat()
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        stage = {s["name"]: s["id"] for s in pipeline["stages"]}

        async def deal(name: str, amount: int, close: str, *, old: bool) -> int:
            made = await call_ok(
                client,
                "create_deal",
                pipeline_id=pipeline["id"],
                name=name,
                amount_minor=amount,
                close_date=close,
            )
            if old:
                _created_days_ago(sales_server, made["id"], 40)
            return int(made["id"])

        raised = await deal("raised", 1_000, soon, old=True)
        won = await deal("won", 2_000, soon, old=True)
        pushed = await deal("pushed", 700, soon, old=True)
        pulled = await deal("pulled", 400, later, old=True)
        moved = await deal("moved", 100, soon, old=True)
        await deal("new", 300, today.isoformat(), old=False)
        lost = await deal("lost", 900, soon, old=False)
        await call_ok(client, "update_deal", deal_id=raised, amount_minor=1_500)
        await call_ok(client, "move_deal_stage", deal_id=won, stage_id=stage["closed won"])
        await call_ok(client, "update_deal", deal_id=pushed, close_date=later)
        await call_ok(
            client, "update_deal", deal_id=pulled, close_date=(today + timedelta(days=1)).isoformat()
        )
        await call_ok(client, "move_deal_stage", deal_id=moved, stage_id=stage["proposal"])
        await call_ok(client, "move_deal_stage", deal_id=lost, stage_id=stage["closed lost"])
        result = await call_ok(
            client,
            "get_pipeline_waterfall",
            start=(today - timedelta(days=20)).isoformat(),
            end=(today + timedelta(days=10)).isoformat(),
        )
    expected = {
        "open_at_start_minor": 1_000 + 2_000 + 700 + 100,  # the old deals closing by the end
        "created_minor": 300 + 900,
        "increased_minor": 500,
        "decreased_minor": 0,
        "pulled_in_minor": 400,
        "reopened_minor": 0,
        "won_minor": 2_000,
        "lost_minor": 900,
        "pushed_out_minor": 700,
        "removed_minor": 0,
        "open_at_end_minor": 1_500 + 300 + 400 + 100,
        "advanced_moves": 1,
        "reconciles": True,
    }
    assert {k: result[k] for k in expected} == expected


def test_reading_only_the_deals_that_can_touch_the_period_changes_no_figure(db) -> None:
    """The period filter is an optimisation: replaying every deal of two years gives the same waterfall."""
    from datetime import date

    from revops_sales.analytics import waterfall as maths
    from revops_sales.demo import generate_sales_demo
    from revops_sales.services import waterfall

    as_of = date(2026, 12, 6)
    with db.session(write=True) as session:
        generate_sales_demo(session, seed=3, deals=400, as_of=as_of)
    everything = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    with db.session() as session:
        every_deal = waterfall._histories(session, "default", None, "USD", *everything)
        for start, end in ((date(2026, 11, 1), date(2026, 11, 30)), (date(2025, 6, 1), date(2025, 9, 30))):
            got = waterfall.period_waterfall(
                session, "default", pipeline_id=None, start=start, end=end, currency="USD"
            )
            since = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
            until = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
            full = maths.replay(every_deal, since=since, until=until, last_day=end)
            assert (got.open_at_start_minor, got.open_at_end_minor) == (full.start, full.end)
            assert got.won_minor == full.flows["won"]
            assert got.created_minor == full.flows["created"]
            assert got.pushed_out_minor == full.flows["pushed_out"]
            assert got.reconciles
            assert (
                got.won_minor > 0
            )  # the demo closes deals in both periods: the check has something to compare
