"""The retention toolset through the protocol: rule points with evidence, campaigns, escalations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import pytest
from factories import add_client, add_contact, at
from sqlalchemy import func
from sqlmodel import Session, select

from revops_core.audit import AuditEntry
from revops_core.testing import call_error, call_ok, connect, error_of
from revops_cs.models.clients import CsClient
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.retention import (
    CsBillingEvent,
    CsCampaignMessage,
    CsRetentionCampaign,
    CsRetentionTask,
    CsThresholdConfig,
)
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsUsageEvent

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


async def test_a_stale_health_snapshot_is_named_and_not_scored_by_the_renewal_rule(cs_server):
    """Issue 7: renewal risk read a snapshot of any age; past renewal_health_max_age_days it is stale."""
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "Stale", renewal_date=AS_OF + timedelta(days=20))
        usage(s, c, AS_OF - timedelta(days=1), 1, event="login")
        snapshot(s, c, AS_OF - timedelta(days=40), 45.0, "critical")
        cid = c.id
    args = {"client_id": cid, "as_of": AS_OF.isoformat()}
    async with connect(cs_server) as client:
        stale = await call_ok(client, "identify_churn_risk", **args)
        await call_ok(
            client,
            "configure_cs_thresholds",
            section="churn_rules",
            values={"renewal_health_max_age_days": 45},
        )
        fresh_enough = await call_ok(client, "identify_churn_risk", **args)

    def renewal(out: dict[str, Any]) -> dict[str, Any]:
        return next(r for r in out["clients"][0]["rules"] if r["rule"] == "renewal_low_health")

    assert renewal(stale)["points"] == 0
    assert "on 2026-05-21, 40 days old (older than 30), so not scored" in renewal(stale)["evidence"]
    assert renewal(fresh_enough)["points"] == 15
    assert "40 days old, threshold < 70" in renewal(fresh_enough)["evidence"]


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
        assert out["status"] == "planned"
        assert [row["client_id"] for row in out["plan"]["sample"]] == ids[:2]
        assert out["result"] is None
        assert out["plan"]["affected_count"] == 4
        assert count(cs_server, CsRetentionTask) == 0
        assert count(cs_server, CsCampaignMessage) == 0
        assert count(cs_server, CsRetentionCampaign) == 0
        done = await client.call_tool("execute_retention_campaign", {**args, "confirm": out["plan_id"]})
        again = await client.call_tool("execute_retention_campaign", {**args, "confirm": out["plan_id"]})
    assert done.structured_content["status"] == "done"
    res = done.structured_content["result"]
    assert res["targets"] == ids[:2]
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
        assert [row["client_id"] for row in res.structured_content["plan"]["sample"]] == [cid]
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
        e1 = late.structured_content
        e2 = fresh.structured_content
        assert e1["breached"] is True
        assert e1["minutes_left"] < 0
        opened = datetime.fromisoformat(e1["opened_at"])
        assert datetime.fromisoformat(e1["due_at"]) - opened == timedelta(hours=2)
        assert e2["breached"] is False
        assert datetime.fromisoformat(e2["due_at"]) - datetime.fromisoformat(e2["opened_at"]) == timedelta(
            hours=72
        )
        listed = await client.call_tool("list_escalations", {"status": "open"})
        assert listed.structured_content["breached"] == 1
        resolved = await client.call_tool(
            "manage_escalations", {"action": "resolve", "escalation_id": e2["id"]}
        )
        assert resolved.structured_content["status"] == "resolved"
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
    assert actions.count("cs.manage_escalations") == 3  # two creates and one resolve
    assert not any(a.endswith("list_escalations") for a in actions)  # a read is not audited


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
    # No login was ever recorded (only report_run events): that is missing data, not a risk signal
    # (issue 7), so no_login no longer fires; the usage drop does.
    assert out["clients"][0]["rules_before"] == ["usage_drop"]
    assert out["rule_share"]["usage_drop"] == 1.0
    assert error_of(bad)["code"] == "validation_error"


async def test_list_escalations_pages_by_deadline_and_filters(cs_server):
    now = datetime.now(UTC)
    with cs_server.runtime.db.session(write=True) as s:
        a = add_client(s, "A").id
        b = add_client(s, "B").id
    async with connect(cs_server) as client:
        made = []
        for cid, severity in ((a, "low"), (b, "urgent"), (a, "high")):
            made.append(
                await call_ok(
                    client,
                    "manage_escalations",
                    action="create",
                    client_id=cid,
                    severity=severity,
                    title=f"{severity} issue",
                    opened_at=(now - timedelta(hours=3)).isoformat(),
                )
            )
        first = await call_ok(client, "list_escalations", limit=2)
        rest = await call_ok(client, "list_escalations", limit=2, cursor=first["next_cursor"])
        only_a = await call_ok(client, "list_escalations", client_id=a)
        unknown = await call_error(client, "list_escalations", client_id=999)
        foreign = await call_error(client, "list_escalations", cursor="bm90LWEtY3Vyc29y")
    by_deadline = sorted(made, key=lambda e: (e["due_at"], e["id"]))
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in by_deadline]
    assert (first["total"], rest["total"], rest["next_cursor"]) == (3, 3, None)
    # the urgent one was due 2 hours after it was raised; the count covers every page
    assert (first["breached"], rest["breached"]) == (1, 1)
    assert {e["client_id"] for e in only_a["items"]} == {a}
    assert only_a["total"] == 2
    assert (unknown["code"], unknown["field"]) == ("not_found", "client_id")
    assert (foreign["code"], foreign["field"]) == ("validation_error", "cursor")


async def test_manage_escalations_names_the_field_an_action_needs(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        cid = add_client(s, "Esc").id
    async with connect(cs_server) as client:
        no_title = await call_error(
            client, "manage_escalations", action="create", client_id=cid, severity="low"
        )
        no_id = await call_error(client, "manage_escalations", action="resolve")
        unknown = await call_error(client, "manage_escalations", action="resolve", escalation_id=999)
    assert (no_title["code"], no_title["field"]) == ("validation_error", "title")
    assert (no_id["code"], no_id["field"]) == ("validation_error", "escalation_id")
    assert (unknown["code"], unknown["field"]) == ("not_found", "escalation_id")
    assert count(cs_server, CsEscalation) == 0


async def test_get_cs_thresholds_shows_defaults_and_overrides(cs_server):
    async with connect(cs_server) as client:
        before = await call_ok(client, "get_cs_thresholds", section="sla")
        await call_ok(
            client,
            "configure_cs_thresholds",
            section="sla",
            values={"resolution_minutes": {"urgent": 60, "high": 240, "normal": 960, "low": 2880}},
        )
        partial = await call_error(
            client, "configure_cs_thresholds", section="sla", values={"resolution_minutes": {"urgent": 30}}
        )
        after = await call_ok(client, "get_cs_thresholds", section="sla")
    assert before["values"]["resolution_minutes"]["urgent"] == 120
    # an override naming only some severities would leave the others without a deadline
    assert partial["code"] == "validation_error"
    assert "missing high, normal, low" in partial["message"]
    assert after["values"]["resolution_minutes"] == {"urgent": 60, "high": 240, "normal": 960, "low": 2880}


def test_every_config_section_is_a_section_name():
    from revops_cs.services import thresholds

    assert set(get_args(thresholds.Section)) == set(thresholds.SECTIONS)


async def test_a_read_only_server_lists_and_calls_the_retention_reads(make_settings):
    from revops_cs.server import create_server

    reader = create_server(make_settings(read_only=True))
    try:
        async with connect(reader) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            config = await call_ok(client, "get_cs_thresholds", section="churn_rules")
            listed = await call_ok(client, "list_escalations")
            risk = await call_ok(client, "identify_churn_risk")
            no_model = await call_error(client, "predict_churn")
    finally:
        reader.runtime.db.dispose()
    reads = {"get_cs_thresholds", "list_escalations", "predict_churn", "identify_churn_risk"}
    assert reads <= names
    writes = {
        "manage_escalations",
        "manage_churn_model",
        "configure_cs_thresholds",
        "execute_retention_campaign",
    }
    assert writes & names == set()
    assert config["values"]["high_at"] == 60
    assert (listed["total"], risk["evaluated"]) == (0, 0)
    assert (no_model["code"], no_model["field"]) == ("not_found", "model_id")


TOO_BIG = 2**31  # one above PostgreSQL INTEGER: refused by the schema, never sent to the database
RETENTION_IDS = [
    ("manage_escalations", {"action": "create", "severity": "low", "title": "x"}, "client_id"),
    ("manage_escalations", {"action": "resolve"}, "escalation_id"),
    ("list_escalations", {}, "client_id"),
    ("analyze_churn_postmortem", {}, "client_id"),
    ("identify_churn_risk", {}, "client_id"),
    ("predict_churn", {}, "client_id"),
    ("predict_churn", {}, "model_id"),
    ("execute_retention_campaign", {"name": "x", "task_title": "t"}, "client_ids"),
]


@pytest.mark.parametrize(("tool", "args", "field"), RETENTION_IDS)
async def test_an_id_above_the_integer_range_is_a_validation_error(cs_server, tool, args, field):
    value = [TOO_BIG] if field == "client_ids" else TOO_BIG
    async with connect(cs_server) as client:
        err = await call_error(client, tool, **args, **{field: value})
    assert err["code"] == "validation_error"
    assert err["field"].split(".")[0] == field
