"""Prospecting through the protocol on both backends: ICP fit, intent with decay and daily caps,
the ranked call list, qualification scorecards (BANT, MEDDIC, MEDDPICC, CHAMP) and lead routing.

Every expected number is worked out here from the rows the test inserts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import anyio
import pytest
from sqlmodel import col, select

from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.analytics import lead_scoring, qualification
from revops_sales.models.leads import SalesLead, SalesLeadEvent, SalesLeadRouting, SalesScorecard

pytestmark = pytest.mark.anyio

AS_OF = date.today() - timedelta(days=3)
ICP = [
    {"field": "industry", "values": ["Software", "SaaS"], "weight": 30},
    {"field": "employees", "min": 50, "max": 500, "weight": 30},
    {"field": "country", "values": ["DE", "FR"], "weight": 20},
    {"field": "title", "keywords": ["VP", "Head"], "weight": 20},
]
INTENT = {
    "half_life_days": 10,
    "window_days": 30,
    "default_daily_cap": 20,
    "daily_caps": [{"kind": "page_view", "cap": 5}],
}


def at(age_days: int, hour: int = 12) -> str:
    """An instant `age_days` before AS_OF (ISO text for the protocol)."""
    return datetime.combine(AS_OF - timedelta(days=age_days), time(hour), tzinfo=UTC).isoformat()


def ev(kind: str, points: float, age: int, hour: int = 12) -> dict:
    return {"kind": kind, "points": points, "occurred_at": at(age, hour)}


# --------------------------------------------------------------------------- pure maths


def test_reference_mql_thresholds_and_frameworks() -> None:
    settings = lead_scoring.IntentSettings()  # REFERENCE.md: MQL when intent ≥ 50 and fit ≥ 40
    assert lead_scoring.is_mql(40, 50, settings)
    assert not lead_scoring.is_mql(39.99, 100, settings)
    assert not lead_scoring.is_mql(100, 49.99, settings)
    assert not lead_scoring.is_mql(None, 90, settings)  # an unknown fit is not a pass
    assert settings.window_days == 30
    assert qualification.FRAMEWORKS["BANT"] == ("budget", "authority", "need", "timeline")
    assert set(qualification.FRAMEWORKS["MEDDPICC"]) - set(qualification.FRAMEWORKS["MEDDIC"]) == {
        "paper_process",
        "competition",
    }
    assert qualification.FRAMEWORKS["CHAMP"] == ("challenges", "authority", "money", "prioritisation")
    result = qualification.score("MEDDIC", {"metrics": 2, "champion": 1})
    assert (result.points, result.max_points, result.score_pct) == (3, 12, 25.0)
    assert result.partial == ["champion"]


def test_intent_caps_each_kind_per_day_then_decays_by_whole_days() -> None:
    settings = lead_scoring.IntentSettings(half_life_days=10, daily_caps={"page_view": 5})
    day = date(2026, 6, 30)
    events = [
        ("page_view", 3, day),
        ("page_view", 3, day),
        ("page_view", 3, day),  # 9 on one day, capped at 5, age 0 → 5
        ("page_view", 4, day - timedelta(days=1)),  # another day: 4·0.5^0.1
        ("demo_request", 30, day - timedelta(days=10)),  # cap 20, one half-life → 10
        ("webinar", 10, day - timedelta(days=30)),  # outside the 30-day window
        ("webinar", 10, day + timedelta(days=1)),  # after as_of
    ]
    got = lead_scoring.intent(events, day, settings)
    expected_pv = 5 + 4 * 0.5**0.1
    assert got.by_kind == {"demo_request": 10.0, "page_view": round(expected_pv, 2)}
    assert got.score == round(expected_pv + 10, 2)


# --------------------------------------------------------------------------- fit, intent, ranking


async def _lead(client, **fields) -> int:
    return (await call_ok(client, "save_lead", **fields))["id"]


async def test_fit_and_intent_are_scored_set_based_and_ranked_with_reasons(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        await call_ok(client, "configure_prospecting", action="icp", criteria=ICP, intent=INTENT)
        a = await _lead(
            client, name="Ann", industry="Software", employees=100, country="us", title="VP Sales"
        )
        b = await _lead(client, name="Ben", industry="Retail", country="DE", title="Head of Ops")
        c = await _lead(client, name="Cy")
        d = await _lead(client, name="Di", industry="saas")
        events_a = [
            ev("page_view", 3, 0, 9),
            ev("page_view", 3, 0, 10),
            ev("page_view", 3, 0, 11),  # one day: 9 capped at 5 → 5
            ev("demo_request", 30, 10),  # cap 20, one half-life → 10
            ev("email_click", 8, 20),  # two half-lives → 2
            ev("webinar", 10, 30),  # outside the window
        ]
        for lead, events in (
            (a, events_a),
            (b, [ev("demo_request", 20, 0), ev("content_download", 20, 0), ev("pricing_page", 20, 0)]),
            (c, [ev(f"kind{i}", 30, 0) for i in range(6)]),  # 6 × 20 = 120, capped at 100
        ):
            stored = await call_ok(
                client, "score_leads", action="record_events", lead_id=lead, events=events, as_of=str(AS_OF)
            )
            assert stored["events_recorded"] == len(events)
        run = await call_ok(client, "score_leads", action="recompute", as_of=str(AS_OF))
        best = await call_ok(client, "best_leads", top=10)
        top1 = await call_ok(client, "best_leads", top=1)
        detail_b = await call_ok(client, "get_lead", lead_id=b)
        mqls = await call_ok(client, "search_leads", min_fit=40, min_intent=50)
    assert (run["scored"], run["mql"], run["fit_unavailable"]) == (4, 1, 2)
    scores = {r.id: (r.fit_score, r.intent_score) for r in _rows(db, SalesLead)}
    assert scores[a] == (80.0, 17.0)  # (30 + 30 + 20)/100; 5 + 10 + 2
    assert scores[b] == (round(100 * 40 / 70, 2), 60.0)  # employees unknown: 40 of the 70 evaluated
    assert scores[c] == (None, 100.0)  # no attribute known: fit null, not 0
    # industry alone is 30 of the profile's 100: too little known for a fit (it would read 100)
    assert scores[d] == (None, None)  # and no engagement recorded: intent null
    # B is the MQL; then C at 100/2; then A at (80 + 17)/2 = 48.5; D has no known score.
    assert [i["id"] for i in best["items"]] == [b, c, a, d]
    assert [i["priority"] for i in best["items"]] == [round((57.14 + 60) / 2, 2), 50.0, 48.5, 0.0]
    assert best["items"][3]["why"] == [
        "fits: industry in Software, SaaS",
        "unknown: employees 50–500",
        "unknown: country in DE, FR",
        "unknown: title has VP / Head",
        "fit not scored: only 30% of the profile's weight is known",
    ]
    assert [i["mql"] for i in best["items"]] == [True, False, False, False]
    assert best["items"][0]["why"] == [
        "fits: country in DE, FR",
        "fits: title has VP / Head",
        "intent: content_download 20 pts",
        "intent: demo_request 20 pts",
        "intent: pricing_page 20 pts",
        "unknown: employees 50–500",
        "MQL: fit ≥ 40 and intent ≥ 50",
    ]
    assert [i["id"] for i in top1["items"]] == [b]
    assert detail_b["score_detail"]["fit_unmatched"] == ["industry in Software, SaaS"]
    assert [i["id"] for i in mqls["items"]] == [b]


def _rows(db, model):
    with db.session() as s:
        return list(s.exec(select(model).order_by(col(model.id))).all())


async def test_scoring_bad_input_names_the_field_and_changes_nothing(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        lead = await _lead(client, name="Eve")
        future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        bad_event = await call_error(
            client,
            "score_leads",
            action="record_events",
            lead_id=lead,
            events=[ev("page_view", 1, 0), {"kind": "x", "points": 1, "occurred_at": future}],
        )
        no_lead = await call_error(client, "score_leads", action="record_events", events=[ev("a", 1, 0)])
        missing = await call_error(
            client, "score_leads", action="record_events", lead_id=lead + 99, events=[ev("a", 1, 0)]
        )
        bad_icp = await call_error(
            client, "configure_prospecting", action="icp", criteria=[{"field": "employees", "weight": 5}]
        )
        no_icp_run = await call_ok(client, "score_leads", action="recompute")
    assert (bad_event["code"], bad_event["field"]) == ("validation_error", "events")
    assert no_lead["field"] == "lead_id"
    assert (missing["code"], missing["field"]) == ("not_found", "lead_id")
    assert bad_icp["field"] == "criteria"
    assert count_rows(db, SalesLeadEvent) == 0
    assert no_icp_run["fit_unavailable"] == 1
    assert no_icp_run["notes"]


# --------------------------------------------------------------------------- qualification


async def test_scorecards_per_framework_with_evidence_and_pipeline_setting(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="Enterprise")
        deal = await call_ok(client, "create_deal", pipeline_id=pipeline["id"], name="Big", amount_minor=1)
        lead = await _lead(client, name="Lou")
        bant = await call_ok(
            client,
            "score_qualification",
            deal_id=deal["id"],
            elements=[
                {"element": "budget", "value": 2, "evidence": "PO approved"},
                {"element": "authority", "value": 1, "evidence": "VP involved"},
            ],
        )
        await call_ok(
            client,
            "configure_prospecting",
            action="framework",
            pipeline_id=pipeline["id"],
            framework="MEDDPICC",
        )
        wrong = await call_error(
            client, "score_qualification", deal_id=deal["id"], elements=[{"element": "budget", "value": 2}]
        )
        medd = await call_ok(
            client,
            "score_qualification",
            deal_id=deal["id"],
            elements=[
                {"element": "metrics", "value": 2, "evidence": "20% faster close"},
                {"element": "paper_process", "value": 1},
                {"element": "competition", "value": 2, "evidence": "Only us left"},
            ],
        )
        again = await call_ok(
            client,
            "score_qualification",
            deal_id=deal["id"],
            elements=[{"element": "paper_process", "value": 2}],
        )
        read_bant = await call_ok(client, "get_qualification", deal_id=deal["id"], framework="BANT")
        champ = await call_ok(
            client,
            "score_qualification",
            lead_id=lead,
            framework="CHAMP",
            elements=[{"element": "challenges", "value": 2, "evidence": "Churn up"}],
        )
        meddic = await call_ok(client, "get_qualification", lead_id=lead, framework="MEDDIC")
        both = await call_error(client, "get_qualification", deal_id=deal["id"], lead_id=lead)
    assert (bant["framework"], bant["framework_source"]) == ("BANT", "default")
    assert (bant["points"], bant["max_points"], bant["score_pct"]) == (3, 8, 37.5)
    assert bant["missing"] == ["need", "timeline"]
    assert bant["partial"] == ["authority"]
    assert (wrong["code"], wrong["field"]) == ("validation_error", "elements")
    assert (medd["framework"], medd["framework_source"]) == ("MEDDPICC", "pipeline")
    assert (medd["points"], medd["max_points"], medd["score_pct"]) == (5, 16, 31.25)
    assert medd["missing"] == [
        "economic_buyer",
        "decision_criteria",
        "decision_process",
        "identify_pain",
        "champion",
    ]
    assert again["points"] == 6
    assert again["partial"] == []
    assert {e["element"]: e["evidence"] for e in again["elements"]}["competition"] == "Only us left"
    assert read_bant["points"] == 3  # the BANT card is kept beside the MEDDPICC one
    assert {e["element"]: e["evidence"] for e in read_bant["elements"]}["budget"] == "PO approved"
    assert (champ["points"], champ["score_pct"]) == (2, 25.0)
    assert meddic["updated_at"] is None
    assert meddic["points"] == 0
    assert len(meddic["missing"]) == 6
    assert both["field"] == "deal_id"
    assert count_rows(db, SalesScorecard) == 3


# --------------------------------------------------------------------------- routing

REPS = [{"rep": "alice", "max_open_leads": 1}, {"rep": "bob"}, {"rep": "carol"}]
RULES = [{"name": "EMEA", "countries": ["DE", "FR"], "reps": ["bob", "carol"]}]


async def test_routing_territory_round_robin_and_capacity_explained(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        await call_ok(client, "configure_prospecting", action="routing", reps=REPS, rules=RULES)
        countries = ["US", "US", "DE", "FR", "DE", "US", "US", "US"]
        ids = [await _lead(client, name=f"L{i}", country=c) for i, c in enumerate(countries)]
        routes = [await call_ok(client, "route_lead", lead_id=i) for i in ids]
        again = await call_error(client, "route_lead", lead_id=ids[0])
        detail = await call_ok(client, "get_lead", lead_id=ids[6])
    # Whole pool alice, bob, carol; EMEA bob, carol — each with its own cursor.
    # L6: the whole pool's slot 0 is alice, who holds 1 open lead (L0) = her cap → skipped → bob.
    assert [r["rep"] for r in routes] == ["alice", "bob", "bob", "carol", "bob", "carol", "bob", "carol"]
    assert [r["method"] for r in routes][:3] == ["round_robin", "round_robin", "territory"]
    assert routes[2]["rule"] == "EMEA"
    assert "country DE" in routes[2]["explanation"]
    assert routes[6]["explanation"] == (
        "no territory matched: whole pool; round robin slot 2 of 3 → bob (skipped alice at capacity 1/1)"
    )
    assert (again["code"], again["field"]) == ("conflict", "lead_id")
    assert detail["owner"] == "bob"
    assert detail["routing"][0]["rep"] == "bob"
    assert count_rows(db, SalesLeadRouting) == 8


async def test_routing_refusals_change_nothing(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        lead = await _lead(client, name="Max", country="DE")
        unconfigured = await call_error(client, "route_lead", lead_id=lead)
        bad = await call_error(
            client,
            "configure_prospecting",
            action="routing",
            reps=[{"rep": "dave"}],
            rules=[{"name": "X", "countries": ["DE"], "reps": ["zed"]}],
        )
        await call_ok(
            client, "configure_prospecting", action="routing", reps=[{"rep": "dave", "max_open_leads": 0}]
        )
        full = await call_error(client, "route_lead", lead_id=lead)
        got = await call_ok(client, "get_lead", lead_id=lead)
    assert unconfigured["field"] == "lead_id"
    assert (bad["code"], bad["field"]) == ("validation_error", "rules")
    assert full["code"] == "conflict"
    assert "dave at capacity 0/0" in full["message"]
    assert got["owner"] is None
    assert count_rows(db, SalesLeadRouting) == 0


async def test_concurrent_routes_never_take_the_same_slot(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        await call_ok(
            client, "configure_prospecting", action="routing", reps=[{"rep": "a"}, {"rep": "b"}, {"rep": "c"}]
        )
        ids = [await _lead(client, name=f"C{i}") for i in range(9)]
        results: list[dict] = []

        async def route(lead_id: int) -> None:
            results.append(await call_ok(client, "route_lead", lead_id=lead_id))

        async with anyio.create_task_group() as tg:
            for lead_id in ids:
                tg.start_soon(route, lead_id)
    rows = _rows(db, SalesLeadRouting)
    # In the order the pool's cursor was taken (row ids), the slots go round 0, 1, 2, 0, 1, 2…
    assert [r.slot for r in rows] == [0, 1, 2] * 3
    assert sorted(r["rep"] for r in results) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3


async def test_territory_conditions_all_must_match_first_rule_wins(sales_server) -> None:
    rules = [
        {"name": "EMEA software", "regions": ["EMEA"], "industries": ["Software"], "reps": ["sw"]},
        {"name": "EMEA", "regions": ["emea"], "reps": ["emea"]},
    ]
    reps = [{"rep": "sw"}, {"rep": "emea"}, {"rep": "rest"}]
    async with connect(sales_server) as client:
        await call_ok(client, "configure_prospecting", action="routing", reps=reps, rules=rules)
        both = await _lead(client, name="A", region="EMEA", industry="software")
        region_only = await _lead(client, name="B", region="EMEA", industry="Retail")
        unknown_industry = await _lead(client, name="C", region="EMEA")
        elsewhere = await _lead(client, name="D", region="APAC", industry="Software")
        got = [
            await call_ok(client, "route_lead", lead_id=i)
            for i in (both, region_only, unknown_industry, elsewhere)
        ]
    assert [(r["rule"], r["rep"]) for r in got] == [
        ("EMEA software", "sw"),
        ("EMEA", "emea"),
        ("EMEA", "emea"),  # an unknown industry does not meet the first rule's condition
        (None, "sw"),  # no territory: the whole pool's first slot
    ]
    assert got[0]["explanation"].startswith("territory 'EMEA software' (region EMEA, industry software)")
