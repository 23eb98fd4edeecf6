"""Feedback toolset through the protocol: numbers checked against rows the test inserted itself."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest
from factories import add_client, add_contact, at
from sqlalchemy import func
from sqlmodel import select

from revops_core.testing import connect, error_of
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.support import CsTicket

pytestmark = pytest.mark.anyio


def count(server: Any) -> int:
    with server.runtime.db.session() as s:
        return int(s.exec(select(func.count()).select_from(CsFeedback)).one())


def seed(server: Any, fn: Any) -> Any:
    with server.runtime.db.session(write=True) as s:
        return fn(s)


def answers(
    s: Any, client_id: int, kind: str, scores: list[int], day: str = "2026-02-10", **extra: Any
) -> None:
    for score in scores:
        s.add(CsFeedback(client_id=client_id, kind=kind, score=score, submitted_at=at(day), **extra))


async def test_collect_validates_per_kind_and_stores_sentiment(cs_server):
    def rows(s):
        c = add_client(s, "Acme")
        other = add_client(s, "Other")
        return c.id, add_contact(s, other, "x@other.test").id

    client_id, foreign_contact = seed(cs_server, rows)
    async with connect(cs_server) as client:
        ok = await client.call_tool(
            "collect_feedback",
            {
                "client_id": client_id,
                "kind": "nps",
                "score": 9,
                "comment": "Love the new dashboards, great work!",
                "feature": "  Dark   Mode ",
            },
        )
        bad = [
            ({"client_id": client_id, "kind": "csat", "score": 6}, "score"),
            ({"client_id": client_id, "kind": "ces", "score": 0}, "score"),
            ({"client_id": client_id, "kind": "nps"}, "score"),
            ({"client_id": client_id, "kind": "text", "score": 3, "comment": "x"}, "score"),
            ({"client_id": client_id, "kind": "text"}, "comment"),
            ({"client_id": 999, "kind": "nps", "score": 5}, "client_id"),
            (
                {"client_id": client_id, "kind": "nps", "score": 5, "contact_id": foreign_contact},
                "contact_id",
            ),
            (
                {"client_id": client_id, "kind": "nps", "score": 5, "submitted_at": "2999-01-01T00:00:00Z"},
                "submitted_at",
            ),
        ]
        errors = [error_of(await client.call_tool("collect_feedback", args)) for args, _ in bad]
    out = ok.structured_content
    assert out["nps_category"] == "promoter"
    assert out["sentiment"] > 0.5
    assert out["sentiment_label"] == "positive"
    assert out["feature"] == "dark mode"
    assert [e.get("field") for e in errors] == [f for _, f in bad]
    assert count(cs_server) == 1


async def test_nps_reference_example_through_the_tool(cs_server):
    def rows(s):
        c = add_client(s, "Acme")
        answers(s, c.id, "nps", [10, 9, 9, 8, 7, 3])  # shares ½, ⅓, ⅙
        answers(s, c.id, "nps", [0], day="2025-01-01")  # outside the range
        answers(s, c.id, "csat", [5, 4, 2, 1])
        answers(s, c.id, "ces", [2, 3, 7])
        return c.id

    client_id = seed(cs_server, rows)
    async with connect(cs_server) as client:
        result = await client.call_tool(
            "analyze_feedback_sentiment",
            {
                "client_id": client_id,
                "start_date": "2026-02-01",
                "end_date": "2026-02-28",
                "as_of": "2026-03-01",
            },
        )
    out = result.structured_content
    nps = out["surveys"]["nps"]
    assert round(nps["score"], 1) == 33.3
    assert nps["variance"] == pytest.approx(5 / 9)
    assert nps["margin_of_error"] == pytest.approx(1.96 * math.sqrt(5 / 9 / 6) * 100)
    assert (nps["promoters"], nps["passives"], nps["detractors"]) == (3, 2, 1)
    assert out["surveys"]["csat"] == {"responses": 4, "score": 50.0}
    assert out["surveys"]["ces"] == {"responses": 3, "score": 4.0}
    assert out["responses"] == 13
    assert [m["month"] for m in out["by_month"]] == ["2026-02"]


async def test_portfolio_nps_thirty_twenty_is_plus_ten_and_trend_by_month(cs_server):
    def rows(s):
        a = add_client(s, "A")
        b = add_client(s, "B")
        answers(s, a.id, "nps", [9, 10, 9, 7, 8], day="2026-01-15")
        answers(s, b.id, "nps", [7, 8, 7, 3, 5], day="2026-02-15")
        return a.id

    seed(cs_server, rows)
    async with connect(cs_server) as client:
        out = (
            await client.call_tool("analyze_feedback_sentiment", {"as_of": "2026-03-01"})
        ).structured_content
    assert out["surveys"]["nps"]["score"] == pytest.approx(10.0)
    assert [(m["month"], m["nps"]) for m in out["by_month"]] == [("2026-01", 60.0), ("2026-02", -40.0)]


async def test_sentiment_errors_and_empty_data(cs_server):
    async with connect(cs_server) as client:
        empty = (
            await client.call_tool("analyze_feedback_sentiment", {"as_of": "2026-03-01"})
        ).structured_content
        swapped = await client.call_tool(
            "analyze_feedback_sentiment",
            {"start_date": "2026-02-10", "end_date": "2026-02-01", "as_of": "2026-03-01"},
        )
        future = await client.call_tool("analyze_feedback_sentiment", {"as_of": "2999-01-01"})
        unknown = await client.call_tool("generate_voc_report", {"client_id": 12345})
        bad_date = await client.call_tool(
            "generate_voc_report", {"view": "feature_requests", "start_date": "2026-13-01"}
        )
    assert empty["surveys"]["nps"] is None
    assert empty["surveys"]["csat"]["score"] is None
    assert empty["sentiment"]["mean"] is None
    assert empty["themes"] == []
    assert error_of(swapped)["field"] == "end_date"
    assert error_of(future)["field"] == "as_of"
    assert error_of(unknown)["code"] == "not_found"
    assert error_of(bad_date)["code"] == "validation_error"


async def test_voc_report_themes_quotes_and_detractor_reasons(cs_server):
    async with connect(cs_server) as client:
        cid = seed(cs_server, lambda s: add_client(s, "Acme").id)
        for score, text in [
            (3, "The CSV export is painfully slow and breaks"),
            (4, "csv export fails every week, terrible"),
            (10, "Support team is wonderful, fast answers"),
            (9, "Wonderful onboarding, csv export could be faster"),
            (8, "Fine overall"),
        ]:
            await client.call_tool(
                "collect_feedback", {"client_id": cid, "kind": "nps", "score": score, "comment": text}
            )
        report = (await client.call_tool("generate_voc_report", {})).structured_content["report"]
    themes = {t["theme"]: t for t in report["themes"]}
    assert report["comments"] == 5
    assert themes["csv export"]["mentions"] == 3
    assert len(themes["csv export"]["quotes"]) == 2
    assert themes["csv export"]["quotes"][0]["client"] == "Acme"
    reasons = {t["theme"] for t in report["detractor_reasons"]}
    assert "csv export" in reasons
    assert "wonderful" not in reasons  # promoters' words are not detractor reasons
    assert report["sentiment_trend"][0]["responses"] == 5


async def test_product_insights_sum_arr_of_distinct_requesting_clients(cs_server):
    def rows(s):
        a = add_client(s, "A", arr_minor=1_000_000)
        b = add_client(s, "B", arr_minor=250_000)
        c = add_client(s, "C", arr_minor=9_900, currency="EUR")
        for client, feature in [(a, "sso"), (a, "sso"), (b, "sso"), (c, "sso"), (b, "api")]:
            s.add(
                CsFeedback(
                    client_id=client.id,
                    kind="text",
                    comment="please",
                    feature=feature,
                    submitted_at=at("2026-02-01"),
                )
            )

    seed(cs_server, rows)
    async with connect(cs_server) as client:
        res = await client.call_tool(
            "generate_voc_report", {"view": "feature_requests", "as_of": "2026-03-01"}
        )
    out = res.structured_content["insights"]
    assert out["requests"] == 5
    sso, api = out["features"]
    assert (sso["feature"], sso["requests"], sso["clients"]) == ("sso", 4, 3)
    assert sso["arr"] == [
        {"amount_minor": 9_900, "currency": "EUR"},
        {"amount_minor": 1_250_000, "currency": "USD"},  # A counted once despite two requests
    ]
    assert api["arr"] == [{"amount_minor": 250_000, "currency": "USD"}]


async def test_overview_reads_stored_rows(cs_server):
    def rows(s):
        a = add_client(s, "A", stage="adoption")
        b = add_client(s, "B", stage="renewal")
        add_client(s, "C", stage="adoption")
        answers(s, a.id, "nps", [10, 0], day="2026-02-20")
        answers(s, b.id, "csat", [5], day="2026-02-20")
        s.add(CsTicket(client_id=a.id, subject="open", status="open", created_at=at("2026-02-25")))
        s.add(
            CsTicket(
                client_id=a.id,
                subject="done",
                status="solved",
                created_at=at("2026-02-25"),
                solved_at=at("2026-02-25", 13),
            )
        )
        for client, day, score, band in [
            (a, "2026-01-01", 40.0, "critical"),
            (a, "2026-02-01", 80.0, "good"),
            (b, "2026-02-01", 95.0, "excellent"),
            (b, "2026-04-01", 10.0, "critical"),
        ]:
            s.add(
                CsHealthSnapshot(
                    client_id=client.id,
                    as_of=date.fromisoformat(day),
                    score=score,
                    band=band,
                    components="{}",
                    weights="{}",
                    inputs_hash="x",
                )
            )

    seed(cs_server, rows)
    async with connect(cs_server) as client:
        out = (
            await client.call_tool("get_cs_metrics_overview", {"as_of": "2026-03-01", "days": 30})
        ).structured_content
    assert out["clients"] == 3
    assert out["clients_by_stage"]["adoption"] == 2
    assert out["clients_by_stage"]["renewal"] == 1
    assert out["surveys"]["nps"]["score"] == 0.0
    assert out["surveys"]["csat"]["score"] == 100.0
    assert out["open_tickets"] == 1
    # normal priority (24 h): one solved in 1 h, one still open 4.5 days later counts as breached
    assert out["resolution_compliance"] == 50.0
    assert out["health"] == {"clients_scored": 2, "average": 87.5, "by_band": {"excellent": 1, "good": 1}}


async def test_ids_past_postgresql_integer_are_validation_errors(cs_server):
    too_big = 2**31
    async with connect(cs_server) as client:
        errors = [
            error_of(await client.call_tool(tool, args))
            for tool, args in (
                ("collect_feedback", {"client_id": too_big, "kind": "nps", "score": 9}),
                ("collect_feedback", {"client_id": 1, "kind": "nps", "score": 9, "contact_id": too_big}),
                ("analyze_feedback_sentiment", {"client_id": too_big}),
                ("generate_voc_report", {"client_id": too_big}),
            )
        ]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("validation_error", "client_id"),
        ("validation_error", "contact_id"),
        ("validation_error", "client_id"),
        ("validation_error", "client_id"),
    ]
    assert count(cs_server) == 0
