"""The expansion toolset: NRR/GRR worked examples from MRR rows, LTV, upsell signals, renewal forecast."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from factories import add_client, at

from revops_core.testing import call_error, call_ok, connect, error_of
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.usage import CsUsageEvent

pytestmark = pytest.mark.anyio
AS_OF = date(2026, 6, 30)


async def record_mrr(client: Any, changes: list[tuple[int, str, int]]) -> None:
    """MRR changes (client id, day, new MRR) recorded through record_billing, as a team records them."""
    events = [
        {"client_id": cid, "kind": "mrr_change", "amount_minor": amount, "occurred_at": f"{day}T00:00:00Z"}
        for cid, day, amount in changes
    ]
    report = await call_ok(client, "record_billing", events=events)
    assert (report["recorded"], report["errors"]) == (len(events), [])


async def test_nrr_grr_worked_example(cs_server):
    # Start base: A 1000, B 1000, C 500, D 500 (3000). End: A 1200 (+200), B 900 (−100), C 0 (churn),
    # D 500; E is new (excluded). NRR = 2600/3000, GRR = (1000+900+0+500)/3000 = 2400/3000.
    with cs_server.runtime.db.session(write=True) as s:
        a, b, c, d, e = (add_client(s, n).id or 0 for n in "ABCDE")
    changes = [(a, "2026-01-01", 1000_00), (a, "2026-04-01", 1200_00)]
    changes += [(b, "2026-01-01", 1000_00), (b, "2026-04-01", 900_00)]
    changes += [(d, "2026-01-01", 500_00), (c, "2026-01-01", 500_00), (c, "2026-03-10", 0)]
    changes += [(e, "2026-04-01", 9999_00)]
    async with connect(cs_server) as client:
        await record_mrr(client, changes)
        res = await client.call_tool(
            "analyze_revenue_retention", {"start_month": "2026-01-01", "end_month": "2026-04-01"}
        )
    out = res.structured_content
    assert out["accounts"] == 4
    assert out["churned_accounts"] == 1
    assert out["start_mrr_minor"] == 3000_00
    assert out["end_mrr_minor"] == 2600_00
    assert (out["expansion_mrr_minor"], out["contraction_mrr_minor"], out["churned_mrr_minor"]) == (
        200_00,
        100_00,
        500_00,
    )
    assert out["nrr"] == pytest.approx(2600 / 3000)
    assert out["grr"] == pytest.approx(2400 / 3000)
    assert out["annualised_gross_churn"] == pytest.approx(1 - (1 - 600 / 3000) ** (12 / 3))  # 3 months
    ltv = out["ltv"]
    monthly = 1 - (2400 / 3000) ** (1 / 3)
    arpa = round((1200_00 + 900_00 + 500_00 + 9999_00) / 4)  # accounts active in end month
    assert ltv["arpa_minor"] == arpa
    assert ltv["gross_margin"] == 0.8
    assert ltv["monthly_revenue_churn"] == round(monthly, 6)
    assert ltv["ltv_minor"] == round(arpa * 0.8 / monthly)


async def test_grr_never_above_100_and_ltv_refused_without_churn(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        a = add_client(s, "Grower").id or 0
    async with connect(cs_server) as client:
        await record_mrr(client, [(a, "2026-01-01", 100_00), (a, "2026-02-01", 300_00)])
        res = await client.call_tool(
            "analyze_revenue_retention", {"start_month": "2026-01-01", "end_month": "2026-02-01"}
        )
        out = res.structured_content
        assert out["nrr"] == 3.0
        assert out["grr"] == 1.0
        assert out["ltv"]["ltv_minor"] is None
        assert "unbounded" in out["ltv"]["note"]
        bad = await client.call_tool(
            "analyze_revenue_retention", {"start_month": "2026-01-15", "end_month": "2026-02-01"}
        )
        assert error_of(bad)["field"] == "start_month"
        bad = await client.call_tool(
            "analyze_revenue_retention", {"start_month": "2026-03-01", "end_month": "2026-02-01"}
        )
        assert error_of(bad)["field"] == "end_month"
        empty = await client.call_tool(
            "analyze_revenue_retention", {"start_month": "2025-01-01", "end_month": "2025-02-01"}
        )
        assert error_of(empty)["code"] == "validation_error"
        assert "No MRR rows" in error_of(empty)["message"]


async def test_upsell_signals_cite_their_numbers(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "Busy", seats_purchased=5, renewal_date=AS_OF + timedelta(days=90))
        for i in range(4):  # 4 distinct active users in 30 days ÷ 5 seats = 80 %
            s.add(
                CsUsageEvent(
                    client_id=c.id or 0,
                    user_ref=f"u{i}",
                    event="login",
                    occurred_at=at(AS_OF - timedelta(days=3)),
                )
            )
        for _ in range(6):  # 10 events this quarter vs 8 before → +25 %
            s.add(
                CsUsageEvent(
                    client_id=c.id or 0,
                    user_ref="u0",
                    event="report",
                    occurred_at=at(AS_OF - timedelta(days=50)),
                )
            )
        for _ in range(8):
            s.add(
                CsUsageEvent(
                    client_id=c.id or 0,
                    user_ref="u0",
                    event="report",
                    occurred_at=at(AS_OF - timedelta(days=120)),
                )
            )
        s.add(
            CsHealthSnapshot(
                client_id=c.id or 0,
                as_of=AS_OF,
                score=85.0,
                band="good",
                components="{}",
                weights="{}",
                inputs_hash="h" * 64,
            )
        )
        s.add(
            CsFeedback(client_id=c.id or 0, kind="nps", score=10, submitted_at=at(AS_OF - timedelta(days=30)))
        )
        quiet = add_client(s, "Quiet")
        cid, qid = c.id, quiet.id
    async with connect(cs_server) as client:
        res = await client.call_tool("identify_upsell_opportunities", {"as_of": AS_OF.isoformat()})
        one = await client.call_tool(
            "identify_upsell_opportunities", {"client_id": qid, "as_of": AS_OF.isoformat()}
        )
    opps = res.structured_content["opportunities"]
    assert [o["client_id"] for o in opps] == [cid]
    sig = {x["signal"]: x["evidence"] for x in opps[0]["signals"]}
    assert "4 active users in 30 days ÷ 5 seats = 80.0 %" in sig["seat_utilisation"]
    assert "10 usage events in the last 90 days vs 8 before (+25.0 %)" in sig["usage_growth"]
    assert "Health 85.0" in sig["healthy_promoter"]
    assert "NPS 10" in sig["healthy_promoter"]
    assert "in 90 days" in sig["renewal_window"]
    assert "plan_limits_hit" not in sig
    quiet_out = one.structured_content["opportunities"][0]
    assert quiet_out["signals"] == []
    assert any("no seats_purchased" in m for m in quiet_out["not_evaluated"])


async def test_renewal_forecast_uses_band_probabilities(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        a = add_client(s, "A", arr_minor=100_000_00, renewal_date=AS_OF + timedelta(days=30))
        b = add_client(s, "B", arr_minor=50_000_00, renewal_date=AS_OF + timedelta(days=60))
        add_client(s, "C", arr_minor=70_000_00, renewal_date=AS_OF + timedelta(days=200))  # outside window
        for cl, score, band in ((a, 92.0, "excellent"), (b, 40.0, "critical")):
            s.add(
                CsHealthSnapshot(
                    client_id=cl.id or 0,
                    as_of=AS_OF - timedelta(days=1),
                    score=score,
                    band=band,
                    components="{}",
                    weights="{}",
                    inputs_hash="h" * 64,
                )
            )
        d = add_client(s, "D", arr_minor=10_000_00, renewal_date=AS_OF + timedelta(days=5))  # no snapshot
        ids = [d.id, a.id, b.id]
    async with connect(cs_server) as client:
        res = await client.call_tool("track_renewals", {"within_days": 90, "as_of": AS_OF.isoformat()})
    out = res.structured_content
    assert [r["client_id"] for r in out["renewals"]] == ids
    # No renewal outcomes recorded: each band's p is its prior mean, labelled an assumption.
    assert [r["probability"] for r in out["renewals"]] == [None, 0.95, 0.3]
    assert [r["health_age_days"] for r in out["renewals"]] == [None, 1, 1]
    assert {o["band"]: (o["probability"], o["observations"], o["source"]) for o in out["odds"]} == {
        band: (p, 0, "prior (assumption, no history)")
        for band, p in (("excellent", 0.95), ("good", 0.85), ("at_risk", 0.6), ("critical", 0.3))
    }
    fc = out["forecast"][0]
    assert fc["renewing_arr_minor"] == 160_000_00
    assert fc["expected_arr_minor"] == round(100_000_00 * 0.95 + 50_000_00 * 0.3)
    assert fc["unforecast_arr_minor"] == 10_000_00
    b_row = out["renewals"][2]
    assert b_row["risk_score"] >= 15  # renewal within 90 days and health 40 < 70


async def test_an_id_above_the_integer_range_is_a_validation_error(cs_server):
    async with connect(cs_server) as client:
        err = await call_error(client, "identify_upsell_opportunities", client_id=2**31)
    assert (err["code"], err["field"]) == ("validation_error", "client_id")
