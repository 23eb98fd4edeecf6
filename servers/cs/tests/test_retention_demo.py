"""The onboarding/retention/expansion demo generators: deterministic, believable, usable by the tools."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from revops_core.testing import connect
from revops_cs.demo.clients import generate_clients_and_usage
from revops_cs.demo.expansion import generate_expansion
from revops_cs.demo.onboarding import generate_onboarding
from revops_cs.demo.retention import generate_retention
from revops_cs.models.clients import CsClient, CsStageChange
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.models.retention import CsBillingEvent

pytestmark = pytest.mark.anyio


async def test_demo_data_feeds_the_tools(cs_server):
    as_of = datetime.now(UTC).date() - timedelta(days=1)
    with cs_server.runtime.db.session(write=True) as s:
        rng = random.Random(7)
        clients = generate_clients_and_usage(s, rng, clients=80, as_of=as_of)
        generate_retention(s, rng, clients, as_of)
        generate_expansion(s, rng, clients, as_of)
        generate_onboarding(s, rng, clients, as_of)
    with cs_server.runtime.db.session() as s:
        churned = list(s.exec(select(CsClient).where(CsClient.stage == "churned")))
        assert len(churned) >= 10
        assert all(c.churned_at is not None for c in churned)
        for c in churned:
            assert s.exec(
                select(CsStageChange).where(
                    CsStageChange.client_id == c.id, CsStageChange.to_stage == "churned"
                )
            ).first()
            after = s.exec(
                select(func.count())
                .select_from(CsMrrMonth)
                .where(CsMrrMonth.client_id == c.id, CsMrrMonth.month >= c.churned_at.date().replace(day=1))
            ).one()
            assert after == 0
        failed = s.exec(
            select(func.count()).select_from(CsBillingEvent).where(CsBillingEvent.kind == "payment_failed")
        ).one()
        assert failed > 0
    start = (as_of.replace(day=1) - timedelta(days=365)).replace(day=1)
    async with connect(cs_server) as client:
        rev = await client.call_tool(
            "analyze_revenue_retention",
            {"start_month": start.isoformat(), "end_month": as_of.replace(day=1).isoformat()},
        )
        model = await client.call_tool("manage_churn_model", {"action": "train", "as_of": as_of.isoformat()})
        pred = await client.call_tool("predict_churn", {"as_of": as_of.isoformat(), "limit": 5})
        funnel = await client.call_tool("analyze_onboarding", {"view": "funnel"})
        ttv = await client.call_tool("analyze_onboarding", {"view": "time_to_value"})
        risk = await client.call_tool("identify_churn_risk", {"as_of": as_of.isoformat()})
        pm = await client.call_tool("analyze_churn_postmortem", {})
    r = rev.structured_content
    assert r["churned_accounts"] > 0
    assert r["grr"] <= 1.0
    assert 0.5 < r["nrr"] < 1.5
    m = model.structured_content["model"]
    print(
        f"\ndemo history model: {m['positives']}+/{m['negatives']}- "
        f"AUC {m['auc']} lift {m['top_decile_lift']}"
    )
    assert not model.is_error
    assert m["auc"] > 0.6
    assert len(pred.structured_content["predictions"]) == 5
    assert funnel.structured_content["funnel"]["plans"] > 0
    assert ttv.structured_content["time_to_value"]["reached"] > 0
    assert risk.structured_content["evaluated"] > 0
    assert pm.structured_content["churned_clients"] == len(churned)


def test_demo_is_deterministic(db):
    def digest() -> list[tuple[int, str, int]]:
        with db.session(write=True) as s:
            rng = random.Random(3)
            clients = generate_clients_and_usage(s, rng, clients=15, as_of=date(2026, 6, 30))
            generate_retention(s, rng, clients, date(2026, 6, 30))
            generate_expansion(s, rng, clients, date(2026, 6, 30))
            ids = [c.id for c in clients]
            rows = s.exec(select(CsMrrMonth).where(CsMrrMonth.client_id.in_(ids)).order_by(CsMrrMonth.id))
            out = [(r.client_id - ids[0], r.month.isoformat(), r.mrr_minor) for r in rows]
            s.rollback()
        return out

    assert digest() == digest()
