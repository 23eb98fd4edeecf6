"""The health toolset through the protocol; expected numbers are worked out from the rows inserted here."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from factories import add_client, at
from sqlalchemy import func
from sqlmodel import select
from test_clients import AS_OF, add_events, call, rows

from revops_core.testing import call_ok, connect, error_of
from revops_cs.models.clients import CsStageChange
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsFeature, CsSegmentRule, CsUsageEvent

pytestmark = pytest.mark.anyio


def _snap(client_id: int, day: date, score: float, band: str) -> CsHealthSnapshot:
    return CsHealthSnapshot(
        client_id=client_id,
        as_of=day,
        score=score,
        band=band,
        components="{}",
        weights="{}",
        inputs_hash=f"{client_id}-{day}",
    )


async def test_record_usage_events_validates_and_dedupes(cs_server):
    with cs_server.runtime.db.session() as s:
        cid = add_client(s, "Acme").id
    events = [
        {
            "client_id": cid,
            "user_ref": "a",
            "event": "login",
            "occurred_at": "2026-03-01T10:00:00Z",
            "external_id": "e1",
        },
        {
            "client_id": cid,
            "user_ref": "b",
            "event": "report",
            "feature": "reports",
            "occurred_at": "2026-03-01T11:00:00Z",
            "external_id": "e2",
        },
    ]
    async with connect(cs_server) as client:
        first = await call(client, "record_usage_events", {"events": events, "source": "mixpanel"})
        again = await call(client, "record_usage_events", {"events": events, "source": "mixpanel"})
        unknown = await client.call_tool("record_usage_events", {"events": [dict(events[0], client_id=999)]})
        naive = await client.call_tool(
            "record_usage_events", {"events": [dict(events[0], occurred_at="2026-03-01T10:00:00")]}
        )
    assert (first["inserted"], first["duplicates"]) == (2, 0)
    assert (again["inserted"], again["duplicates"]) == (0, 2)
    assert error_of(unknown)["code"] == "not_found"
    assert error_of(naive)["code"] == "validation_error"
    assert rows(cs_server, CsUsageEvent) == 2


def _scored_client(s) -> int:
    c = add_client(
        s,
        "Acme",
        tier="smb",
        seats_purchased=10,
        renewal_date=AS_OF + timedelta(days=100),
        contract_start=date(2025, 4, 1),
    )
    add_events(
        s,
        c,
        [("2026-03-26", f"u{i}", "login", "") for i in range(1, 5)]
        + [("2026-03-20", "u1", "report", "reports"), ("2026-03-10", "u9", "login", "")],
    )
    for day in ("2026-03-05", "2026-03-25", "2026-02-01"):
        s.add(CsTicket(client_id=c.id, subject="t", created_at=at(day)))
    for score in (10, 9, 3):
        s.add(CsFeedback(client_id=c.id, kind="nps", score=score, submitted_at=at("2026-02-15")))
    s.add(CsBillingEvent(client_id=c.id, kind="payment_failed", occurred_at=at("2026-03-15")))
    for key, tiers in (("reports", []), ("export", []), ("sso", ["enterprise"])):
        s.add(CsFeature(key=key, name=key, tiers=json.dumps(tiers)))
    s.flush()
    return c.id


async def test_health_score_is_the_weighted_mean_of_explained_components(cs_server):
    with cs_server.runtime.db.session() as s:
        cid = _scored_client(s)
    async with connect(cs_server) as client:
        out = (await call(client, "calculate_health_score", {"client_id": cid, "as_of": AS_OF.isoformat()}))[
            "client"
        ]
    parts = {c["name"]: c for c in out["components"]}
    assert parts["usage"]["score"] == 50  # 4 of 10 seats active vs smb target 0.8
    assert parts["engagement"]["score"] == 90  # last login 5 days ago
    assert parts["support"]["score"] == 80
    assert parts["support"]["inputs"]["tickets_opened"] == 2
    assert parts["sentiment"]["score"] == pytest.approx(66.67)  # NPS 33.3 from 10, 9, 3
    assert parts["adoption"]["score"] == 50  # reports of {reports, export}; sso is enterprise-only
    assert parts["contract"]["score"] == 75  # one failed payment
    assert out["score"] == 67.5
    assert out["band"] == "at_risk"
    assert out["missing"] == []


async def test_health_score_changes_when_and_only_when_inputs_change(cs_server):
    with cs_server.runtime.db.session() as s:
        cid = _scored_client(s)
    args = {"client_id": cid, "as_of": AS_OF.isoformat()}
    async with connect(cs_server) as client:
        first = (await call(client, "calculate_health_score", args))["client"]
        second = (await call(client, "calculate_health_score", args))["client"]
        assert second["reused"]
        assert (second["score"], second["inputs_hash"]) == (
            first["score"],
            first["inputs_hash"],
        )
        with cs_server.runtime.db.session() as s:
            s.add(CsTicket(client_id=cid, subject="new", created_at=at("2026-03-30")))
        third = (await call(client, "calculate_health_score", args))["client"]
    assert not third["reused"]
    assert third["inputs_hash"] != first["inputs_hash"]
    assert third["score"] == 66.0  # support 70 instead of 80: 15·10/100 points less
    with cs_server.runtime.db.session() as s:
        snaps = list(s.exec(select(CsHealthSnapshot)))
    assert len(snaps) == 1
    assert snaps[0].score == 66.0
    assert snaps[0].inputs_hash == third["inputs_hash"]


async def test_missing_components_are_named_and_their_weight_spread(cs_server):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Bare")  # no seats, no events, no NPS, no catalogue, no renewal, no billing
        cid = c.id
    async with connect(cs_server) as client:
        out = (await call(client, "calculate_health_score", {"client_id": cid, "as_of": AS_OF.isoformat()}))[
            "client"
        ]
        nobody = await client.call_tool("calculate_health_score", {"client_id": 77})
        no_id = await client.call_tool("calculate_health_score", {"scope": "client"})
        future = await client.call_tool("calculate_health_score", {"client_id": cid, "as_of": "2999-01-01"})
    # Issue 7: a bare client once scored 100 "excellent" (zero tickets and an unrecordable payment
    # history counted as perfect data). Absence of evidence is missing, and with neither usage nor
    # engagement there is no score at all — and no snapshot for a list or a report to show.
    assert out["missing"] == ["adoption", "contract", "engagement", "sentiment", "support", "usage"]
    assert out["score"] is None
    assert out["band"] is None
    assert out["snapshot_id"] is None
    assert "usage or engagement" in out["unscored_reason"]
    assert rows(cs_server, CsHealthSnapshot) == 0
    assert error_of(nobody)["code"] == "not_found"
    assert error_of(no_id)["field"] == "client_id"
    assert error_of(future)["field"] == "as_of"


async def test_a_login_alone_scores_and_zero_tickets_count_only_where_tickets_are_recorded(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        quiet = add_client(s, "Quiet")
        add_events(s, quiet, [("2026-03-21", "ana", "login", "")])
        quiet_id = quiet.id
    async with connect(cs_server) as client:
        before = (
            await call(client, "calculate_health_score", {"client_id": quiet_id, "as_of": AS_OF.isoformat()})
        )["client"]
        with cs_server.runtime.db.session(write=True) as s:
            other = add_client(s, "Noisy")
            s.add(CsTicket(client_id=other.id or 0, subject="x", created_at=at("2026-03-20")))
        after = (
            await call(client, "calculate_health_score", {"client_id": quiet_id, "as_of": AS_OF.isoformat()})
        )["client"]
    days = (AS_OF - date(2026, 3, 21)).days
    engagement = max(0, 100 - 2 * days)
    # Only engagement has data: the score is its sub-score; support is missing (no helpdesk data).
    assert (before["score"], before["missing"]) == (
        engagement,
        ["adoption", "contract", "sentiment", "support", "usage"],
    )
    # Once tickets are recorded for the tenant, this client's zero tickets are evidence: 100 at 15 of 35.
    assert "support" not in after["missing"]
    assert after["score"] == pytest.approx(round((engagement * 20 + 100 * 15) / 35, 1))


async def test_portfolio_scoring_reports_progress(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        clients = [add_client(s, f"C{i}") for i in range(3)]
        for c in clients:  # a login each: scoreable
            add_events(s, c, [("2026-03-30", "u", "login", "")])
        ids = [c.id for c in clients]
    seen: list[float] = []

    async def progress(done, total, message):
        seen.append(done)

    async with connect(cs_server) as client:
        out = (
            await client.call_tool(
                "calculate_health_score",
                {"scope": "portfolio", "as_of": "2026-03-31"},
                progress_callback=progress,
            )
        ).structured_content
    assert [p["client_id"] for p in out["portfolio"]] == ids
    assert out["changed"] == 3
    assert seen[-1] == 3
    assert rows(cs_server, CsHealthSnapshot) == 3


async def test_trends_use_least_squares_slope_and_stable_band(cs_server):
    with cs_server.runtime.db.session() as s:
        falling, steady, young = (add_client(s, n).id for n in ("Falling", "Steady", "Young"))
        for week in range(8):
            day = AS_OF - timedelta(days=7 * (7 - week))
            s.add(_snap(falling, day, 90 - 3 * week, "good"))
            s.add(_snap(steady, day, 70 + (week % 2), "good"))
        s.add(_snap(young, AS_OF, 50, "at_risk"))
    async with connect(cs_server) as client:
        out = await call(client, "analyze_health_trends", {"as_of": AS_OF.isoformat()})
        too_short = await client.call_tool("analyze_health_trends", {"weeks": 4})
    first, second = out["clients"]
    assert (first["client_id"], first["slope_per_week"], first["trend"]) == (falling, -3.0, "declining")
    assert second["client_id"] == steady
    assert second["trend"] == "stable"
    assert out["insufficient_data"] == [young]
    assert error_of(too_short)["field"] == "weeks"


async def test_health_report_counts_arr_by_band(cs_server):
    with cs_server.runtime.db.session() as s:
        a = add_client(s, "A", arr_minor=100_000).id
        b = add_client(s, "B", arr_minor=250_000).id
        c = add_client(s, "C", arr_minor=400_000).id
        add_client(s, "Unscored")
        gone = add_client(s, "Gone", stage="churned", arr_minor=999_000).id
        s.add(_snap(gone, date(2026, 3, 1), 10, "critical"))
        s.add(_snap(a, date(2026, 3, 1), 60, "at_risk"))
        s.add(_snap(b, date(2026, 3, 1), 30, "critical"))
        s.add(_snap(c, date(2026, 3, 1), 95, "excellent"))
    async with connect(cs_server) as client:
        out = await call(client, "generate_health_report", {"as_of": AS_OF.isoformat()})
    bands = {b["band"]: b for b in out["bands"]}
    assert bands["at_risk"]["clients"] == 1
    assert bands["excellent"]["arr_minor"] == {"USD": 400_000}
    assert out["arr_at_risk_minor"] == {"USD": 350_000}
    assert out["scored"] == 3
    assert len(out["unscored"]) == 1
    assert out["average_score"] == 61.7


async def test_segmentations(cs_server):
    with cs_server.runtime.db.session() as s:
        ids = [
            add_client(s, f"C{i}", arr_minor=arr, tier="enterprise" if arr > 200 else "smb").id
            for i, arr in enumerate([500, 300, 100, 60, 40])
        ]
        s.add(_snap(ids[2], date(2026, 3, 1), 45, "critical"))
    payments = [(ids[0], 900, "2026-03-30"), (ids[1], 100, "2026-01-01")]
    async with connect(cs_server) as client:
        await call_ok(  # RFM's payments, recorded as a team records them
            client,
            "record_billing",
            events=[
                {
                    "client_id": cid,
                    "kind": "payment_succeeded",
                    "amount_minor": amount,
                    "occurred_at": f"{day}T12:00:00Z",
                }
                for cid, amount, day in payments
            ],
        )
        abc = await call(client, "segment_by_value_tier", {})
        fixed = await call(
            client, "segment_by_value_tier", {"method": "thresholds", "a_min_minor": 300, "b_min_minor": 100}
        )
        bad = await client.call_tool("segment_by_value_tier", {"method": "thresholds", "a_min_minor": 1})
        rfm = await call(client, "segment_customers", {"by": "rfm", "as_of": AS_OF.isoformat()})
        band = await call(client, "segment_customers", {"by": "health_band"})
        saved = await call(
            client,
            "save_segment_rule",
            {
                "name": "big",
                "conditions": [
                    {"field": "arr_minor", "op": "gte", "value": 100},
                    {"field": "tier", "op": "eq", "value": "smb"},
                ],
            },
        )
        applied = await call(client, "segment_customers", {"by": "custom", "rule_name": "big"})
        missing_rule = await client.call_tool("segment_customers", {"by": "custom", "rule_name": "nope"})
    assert {m["client_id"]: m["segment"] for m in abc["members"]} == dict(zip(ids, "AABBC", strict=True))
    assert fixed["counts"] == {"A": 2, "B": 1, "C": 2}
    assert error_of(bad)["field"] == "a_min_minor"
    assert {m["client_id"]: m["segment"] for m in rfm["members"]} == {
        ids[0]: "R5F4M5",
        ids[1]: "R3F4M3",
    }  # tied F: mean rank 1.5 → 4
    assert set(rfm["no_data"]) == set(ids[2:])
    assert band["counts"] == {"critical": 1}
    assert len(band["no_data"]) == 4
    assert saved["counts"] == {"match": 1, "no_match": 4} == applied["counts"]
    assert [m["client_id"] for m in applied["members"] if m["segment"] == "match"] == [ids[2]]
    assert error_of(missing_rule)["code"] == "not_found"
    assert rows(cs_server, CsSegmentRule) == 1


async def test_feature_adoption_and_milestones(cs_server):
    with cs_server.runtime.db.session() as s:
        a = add_client(s, "A", tier="smb", contract_start=date(2026, 1, 1))
        b = add_client(s, "B", tier="enterprise", contract_start=date(2026, 1, 1))
        add_events(s, a, [("2026-01-11", "x", "login", ""), ("2026-01-11", "x", "report", "reports")])
        add_events(s, b, [("2026-01-31", "y", "report", "reports"), ("2026-02-01", "y", "sso", "sso")])
        aid, bid = a.id, b.id
    async with connect(cs_server) as client:
        empty = await client.call_tool("track_feature_adoption", {})
        for key, tiers in (("reports", None), ("sso", ["enterprise"])):
            await call(
                client, "define_feature", {"key": key, "name": key, **({"tiers": tiers} if tiers else {})}
            )
        dup = await client.call_tool("define_feature", {"key": "sso", "name": "x"})
        out = await call(client, "track_feature_adoption", {"as_of": AS_OF.isoformat()})
        defaults = await call(
            client, "track_adoption_milestones", {"client_id": aid, "as_of": AS_OF.isoformat()}
        )
        await call(
            client,
            "define_milestone",
            {
                "key": "two_features",
                "name": "2 features",
                "kind": "features_used",
                "threshold": 2,
            },
        )
        custom = await call(client, "track_adoption_milestones", {"client_id": bid})
    assert error_of(empty)["code"] == "not_found"
    assert error_of(dup)["code"] == "conflict"
    f = {x["feature"]: x for x in out["features"]}
    assert (f["reports"]["eligible_clients"], f["reports"]["adopters"], f["reports"]["adoption_pct"]) == (
        2,
        2,
        100,
    )
    assert f["reports"]["median_days_to_adopt"] == 20  # 10 and 30 days
    assert (f["sso"]["eligible_clients"], f["sso"]["adopters"]) == (1, 1)
    ms = {m["key"]: m["achieved_at"] for m in defaults["clients"][0]["milestones"]}
    assert defaults["defaults_used"]
    assert ms["first_login"].startswith("2026-01-11")
    assert ms["ten_active_users"] is None
    assert custom["clients"][0]["milestones"][0]["achieved_at"].startswith("2026-02-01")


async def test_lifecycle_transitions_follow_rules(cs_server):
    with cs_server.runtime.db.session() as s:
        cid = add_client(s, "Acme").id
    async with connect(cs_server) as client:
        moved = await call(client, "move_lifecycle_stage", {"client_id": cid, "to_stage": "adoption"})
        jump = await client.call_tool("move_lifecycle_stage", {"client_id": cid, "to_stage": "onboarding"})
        churn = await client.call_tool("move_lifecycle_stage", {"client_id": cid, "to_stage": "churned"})
        churned = await call(
            client, "move_lifecycle_stage", {"client_id": cid, "to_stage": "churned", "reason": "budget"}
        )
        history = await call(client, "get_lifecycle_history", {"client_id": cid})
    assert moved["stage"] == "adoption"
    assert "mature" in moved["allowed_next"]
    assert error_of(jump)["field"] == "stage"
    assert error_of(churn)["field"] == "reason"
    assert churned["allowed_next"] == ["onboarding"]
    assert [h["to_stage"] for h in history["history"]] == ["churned", "adoption"]
    assert rows(cs_server, CsStageChange) == 2


async def test_engagement_metrics_and_drops_against_own_baseline(cs_server):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Dropping")
        steady = add_client(s, "Steady")
        new = add_client(s, "New")
        evs = []
        for week in range(16):
            day = AS_OF - timedelta(days=7 * (15 - week))
            per_week = 10 if week < 12 else 5
            evs += [(day.isoformat(), f"u{i % 3}", "login", "") for i in range(per_week)]
        add_events(s, c, evs)
        add_events(
            s, steady, [((AS_OF - timedelta(days=7 * w)).isoformat(), "a", "login", "") for w in range(16)]
        )
        add_events(s, new, [(AS_OF.isoformat(), "a", "login", "")])
        add_events(s, c, [("2026-03-30", "z", "report", "reports")])
        cid = c.id
    async with connect(cs_server) as client:
        out = await call(client, "analyze_engagement_patterns", {"as_of": AS_OF.isoformat()})
        eng = await call(
            client, "track_usage_engagement", {"client_id": cid, "period_days": 7, "as_of": AS_OF.isoformat()}
        )
    assert [p["client_id"] for p in out["flagged"]] == [cid]
    assert out["flagged"][0]["change_pct"] == pytest.approx(-47.5)  # (5 + 1/4) vs 10 events a week
    assert new.id in out["no_baseline"]
    assert (eng["wau"], eng["mau"], eng["active_users"]) == (3, 3, 3)
    assert eng["dau"] == pytest.approx(3 / 7, abs=0.01)
    assert eng["features"][0]["feature"] == "reports"
    assert eng["features"][0]["change_pct"] is None
    assert rows(cs_server, CsUsageEvent) > 0
    with cs_server.runtime.db.session() as s:
        assert s.exec(select(func.count()).select_from(CsUsageEvent)).one() == 12 * 10 + 4 * 5 + 16 + 1 + 1


async def test_saving_a_rule_under_a_taken_name_is_a_conflict(cs_server):
    with cs_server.runtime.db.session() as s:
        add_client(s, "A", tier="smb")
    rule = {"name": "smb", "conditions": [{"field": "tier", "op": "eq", "value": "smb"}]}
    async with connect(cs_server) as client:
        await call(client, "save_segment_rule", rule)
        again = await client.call_tool("save_segment_rule", rule)
        mixed = await client.call_tool("segment_customers", {"by": "rfm", "rule_name": "smb"})
    assert error_of(again)["code"] == "conflict"
    assert error_of(again)["field"] == "name"
    assert error_of(mixed)["field"] == "by"
    assert rows(cs_server, CsSegmentRule) == 1


async def test_event_count_milestone_needs_its_event(cs_server):
    args = {"key": "reports_run", "name": "Ran reports", "kind": "event_count", "threshold": 2}
    async with connect(cs_server) as client:
        missing = await client.call_tool("define_milestone", args)
        made = await call(client, "define_milestone", {**args, "event": "report"})
    assert error_of(missing)["field"] == "event"
    assert (made["kind"], made["threshold"], made["event"]) == ("event_count", 2, "report")


async def test_split_reads_work_on_a_read_only_server(make_settings):
    from revops_cs.server import create_server

    server = create_server(make_settings(read_only=True))
    try:
        with server.runtime.db.session() as s:
            c = add_client(s, "Acme", arr_minor=500)
            s.add(
                CsStageChange(
                    client_id=c.id, from_stage=None, to_stage="onboarding", actor="t", at=at("2026-01-01")
                )
            )
            add_events(s, c, [("2026-01-02", "u", "login", "")])
            cid = c.id
        async with connect(server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            history = await call(client, "get_lifecycle_history", {"client_id": cid})
            milestones = await call(
                client, "track_adoption_milestones", {"client_id": cid, "as_of": AS_OF.isoformat()}
            )
            segments = await call(client, "segment_customers", {"by": "value_tier"})
    finally:
        server.runtime.db.dispose()
    assert {"get_lifecycle_history", "track_adoption_milestones", "segment_customers"} <= names
    assert not {"move_lifecycle_stage", "define_feature", "define_milestone", "save_segment_rule"} & names
    assert [h["to_stage"] for h in history["history"]] == ["onboarding"]
    assert history["allowed_next"] == ["adoption", "churned"]
    first = {m["key"]: m["achieved_at"] for m in milestones["clients"][0]["milestones"]}["first_login"]
    assert first.startswith("2026-01-02")
    assert segments["counts"] == {"A": 1}


async def test_health_ids_beyond_the_column_are_validation_errors(cs_server):
    too_big = 2**31
    async with connect(cs_server) as client:
        results = [
            await client.call_tool(tool, {"client_id": too_big, **extra})
            for tool, extra in (
                ("calculate_health_score", {}),
                ("track_usage_engagement", {}),
                ("get_lifecycle_history", {}),
                ("move_lifecycle_stage", {"to_stage": "adoption"}),
                ("track_adoption_milestones", {}),
                ("analyze_health_trends", {}),
            )
        ]
        event = {
            "client_id": too_big,
            "user_ref": "a",
            "event": "login",
            "occurred_at": "2026-03-01T10:00:00Z",
        }
        usage = await client.call_tool("record_usage_events", {"events": [event]})
    for result in [*results, usage]:
        assert error_of(result)["code"] == "validation_error"
