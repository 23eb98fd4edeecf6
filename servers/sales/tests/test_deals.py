"""Pipelines, deals, stage moves and the period forecast, through the protocol on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.models.deals import SalesDeal, SalesStageMove

pytestmark = pytest.mark.anyio


async def _pipeline(client) -> dict:
    return await call_ok(client, "create_pipeline", name="New business")


def _stage(pipeline: dict, name: str) -> int:
    return next(s["id"] for s in pipeline["stages"] if s["name"] == name)


async def test_a_pipeline_gets_the_reference_stages_and_deals_record_every_move(sales_server) -> None:
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        assert [(s["name"], s["probability_pct"]) for s in pipeline["stages"]][:3] == [
            ("prospecting", 10),
            ("qualification", 20),
            ("needs analysis", 25),
        ]
        deal = await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="Acme", amount_minor=12_000_00
        )
        assert (deal["stage"], deal["status"], deal["probability_pct"]) == ("prospecting", "open", 10)
        await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=_stage(pipeline, "proposal"))
        won = await call_ok(
            client, "move_deal_stage", deal_id=deal["id"], stage_id=_stage(pipeline, "closed won")
        )
        assert won["status"] == "won"
        assert won["closed_at"] is not None
        detail = await call_ok(client, "get_deal", deal_id=deal["id"])
    assert [m["to_stage_id"] for m in detail["history"]] == [
        _stage(pipeline, "prospecting"),
        _stage(pipeline, "proposal"),
        _stage(pipeline, "closed won"),
    ]
    assert detail["history"][0]["from_stage_id"] is None
    assert count_rows(sales_server.runtime.db, SalesStageMove) == 3


async def test_bad_input_names_the_field_and_changes_nothing(sales_server) -> None:
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        other = await call_ok(client, "create_pipeline", name="Renewals")
        foreign_stage = _stage(other, "proposal")
        wrong_stage = await call_error(
            client,
            "create_deal",
            pipeline_id=pipeline["id"],
            name="X",
            amount_minor=1,
            stage_id=foreign_stage,
        )
        too_big = await call_error(client, "get_deal", deal_id=2**31)
        negative = await call_error(
            client, "create_deal", pipeline_id=pipeline["id"], name="X", amount_minor=-1
        )
        duplicate = await call_error(client, "create_pipeline", name="Renewals")
        bad_stages = await call_error(
            client, "create_pipeline", name="Broken", stages=[{"name": "a", "probability_pct": 10}] * 3
        )
    assert (wrong_stage["code"], wrong_stage["field"]) == ("not_found", "stage_id")
    assert (too_big["code"], too_big["field"]) == ("validation_error", "deal_id")
    assert (negative["code"], negative["field"]) == ("validation_error", "amount_minor")
    assert (duplicate["code"], duplicate["field"]) == ("conflict", "name")
    assert (bad_stages["code"], bad_stages["field"]) == ("validation_error", "stages")
    assert count_rows(sales_server.runtime.db, SalesDeal) == 0


async def test_list_deals_pages_by_keyset_and_filters_in_sql(sales_server) -> None:
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        ids = [
            (
                await call_ok(
                    client,
                    "create_deal",
                    pipeline_id=pipeline["id"],
                    name=f"D{i}",
                    amount_minor=i * 100,
                    owner="ana" if i % 2 else "bo",
                )
            )["id"]
            for i in range(1, 8)
        ]
        first = await call_ok(client, "list_deals", owner="ana", limit=2)
        second = await call_ok(client, "list_deals", owner="ana", limit=3, cursor=first["next_cursor"])
        foreign = await call_error(client, "list_deals", cursor="eyJzIjogImNsaWVudHMiLCAiayI6IFsxXX0")
    seen = [d["id"] for page in (first, second) for d in page["items"]]
    assert seen == [ids[0], ids[2], ids[4], ids[6]]
    assert first["total"] == second["total"] == 4
    assert first["next_cursor"] is not None
    assert second["next_cursor"] is None
    assert (foreign["code"], foreign["field"]) == ("validation_error", "cursor")


async def test_forecast_matches_the_deals_the_test_inserted(sales_server) -> None:
    today = datetime.now(UTC).date()
    end = today + timedelta(days=30)
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        specs = [(10_000_00, "proposal"), (5_000_00, "negotiation"), (20_000_00, "prospecting")]
        for amount, stage in specs:
            await call_ok(
                client,
                "create_deal",
                pipeline_id=pipeline["id"],
                name=stage,
                amount_minor=amount,
                stage_id=_stage(pipeline, stage),
                close_date=end.isoformat(),
            )
        won = await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="won", amount_minor=3_000_00
        )
        await call_ok(client, "move_deal_stage", deal_id=won["id"], stage_id=_stage(pipeline, "closed won"))
        await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="undated", amount_minor=9_999_00
        )
        result = await call_ok(
            client, "forecast_period", start=today.isoformat(), end=end.isoformat(), quota_minor=20_000_00
        )
    probabilities = {"proposal": 0.65, "negotiation": 0.80, "prospecting": 0.10}
    weighted = sum(a * probabilities[s] for a, s in specs)
    variance = sum(a * a * probabilities[s] * (1 - probabilities[s]) for a, s in specs)
    assert result["open_deals"] == 3
    assert result["open_minor"] == 35_000_00
    assert result["weighted_minor"] == pytest.approx(weighted)
    assert result["won_minor"] == 3_000_00
    assert result["expected_total_minor"] == pytest.approx(3_000_00 + weighted)
    assert result["exact_std_minor"] == pytest.approx(variance**0.5)
    assert result["without_close_date"] == 1
    assert result["coverage"] == pytest.approx(35_000_00 / (20_000_00 - 3_000_00))
    assert result["simulation"]["runs"] == 10_000
    # Won 3 000 + open wins must reach 20 000: proposal + negotiation make only 15 000 more, so the
    # quota is reached exactly when the 20 000 prospecting deal is won: p = 0.10 (binomial SE 0.003).
    assert result["p_reach_quota"] == pytest.approx(0.10, abs=0.01)


async def test_forecast_refuses_mixed_currencies_without_a_choice(sales_server) -> None:
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="a", amount_minor=1, currency="USD"
        )
        await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="b", amount_minor=1, currency="EUR"
        )
        mixed = await call_error(client, "forecast_period")
        chosen = await call_ok(client, "forecast_period", currency="EUR", start=date(2020, 1, 1).isoformat())
    assert (mixed["code"], mixed["field"]) == ("validation_error", "currency")
    assert chosen["currency"] == "EUR"
    assert chosen["without_close_date"] == 1


async def test_the_default_list_is_the_pipeline_review(make_settings) -> None:
    """Without --toolsets: deals and forecasting (and meta); every other toolset only when named."""
    from revops_sales import toolsets
    from revops_sales.server import create_server

    server = create_server(make_settings(toolsets=None))
    try:
        async with connect(server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
    finally:
        server.runtime.db.dispose()
    listed = {t.name for ts in (toolsets.deals, toolsets.forecasting) for t in ts.tools}
    unlisted = {t.name for ts in toolsets.ALL if not ts.default for t in ts.tools}
    assert {ts.name for ts in toolsets.ALL if ts.default} == {"deals", "forecasting"}
    assert {"server_info", "query_audit_log"} | listed == names
    assert not names & unlisted
    assert unlisted  # the other toolsets hold tools: the check above has something to exclude


async def test_historical_win_rates_and_category_rollups(sales_server) -> None:
    today = datetime.now(UTC).date()
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        proposal, won_stage, lost_stage = (
            _stage(pipeline, n) for n in ("proposal", "closed won", "closed lost")
        )
        for outcome in [won_stage] * 9 + [lost_stage] * 3:  # 12 closed deals went through proposal
            deal = await call_ok(
                client, "create_deal", pipeline_id=pipeline["id"], name="h", amount_minor=0, stage_id=proposal
            )
            await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=outcome)
        won = await call_ok(client, "create_deal", pipeline_id=pipeline["id"], name="w", amount_minor=300)
        await call_ok(client, "move_deal_stage", deal_id=won["id"], stage_id=won_stage)
        for amount, category, stage in (
            (1000, "commit", proposal),
            (500, "best_case", _stage(pipeline, "qualification")),
        ):
            await call_ok(
                client,
                "create_deal",
                pipeline_id=pipeline["id"],
                name=category,
                amount_minor=amount,
                stage_id=stage,
                close_date=today.isoformat(),
                forecast_category=category,
            )
        result = await call_ok(
            client,
            "forecast_period",
            start=today.isoformat(),
            end=today.isoformat(),
            probabilities="historical",
        )
    by_stage = {p["stage"]: p for p in result["stage_probabilities"]}
    # The 300 won deal went prospecting → won, so it does not count for proposal.
    assert (by_stage["proposal"]["won"], by_stage["proposal"]["lost"]) == (9, 3)
    smoothed = (9 + 10 * 0.65) / (12 + 10)
    assert by_stage["proposal"]["used"] == pytest.approx(smoothed)
    assert by_stage["proposal"]["source"] == "history"
    # No closed deal went through qualification: under 10 observations the configured 20 % is used.
    assert (by_stage["qualification"]["used"], by_stage["qualification"]["source"]) == (0.20, "configured")
    assert result["weighted_minor"] == pytest.approx(1000 * smoothed + 500 * 0.20)
    assert result["won_minor"] == 300
    assert result["categories"] == {
        "closed": 300,
        "commit": 1300,
        "most_likely": 1300,
        "best_case": 1800,
        "pipeline": 1800,
    }


async def test_the_largest_amount_the_schema_accepts_is_stored_on_every_backend(sales_server) -> None:
    from revops_core.params import MAX_MINOR

    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        deal = await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="big", amount_minor=MAX_MINOR
        )
        again = await call_ok(client, "get_deal", deal_id=deal["id"])
        over = await call_error(
            client, "create_deal", pipeline_id=pipeline["id"], name="x", amount_minor=MAX_MINOR + 1
        )
    assert again["amount_minor"] == MAX_MINOR
    assert (over["code"], over["field"]) == ("validation_error", "amount_minor")
