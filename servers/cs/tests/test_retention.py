"""The retention toolset through the protocol: rule points with evidence, campaigns, escalations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import add_client, add_contact, at
from sqlalchemy import func
from sqlmodel import Session, select

from revops_core.audit import AuditEntry
from revops_core.testing import connect, error_of
from revops_cs.models.clients import CsClient
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.retention import (
    CsBillingEvent,
    CsCampaignMessage,
    CsEscalation,
    CsRetentionCampaign,
    CsRetentionTask,
    CsThresholdConfig,
)
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsHealthSnapshot, CsUsageEvent

pytestmark = pytest.mark.anyio
AS_OF = date(2026, 6, 30)


def usage(s: Session, c: CsClient, day: date, n: int, event: str = "report_run", user: str = "u1") -> None:
    for i in range(n):
        s.add(CsUsageEvent(client_id=c.id or 0, user_ref=user, event=event, occurred_at=at(day, 8 + i % 10)))


def count(server: Any, model: Any) -> int:
    with server.runtime.db.session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def snapshot(s: Session, c: CsClient, day: date, score: float, band: str) -> None:
    s.add(
        CsHealthSnapshot(
            client_id=c.id or 0,
            as_of=day,
            score=score,
            band=band,
            components="{}",
            weights="{}",
            inputs_hash="x" * 64,
        )
    )


def falling_client(s: Session) -> CsClient:
    """Usage 10 → 6 events (−40 %), logged in 2 days before AS_OF, nothing else wrong."""
    c = add_client(s, "Falling")
    usage(s, c, AS_OF - timedelta(days=40), 10)
    usage(s, c, AS_OF - timedelta(days=5), 5)
    usage(s, c, AS_OF - timedelta(days=2), 1, event="login")
    return c


def troubled_client(s: Session) -> CsClient:
    c = add_client(s, "Troubled", renewal_date=AS_OF + timedelta(days=45))
    usage(s, c, AS_OF - timedelta(days=45), 20)
    usage(s, c, AS_OF - timedelta(days=20), 1, event="login")
    usage(s, c, AS_OF - timedelta(days=19), 3)
    for d in (3, 10, 20):
        s.add(CsTicket(client_id=c.id or 0, subject="bug", created_at=at(AS_OF - timedelta(days=d))))
    s.add(CsFeedback(client_id=c.id or 0, kind="nps", score=9, submitted_at=at(AS_OF - timedelta(days=90))))
    s.add(CsFeedback(client_id=c.id or 0, kind="nps", score=3, submitted_at=at(AS_OF - timedelta(days=12))))
    snapshot(s, c, AS_OF - timedelta(days=7), 55.0, "at_risk")
    s.add(
        CsBillingEvent(
            client_id=c.id or 0,
            kind="payment_failed",
            amount_minor=100_00,
            occurred_at=at(AS_OF - timedelta(days=10)),
        )
    )
    s.add(
        CsBillingEvent(
            client_id=c.id or 0,
            kind="payment_failed",
            amount_minor=100_00,
            occurred_at=at(AS_OF - timedelta(days=50)),
        )
    )  # outside the 30-day window
    return c


async def test_usage_drop_of_40_percent_gets_exactly_25_points(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        cid = falling_client(s).id
    async with connect(cs_server) as client:
        res = await client.call_tool("identify_churn_risk", {"client_id": cid, "as_of": AS_OF.isoformat()})
    out = res.structured_content
    risk = out["clients"][0]
    rules = {r["rule"]: r for r in risk["rules"]}
    assert rules["usage_drop"]["points"] == 25
    assert "6 in the last 30 days vs 10" in rules["usage_drop"]["evidence"]
    assert "-40.0 %" in rules["usage_drop"]["evidence"]
    assert rules["no_login"]["points"] == 0
    assert "2 days before" in rules["no_login"]["evidence"]
    assert rules["renewal_low_health"]["points"] == 0
    assert risk["score"] == 25
    assert risk["level"] == "low"


async def test_every_rule_fires_with_evidence_and_score_is_capped(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        cid = troubled_client(s).id
    async with connect(cs_server) as client:
        res = await client.call_tool("identify_churn_risk", {"client_id": cid, "as_of": AS_OF.isoformat()})
    risk = res.structured_content["clients"][0]
    points = {r["rule"]: r["points"] for r in risk["rules"]}
    assert points == {
        "usage_drop": 25,
        "no_login": 20,
        "support_load": 15,
        "nps_detractor": 15,
        "renewal_low_health": 15,
        "failed_payment": 10,
    }
    assert risk["score"] == 100
    assert risk["level"] == "high"
    ev = {r["rule"]: r["evidence"] for r in risk["rules"]}
    assert "4 in the last 30 days vs 20 in the 30 days before (-80.0 %" in ev["usage_drop"]
    assert "20 days before" in ev["no_login"]
    assert "3 tickets" in ev["support_load"]
    assert "Latest NPS answer 3 on 2026-06-18" in ev["nps_detractor"]
    assert "health 55.0 (at_risk) on 2026-06-23" in ev["renewal_low_health"]
    assert "2026-06-20" in ev["failed_payment"]
    assert "2026-05-11" not in ev["failed_payment"]


async def test_renewal_rule_without_snapshot_says_so_and_portfolio_ranks(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        a = falling_client(s).id
        b = troubled_client(s).id
        c = add_client(s, "NoSnap", renewal_date=AS_OF + timedelta(days=10))
        usage(s, c, AS_OF - timedelta(days=1), 1, event="login")
        cid = c.id
    async with connect(cs_server) as client:
        res = await client.call_tool("identify_churn_risk", {"as_of": AS_OF.isoformat()})
    out = res.structured_content
    assert [r["client_id"] for r in out["clients"]] == [b, a, cid]
    assert out["counts"] == {"high": 1, "medium": 0, "low": 2}
    renewal = next(r for r in out["clients"][2]["rules"] if r["rule"] == "renewal_low_health")
    assert renewal["points"] == 0
    assert "no health snapshot" in renewal["evidence"]


async def test_thresholds_are_config_and_bad_config_changes_nothing(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        cid = falling_client(s).id
    async with connect(cs_server) as client:
        bad = await client.call_tool(
            "configure_cs_thresholds", {"section": "churn_rules", "values": {"usage_drop_pointz": 5}}
        )
        assert error_of(bad)["code"] == "validation_error"
        bad = await client.call_tool(
            "configure_cs_thresholds", {"section": "churn_rules", "values": {"medium_at": 70}}
        )
        assert error_of(bad)["code"] == "validation_error"
        assert count(cs_server, CsThresholdConfig) == 0
        ok = await client.call_tool(
            "configure_cs_thresholds", {"section": "churn_rules", "values": {"usage_drop_points": 40}}
        )
        assert ok.structured_content["values"]["usage_drop_points"] == 40
        res = await client.call_tool("identify_churn_risk", {"client_id": cid, "as_of": AS_OF.isoformat()})
    assert res.structured_content["clients"][0]["score"] == 40
    assert res.structured_content["clients"][0]["level"] == "medium"


async def test_errors_unknown_client_and_future_date(cs_server):
    async with connect(cs_server) as client:
        res = await client.call_tool("identify_churn_risk", {"client_id": 999})
        assert error_of(res)["code"] == "not_found"
        assert error_of(res)["field"] == "client_id"
        res = await client.call_tool("identify_churn_risk", {"as_of": "2999-01-01"})
        assert error_of(res)["field"] == "as_of"
        res = await client.call_tool("analyze_churn_postmortem", {})
        assert res.structured_content["churned_clients"] == 0


async def test_campaign_plan_then_confirm_creates_exactly_the_planned_rows(cs_server):
    today = datetime.now(UTC).date()
    with cs_server.runtime.db.session(write=True) as s:
        ids = []
        for name in ("A", "B", "C"):
            c = add_client(s, name, tier="enterprise" if name != "C" else "smb", owner="csm@x")
            add_contact(s, c, f"{name.lower()}@example.com", is_primary=True)
            ids.append(c.id)
    args = {
        "name": "Q3 save",
        "task_title": "Call the sponsor",
        "tier": "enterprise",
        "message_subject": "Checking in",
        "message_body": "Can we talk?",
    }
    async with connect(cs_server) as client:
        plan = await client.call_tool("execute_retention_campaign", args)
        out = plan.structured_content
        assert out["done"] is False
        assert out["targets"] == ids[:2]
        assert out["created"] == []
        assert out["plan"]["affected_count"] == 4
        assert count(cs_server, CsRetentionTask) == 0
        assert count(cs_server, CsCampaignMessage) == 0
        assert count(cs_server, CsRetentionCampaign) == 0
        done = await client.call_tool(
            "execute_retention_campaign", {**args, "confirm": out["plan"]["plan_id"]}
        )
        again = await client.call_tool(
            "execute_retention_campaign", {**args, "confirm": out["plan"]["plan_id"]}
        )
    res = done.structured_content
    assert res["done"] is True
    assert res["emails_sent"] == 0
    assert "no email was sent" in res["note"]
    assert error_of(again)["code"] == "confirmation_required"  # a plan executes once
    with cs_server.runtime.db.session() as s:
        tasks = list(s.exec(select(CsRetentionTask)))
        msgs = list(s.exec(select(CsCampaignMessage)))
    assert sorted(t.client_id for t in tasks) == ids[:2]
    assert all(t.due_date == today + timedelta(days=7) and t.title == "Call the sponsor" for t in tasks)
    assert sorted(m.to_email or "" for m in msgs) == ["a@example.com", "b@example.com"]
    assert all(m.status == "queued" for m in msgs)
    assert sorted((r["kind"], r["id"]) for r in res["created"]) == sorted(
        [("task", t.id) for t in tasks] + [("message", m.id) for m in msgs]
    )


async def test_campaign_by_risk_level_and_empty_filter(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "Silent")  # no login at all → +20, low
        cid = c.id
    async with connect(cs_server) as client:
        res = await client.call_tool(
            "execute_retention_campaign", {"name": "x", "task_title": "t", "risk_level": "high"}
        )
        assert error_of(res)["code"] == "validation_error"
        res = await client.call_tool("execute_retention_campaign", {"name": "x", "task_title": "t"})
        assert error_of(res)["field"] == "risk_level"
        res = await client.call_tool(
            "execute_retention_campaign", {"name": "x", "task_title": "t", "risk_level": "low"}
        )
        assert res.structured_content["targets"] == [cid]
    assert count(cs_server, CsRetentionTask) == 0


async def test_escalation_sla_clock_breach_and_resolve(cs_server):
    now = datetime.now(UTC)
    with cs_server.runtime.db.session(write=True) as s:
        cid = add_client(s, "Esc").id
    async with connect(cs_server) as client:
        late = await client.call_tool(
            "manage_escalations",
            {
                "action": "create",
                "client_id": cid,
                "severity": "urgent",
                "title": "Outage",
                "opened_at": (now - timedelta(hours=3)).isoformat(),
            },
        )
        fresh = await client.call_tool(
            "manage_escalations",
            {"action": "create", "client_id": cid, "severity": "low", "title": "Slow export"},
        )
        e1 = late.structured_content["escalations"][0]
        e2 = fresh.structured_content["escalations"][0]
        assert e1["breached"] is True
        assert e1["minutes_left"] < 0
        opened = datetime.fromisoformat(e1["opened_at"])
        assert datetime.fromisoformat(e1["due_at"]) - opened == timedelta(hours=2)
        assert e2["breached"] is False
        assert datetime.fromisoformat(e2["due_at"]) - datetime.fromisoformat(e2["opened_at"]) == timedelta(
            hours=72
        )
        listed = await client.call_tool("manage_escalations", {"action": "list", "status": "open"})
        assert listed.structured_content["breached"] == 1
        resolved = await client.call_tool(
            "manage_escalations", {"action": "resolve", "escalation_id": e2["id"]}
        )
        assert resolved.structured_content["escalations"][0]["status"] == "resolved"
        twice = await client.call_tool("manage_escalations", {"action": "resolve", "escalation_id": e2["id"]})
        assert error_of(twice)["code"] == "validation_error"
        missing = await client.call_tool(
            "manage_escalations", {"action": "create", "client_id": 999, "severity": "high", "title": "x"}
        )
        assert error_of(missing)["code"] == "not_found"
        # the urgent escalation now feeds the churn rules
        risk = await client.call_tool("identify_churn_risk", {"client_id": cid})
    support = next(r for r in risk.structured_content["clients"][0]["rules"] if r["rule"] == "support_load")
    assert support["points"] == 15
    assert f"#{e1['id']}" in support["evidence"]
    assert count(cs_server, CsEscalation) == 2
    with cs_server.runtime.db.session() as s:
        actions = [a.action for a in s.exec(select(AuditEntry))]
    assert actions.count("cs.manage_escalations") == 3  # two creates and one resolve; the list is not audited


async def test_postmortem_shows_trajectory_before_churn(cs_server):
    churn_day = date(2026, 5, 31)
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "Gone", stage="churned", churned_at=at(churn_day))
        usage(s, c, churn_day - timedelta(days=70), 30)
        usage(s, c, churn_day - timedelta(days=40), 12)
        usage(s, c, churn_day - timedelta(days=10), 2)
        s.add(CsTicket(client_id=c.id or 0, subject="x", created_at=at(churn_day - timedelta(days=5))))
        snapshot(s, c, churn_day - timedelta(days=20), 42.0, "critical")
        cid = c.id
        add_client(s, "Stays")
    async with connect(cs_server) as client:
        res = await client.call_tool("analyze_churn_postmortem", {"months": 3, "lead_days": 30})
        bad = await client.call_tool("analyze_churn_postmortem", {"client_id": cid + 1})
    out = res.structured_content
    assert out["churned_clients"] == 1
    months = out["clients"][0]["months"]
    assert [m["usage_events"] for m in months] == [2, 12, 30]
    assert [m["tickets"] for m in months] == [1, 0, 0]
    assert months[0]["health"] == 42.0
    assert months[1]["health"] is None
    assert out["clients"][0]["rules_before"] == ["usage_drop", "no_login"]
    assert out["rule_share"]["usage_drop"] == 1.0
    assert error_of(bad)["code"] == "validation_error"
