"""The demo generator: deterministic, internally consistent, and usable by the health tools."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from revops_core.testing import connect
from revops_cs.demo.clients import generate_clients_and_usage
from revops_cs.models.clients import CsClient, CsStageChange
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.usage import CsUsageEvent

pytestmark = pytest.mark.anyio
AS_OF = date(2026, 3, 31)


def _shape(server, clients: list[CsClient]) -> list[tuple]:
    with server.runtime.db.session() as s:
        return [
            (
                c.tier,
                c.arr_minor,
                c.seats_purchased,
                c.stage,
                c.contract_start,
                s.exec(select(func.count()).where(CsUsageEvent.client_id == c.id)).one(),
            )
            for c in clients
        ]


async def test_same_seed_same_portfolio_and_consistent_history(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        first = generate_clients_and_usage(s, random.Random(42), clients=6, as_of=AS_OF)
    with cs_server.runtime.db.session(write=True) as s:
        second = generate_clients_and_usage(s, random.Random(42), clients=6, as_of=AS_OF)
    assert _shape(cs_server, first) == _shape(cs_server, second)
    with cs_server.runtime.db.session() as s:
        for c in first:
            last = s.exec(
                select(CsStageChange)
                .where(CsStageChange.client_id == c.id)
                .order_by(col(CsStageChange.at).desc())
            ).first()
            assert last.to_stage == c.stage
            latest_event = s.exec(
                select(func.max(CsUsageEvent.occurred_at)).where(CsUsageEvent.client_id == c.id)
            ).one()
            if c.churned_at is not None and latest_event is not None:
                assert latest_event.date() < c.churned_at.date()
    async with connect(cs_server) as client:
        scored = await client.call_tool(
            "calculate_health_score", {"scope": "portfolio", "as_of": AS_OF.isoformat()}
        )
        patterns = await client.call_tool("analyze_engagement_patterns", {"as_of": AS_OF.isoformat()})
    active = [c for c in first + second if c.stage != "churned"]  # the portfolio leaves churned accounts out
    assert len(scored.structured_content["portfolio"]) == len(active)
    for p in patterns.structured_content["flagged"]:
        assert p["change_pct"] <= -30


async def test_full_demo_has_health_history_for_trends(cs_server):
    from revops_cs.demo import generate_cs_demo

    with cs_server.runtime.db.session(write=True) as s:
        portfolio = generate_cs_demo(s, seed=3, clients=4, as_of=AS_OF, health_weeks=8)
        live = [c.id for c in portfolio if c.stage != "churned"]
    with cs_server.runtime.db.session() as s:
        snapshots = s.exec(select(func.count()).select_from(CsHealthSnapshot)).one()
    assert snapshots == 8 * len(live)
    async with connect(cs_server) as client:
        trends = await client.call_tool("analyze_health_trends", {"as_of": AS_OF.isoformat()})
    assert sorted(t["client_id"] for t in trends.structured_content["clients"]) == sorted(live)
