"""Business reviews (list, schedule, complete, the computed QBR pack) and the advocacy programme."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import add_client, add_contact, at
from sqlmodel import select
from test_expansion import record_mrr

from revops_core.testing import call_error, call_ok, connect, count_rows, error_of
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.reviews import CsAdvocacy, CsAdvocacyPoints, CsBusinessReview
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsUsageEvent

pytestmark = pytest.mark.anyio
AS_OF = date(2026, 6, 30)  # pack period: 2026-04-02 … 2026-06-30; previous: 2026-01-02 … 2026-04-01


def _snapshot(client_id: int, day: str, score: float, band: str) -> CsHealthSnapshot:
    return CsHealthSnapshot(
        client_id=client_id,
        as_of=date.fromisoformat(day),
        score=score,
        band=band,
        components="{}",
        weights="{}",
        inputs_hash=f"h-{client_id}-{day}",
    )


def _nps(client_id: int, day: str, score: int) -> CsFeedback:
    return CsFeedback(client_id=client_id, kind="nps", score=score, submitted_at=at(day))


def _event(client_id: int, day: str, user: str, event: str = "login") -> CsUsageEvent:
    return CsUsageEvent(client_id=client_id, user_ref=user, event=event, occurred_at=at(day))


@pytest.fixture
def seed(cs_server) -> dict[str, Any]:
    """Client A with data in every QBR section, client B with none, contacts of both."""
    with cs_server.runtime.db.session(write=True) as s:
        a = add_client(s, "Acme", renewal_date=date(2026, 9, 28))
        b = add_client(s, "Bare")
        a1, a2 = add_contact(s, a, "a1@acme.test"), add_contact(s, a, "a2@acme.test")
        b1 = add_contact(s, b, "b1@bare.test")
        aid = a.id or 0
        s.add(_snapshot(aid, "2026-03-01", 50, "at_risk"))  # before the period: not in the trend
        for day, score, band in (
            ("2026-04-10", 60, "at_risk"),
            ("2026-05-10", 70, "good"),
            ("2026-06-20", 82, "good"),
        ):
            s.add(_snapshot(aid, day, score, band))
        # 10 usage events: 6 in the period (logins by u1, u2), 4 in the previous one (logins by u1).
        for day, user, event in (
            ("2026-04-05", "u1", "login"),
            ("2026-04-06", "u2", "login"),
            ("2026-05-01", "u1", "login"),
            ("2026-05-02", "u3", "report"),
            ("2026-06-01", "u3", "export"),
            ("2026-06-30", "u2", "login"),
            ("2026-01-10", "u1", "login"),
            ("2026-02-10", "u1", "login"),
            ("2026-03-10", "u4", "report"),
            ("2026-04-01", "u4", "report"),
        ):
            s.add(_event(aid, day, user, event))
        s.add(_event(aid, "2026-07-01", "u9"))  # after as_of: ignored
        # Normal ticket: answered in 60 min and solved in 10 h (both within target); urgent ticket:
        # answered after 30 min (target 10) and still open (past its 120 min resolution target).
        s.add(
            CsTicket(
                client_id=aid,
                subject="slow",
                priority="normal",
                status="solved",
                created_at=at("2026-05-01", 10),
                first_response_at=at("2026-05-01", 11),
                solved_at=at("2026-05-01", 20),
            )
        )
        s.add(
            CsTicket(
                client_id=aid,
                subject="down",
                priority="urgent",
                status="open",
                created_at=datetime(2026, 6, 1, 12, tzinfo=UTC),
                first_response_at=datetime(2026, 6, 1, 12, 30, tzinfo=UTC),
            )
        )
        s.add(_nps(aid, "2026-05-05", 9))
        s.add(_nps(aid, "2026-06-05", 6))
        for opened, resolved in (("2026-06-15", None), ("2026-05-01", "2026-06-10"), ("2026-07-05", None)):
            s.add(
                CsEscalation(
                    client_id=aid,
                    severity="high",
                    title="x",
                    opened_at=at(opened),
                    due_at=at(opened),
                    resolved_at=at(resolved) if resolved else None,
                    status="resolved" if resolved else "open",
                )
            )
        return {"a": aid, "b": b.id, "a1": a1.id, "a2": a2.id, "b1": b1.id, "server": cs_server}


TOO_BIG = 2**31  # one past PostgreSQL INTEGER: a validation_error on every backend


async def test_pack_numbers_come_from_the_inserted_rows(seed):
    async with connect(seed["server"]) as client:
        # Revenue as a team records it: MRR changes through record_billing (monthly MRR follows).
        await record_mrr(
            client,
            [
                (seed["a"], "2026-04-01", 100_000),
                (seed["a"], "2026-06-01", 120_000),
                (seed["a"], "2026-07-01", 999_000),  # after as_of
            ],
        )
        pack = await call_ok(client, "get_review_pack", client_id=seed["a"], as_of=AS_OF.isoformat())
    assert pack["period"] == {"start": "2026-04-02", "end": "2026-06-30", "days": 90}
    assert pack["missing"] == []
    health = pack["health"]
    assert (health["score"], health["band"], health["as_of"]) == (82, "good", "2026-06-20")
    assert (health["snapshots"], health["first"], health["last"]) == (3, 60, 82)
    weeks = [
        (date.fromisoformat(d) - date(2026, 4, 2)).days / 7
        for d in ("2026-04-10", "2026-05-10", "2026-06-20")
    ]
    expected_slope = statistics.linear_regression(weeks, [60, 70, 82]).slope
    assert health["slope_per_week"] == pytest.approx(round(expected_slope, 3))
    assert pack["usage"] == {"events": 6, "previous_events": 4, "active_users": 2, "previous_active_users": 1}
    assert pack["support"] == {
        "opened": 2,
        "solved": 1,
        "first_response_compliance": 50.0,
        "resolution_compliance": 50.0,
    }
    nps = pack["surveys"]["nps"]
    assert (nps["responses"], nps["promoters"], nps["detractors"], nps["score"]) == (2, 1, 1, 0.0)
    assert pack["surveys"]["csat"] == {"responses": 0, "score": None}
    assert pack["renewal"] == {"renewal_date": "2026-09-28", "days_left": 90}
    assert pack["revenue"] == {
        "currency": "USD",
        "from_month": "2026-04-01",
        "to_month": "2026-06-01",
        "mrr_minor": 120_000,
        "arr_minor": 1_440_000,
        "mrr_change_minor": 20_000,
        "arr_change_minor": 240_000,
    }
    assert pack["escalations"]["open"] == 1


async def test_pack_of_a_client_without_data_names_every_missing_section(seed):
    async with connect(seed["server"]) as client:
        pack = await call_ok(client, "get_review_pack", client_id=seed["b"], as_of=AS_OF.isoformat())
    assert pack["missing"] == ["health", "usage", "support", "surveys", "renewal", "revenue"]
    assert all(pack[name] is None for name in pack["missing"])
    assert pack["escalations"] == {"open": 0, "ids": []}


async def test_schedule_list_and_complete_reviews(seed):
    today = datetime.now(UTC).date()
    server = seed["server"]
    async with connect(server) as client:

        async def schedule(day: date, attendees: list[int]) -> Any:
            args = {"action": "schedule", "client_id": seed["a"], "kind": "qbr", "attendees": attendees}
            return await call_ok(client, "manage_business_reviews", **args, day=day.isoformat())

        review = await schedule(today + timedelta(days=10), [seed["a2"], seed["a1"]])
        await schedule(today + timedelta(days=20), [])
        past = await schedule(today - timedelta(days=5), [seed["a1"]])
        assert review["attendees"] == sorted([seed["a1"], seed["a2"]])
        assert review["status"] == "scheduled"

        page1 = await call_ok(client, "list_business_reviews", limit=1)
        page2 = await call_ok(client, "list_business_reviews", limit=1, cursor=page1["next_cursor"])
        olds = await call_ok(client, "list_business_reviews", past=True)
        mine = await call_ok(client, "list_business_reviews", client_id=seed["b"])
        foreign_cursor = await call_error(
            client, "list_business_reviews", past=True, cursor=page1["next_cursor"]
        )
        done = await call_ok(
            client, "manage_business_reviews", action="complete", review_id=past["id"], notes="Agreed plan"
        )
    upcoming = page1["items"] + page2["items"]
    assert [r["scheduled_for"] for r in upcoming] == [
        str(today + timedelta(days=10)),
        str(today + timedelta(days=20)),
    ]
    assert page2["next_cursor"] is None
    assert page1["total"] == 2
    assert [r["scheduled_for"] for r in olds["items"]] == [str(today - timedelta(days=5))]
    assert mine["items"] == []
    assert (foreign_cursor["code"], foreign_cursor["field"]) == ("validation_error", "cursor")
    assert (done["status"], done["notes"]) == ("completed", "Agreed plan")
    with server.runtime.db.session() as s:
        row = s.get(CsBusinessReview, done["id"])
        assert row is not None
        assert (row.status, row.notes) == ("completed", "Agreed plan")
        assert row.completed_at is not None
        stored = s.get(CsBusinessReview, review["id"])
        assert stored is not None
        assert json.loads(stored.attendees) == review["attendees"]


async def test_review_errors_change_nothing(seed):
    server = seed["server"]
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    base = {"action": "schedule", "kind": "ebr", "day": future}
    async with connect(server) as client:
        foreign = await call_error(
            client, "manage_business_reviews", **base, client_id=seed["a"], attendees=[seed["b1"]]
        )
        unknown = await call_error(client, "manage_business_reviews", **base, client_id=99_999)
        no_date = await call_error(
            client, "manage_business_reviews", action="schedule", kind="ebr", client_id=seed["a"]
        )
        future_pack = await call_error(client, "get_review_pack", client_id=seed["a"], as_of="2999-01-01")
        bad_date = await call_error(
            client, "manage_business_reviews", **(base | {"day": "2026-02-30"}), client_id=seed["a"]
        )
        missing = await call_error(
            client, "manage_business_reviews", action="complete", review_id=424242, notes="x"
        )
        no_notes = await call_error(client, "manage_business_reviews", action="complete", review_id=1)
        too_big = [
            await call_error(
                client, "manage_business_reviews", action="complete", review_id=TOO_BIG, notes="x"
            ),
            await call_error(client, "get_review_pack", client_id=TOO_BIG),
            await call_error(client, "list_business_reviews", client_id=TOO_BIG),
        ]
        unknown_list = await call_error(client, "list_business_reviews", client_id=99_999)
    assert (foreign["code"], foreign["field"]) == ("validation_error", "attendees")
    assert (unknown["code"], unknown["field"]) == ("not_found", "client_id")
    assert no_date["field"] == "day"
    assert (future_pack["code"], future_pack["field"]) == ("validation_error", "as_of")
    assert bad_date["code"] == "validation_error"
    assert missing["code"] == "not_found"
    assert no_notes["field"] == "notes"
    assert [(e["code"], e["field"]) for e in too_big] == [
        ("validation_error", "review_id"),
        ("validation_error", "client_id"),
        ("validation_error", "client_id"),
    ]
    assert unknown_list["code"] == "not_found"
    assert count_rows(server.runtime.db, CsBusinessReview) == 0


async def test_points_ledger_balance_and_redeem_beyond_balance(seed):
    server = seed["server"]
    async with connect(server) as client:

        async def points(n: int) -> Any:
            args = {"action": "record_points", "client_id": seed["a"], "points": n, "notes": "case study"}
            return await client.call_tool("manage_advocacy", args)

        assert (await points(100)).structured_content["balance"] == 100
        assert (await points(-30)).structured_content["balance"] == 70
        too_much = await points(-71)
        zero = await points(0)
        no_points = await call_error(client, "manage_advocacy", action="record_points", client_id=seed["a"])
        balance = await call_ok(client, "get_advocacy_balance", client_id=seed["a"])
        other = await call_ok(client, "get_advocacy_balance", client_id=seed["b"])
        unknown = await call_error(client, "get_advocacy_balance", client_id=99_999)
        too_big = await call_error(client, "get_advocacy_balance", client_id=TOO_BIG)
    assert (error_of(too_much)["code"], error_of(too_much)["field"]) == ("validation_error", "points")
    assert error_of(zero)["field"] == "points"
    assert no_points["field"] == "points"
    assert balance == {"client_id": seed["a"], "balance": 70}
    assert other["balance"] == 0
    assert (unknown["code"], too_big["code"], too_big["field"]) == (
        "not_found",
        "validation_error",
        "client_id",
    )
    with server.runtime.db.session() as s:
        rows = s.exec(select(CsAdvocacyPoints).order_by(CsAdvocacyPoints.id)).all()
    assert [(r.entry, r.points) for r in rows] == [("earn", 100), ("redeem", -30)]
    assert sum(r.points for r in rows) == 70


async def test_add_and_list_advocacy_records(seed):
    server = seed["server"]
    async with connect(server) as client:
        added = await call_ok(
            client,
            "manage_advocacy",
            action="add",
            client_id=seed["a"],
            contact_id=seed["a1"],
            kind="case_study",
        )
        foreign = await call_error(
            client,
            "manage_advocacy",
            action="add",
            client_id=seed["a"],
            contact_id=seed["b1"],
            kind="reference",
        )
        unknown = await call_error(client, "manage_advocacy", action="add", client_id=99_999, kind="review")
        no_kind = await call_error(client, "manage_advocacy", action="add", client_id=seed["a"])
        active = await call_ok(
            client, "manage_advocacy", action="add", client_id=seed["a"], kind="referral", status="active"
        )
        listed = await call_ok(client, "list_advocacy", status="proposed")
        page1 = await call_ok(client, "list_advocacy", limit=1)
        page2 = await call_ok(client, "list_advocacy", limit=1, cursor=page1["next_cursor"])
        of_b = await call_ok(client, "list_advocacy", client_id=seed["b"])
        unknown_list = await call_error(client, "list_advocacy", client_id=99_999)
    record = added["record"]
    assert (record["kind"], record["status"], record["contact_id"]) == ("case_study", "proposed", seed["a1"])
    assert added["balance"] == 0
    assert (foreign["code"], foreign["field"]) == ("validation_error", "contact_id")
    assert unknown["code"] == "not_found"
    assert no_kind["field"] == "kind"
    assert [r["id"] for r in listed["items"]] == [record["id"]]
    pages = page1["items"] + page2["items"]
    assert [r["id"] for r in pages] == [record["id"], active["record"]["id"]]
    assert page2["next_cursor"] is None
    assert of_b["items"] == []
    assert of_b["total"] == 0
    assert unknown_list["code"] == "not_found"
    assert count_rows(server.runtime.db, CsAdvocacy) == 2


async def test_candidates_are_promoters_in_good_health_who_are_not_active_advocates(seed):
    server = seed["server"]
    with server.runtime.db.session(write=True) as s:
        ids = {}
        for name, nps_scores, band, advocacy in (
            ("Promoter", [3, 10], "excellent", None),
            ("Proposed", [9], "good", "proposed"),
            ("Lapsed", [10, 5], "good", None),
            ("Sick", [10], "at_risk", None),
            ("Active", [10], "excellent", "active"),
        ):
            cid = add_client(s, name).id or 0
            ids[name] = cid
            for i, score in enumerate(nps_scores):
                s.add(_nps(cid, f"2026-06-0{i + 1}", score))
            s.add(
                _snapshot(
                    cid, "2026-06-15", 91 if band == "excellent" else 75 if band == "good" else 55, band
                )
            )
            if advocacy:
                s.add(CsAdvocacy(client_id=cid, kind="reference", status=advocacy, created_by="t"))
    async with connect(server) as client:
        result = await call_ok(client, "list_advocacy_candidates", as_of=AS_OF.isoformat())
    found = {c["client_id"]: c for c in result["candidates"]}
    assert set(found) == {ids["Promoter"], ids["Proposed"]}
    evidence = found[ids["Promoter"]]
    assert (evidence["nps_score"], evidence["health_score"], evidence["health_band"]) == (10, 91, "excellent")
    assert evidence["health_as_of"] == "2026-06-15"
    assert evidence["nps_at"].startswith("2026-06-02")


async def test_a_read_only_server_lists_and_calls_the_review_and_advocacy_reads(make_settings, seed):
    from revops_cs.server import create_server

    reader = create_server(make_settings(read_only=True))
    try:
        async with connect(reader) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            pack = await call_ok(client, "get_review_pack", client_id=seed["a"], as_of=AS_OF.isoformat())
            reviews = await call_ok(client, "list_business_reviews")
            records = await call_ok(client, "list_advocacy")
            balance = await call_ok(client, "get_advocacy_balance", client_id=seed["a"])
            found = await call_ok(client, "list_advocacy_candidates", as_of=AS_OF.isoformat())
    finally:
        reader.runtime.db.dispose()
    assert {"manage_business_reviews", "manage_advocacy"} & names == set()
    assert pack["health"]["score"] == 82
    assert (reviews["total"], records["total"], balance["balance"]) == (0, 0, 0)
    assert found["candidates"] == []  # Acme's latest NPS is a 6
