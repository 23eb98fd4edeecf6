"""Meetings through the protocol on SQLite and PostgreSQL: slots from Google free/busy, booking with
Calendar, outcomes as activities, the prep brief and per-rep statistics — with Google faked at the
network edge (`google_fakes`, every request checked against the Calendar Discovery document)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from google_fakes import connect_google, failure, fake_google
from sqlalchemy import text

from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.models.activities import SalesActivity
from revops_sales.models.deal_work import SalesTask
from revops_sales.models.meetings import SalesMeeting

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(make_settings):
    # One breaker store per process: never let one test's failures open the circuit for the next.
    return make_settings(breaker_min_calls=100_000, http_max_attempts=2)


@pytest.fixture
def server(sales_server, settings):
    connect_google(sales_server, settings)
    return sales_server


def next_monday() -> date:
    day = datetime.now(UTC).date() + timedelta(days=7)
    return day + timedelta(days=-day.weekday() % 7)


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo | None = None) -> datetime:
    return datetime.combine(day, time(hour, minute), zone or UTC).astimezone(UTC)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(server, fn):
    with server.runtime.db.session(write=True) as s:
        return fn(s)


def _company_with_contacts(s, *emails: str) -> tuple[int, list[int]]:
    company = CoreCompany(name="Acme")
    s.add(company)
    s.flush()
    contacts = [CoreContact(email=e, company_id=company.id, first_name=e[0].upper()) for e in emails]
    s.add_all(contacts)
    s.flush()
    return company.id, [c.id for c in contacts]


async def test_slots_skip_everyones_busy_time_and_unknown_calendars_are_named(server) -> None:
    _, (ana, bob) = seed(server, lambda s: _company_with_contacts(s, "ana@acme.test", "bob@acme.test"))
    monday = next_monday()
    with fake_google() as google:
        google.busy = {
            "primary": {"busy": [{"start": iso(at(monday, 9)), "end": iso(at(monday, 10))}]},
            "ana@acme.test": {"busy": [{"start": iso(at(monday, 10, 30)), "end": iso(at(monday, 11))}]},
            "bob@acme.test": {"errors": [{"domain": "global", "reason": "notFound"}]},
        }
        async with connect(server) as client:
            got = await call_ok(
                client,
                "propose_meeting_slots",
                contact_ids=[ana, bob],
                start=monday.isoformat(),
                end=monday.isoformat(),
                day_end="12:00:00",
            )
            # 09:00–10:00 in Berlin (winter or summer time: the test asks zoneinfo, as a person would)
            berlin = await call_ok(
                client,
                "propose_meeting_slots",
                contact_ids=[ana],
                start=monday.isoformat(),
                end=(monday + timedelta(days=6)).isoformat(),
                day_end="10:00:00",
                time_zone="Europe/Berlin",
                duration_minutes=60,
            )
            saturday = (monday + timedelta(days=5)).isoformat()
            weekend = await call_ok(
                client, "propose_meeting_slots", contact_ids=[ana], start=saturday, end=saturday
            )
    assert (weekend["slots"], weekend["note"]) == ([], "No weekday falls between start and end.")
    # 30-minute grid from 09:00 to 12:00, minus 09:00–10:00 (rep) and 10:30–11:00 (Ana)
    expected = [at(monday, 10), at(monday, 11), at(monday, 11, 30)]
    assert [datetime.fromisoformat(s["start"]) for s in got["slots"]] == expected
    assert got["checked"] == ["primary", "ana@acme.test"]
    assert got["unknown"] == ["bob@acme.test"]
    zone = ZoneInfo("Europe/Berlin")
    weekdays = [monday + timedelta(days=i) for i in range(5)]
    assert [datetime.fromisoformat(s["start"]) for s in berlin["slots"]] == [
        at(d, 9, 0, zone) for d in weekdays
    ]
    assert google.requests == ["calendar.freebusy.query", "calendar.freebusy.query"]
    assert google.token_calls == 1  # refreshed once, then the stored access token is reused


async def test_booking_creates_the_event_and_stores_the_meeting_linked_to_deal_and_company(server) -> None:
    company_id, (ana, bob) = seed(
        server, lambda s: _company_with_contacts(s, "ana@acme.test", "bob@acme.test")
    )
    start = at(next_monday(), 14)
    async with connect(server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        deal = await call_ok(
            client,
            "create_deal",
            pipeline_id=pipeline["id"],
            name="Acme",
            amount_minor=5_000_00,
            company_id=company_id,
        )
        with fake_google() as google:
            booked = await call_ok(
                client,
                "book_meeting",
                title="Discovery call",
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(minutes=45)).isoformat(),
                contact_ids=[ana, bob],
                deal_id=deal["id"],
            )
            missing = await call_error(
                client,
                "book_meeting",
                title="X",
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(hours=1)).isoformat(),
                contact_ids=[ana, 999_999],
            )
            past = await call_error(
                client,
                "book_meeting",
                title="X",
                starts_at="2020-01-06T10:00:00Z",
                ends_at="2020-01-06T11:00:00Z",
                contact_ids=[ana],
            )
            backwards = await call_error(
                client,
                "book_meeting",
                title="X",
                starts_at=start.isoformat(),
                ends_at=start.isoformat(),
                contact_ids=[ana],
            )
    event = google.events[0]
    assert google.requests == ["calendar.events.insert"]  # the refused calls never reached Google
    assert [a["email"] for a in event["attendees"]] == ["ana@acme.test", "bob@acme.test"]
    assert (event["start"], event["summary"]) == ({"dateTime": iso(start)}, "Discovery call")
    assert booked["calendar_event_id"] == event["id"]
    assert (booked["calendar_status"], booked["status"]) == ("created", "scheduled")
    assert (booked["deal_id"], booked["company_id"], booked["contact_id"]) == (deal["id"], company_id, ana)
    assert booked["attendees"] == ["ana@acme.test", "bob@acme.test"]
    assert (missing["code"], missing["field"]) == ("not_found", "contact_id")
    assert (past["code"], past["field"]) == ("validation_error", "starts_at")
    assert (backwards["code"], backwards["field"]) == ("validation_error", "ends_at")
    assert count_rows(server.runtime.db, SalesMeeting) == 1


@pytest.mark.parametrize("kind", ["401", "429", "500"])
async def test_a_refused_booking_stores_nothing(server, kind) -> None:
    _, (ana,) = seed(server, lambda s: _company_with_contacts(s, "ana@acme.test"))
    start = at(next_monday(), 14)
    with fake_google() as google:
        google.mock.routes["insert"].mock(side_effect=failure(kind))
        async with connect(server) as client:
            err = await call_error(
                client,
                "book_meeting",
                title="X",
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(hours=1)).isoformat(),
                contact_ids=[ana],
            )
    code = {"401": "integration_auth", "429": "rate_limited", "500": "integration_unavailable"}[kind]
    assert err["code"] == code
    assert count_rows(server.runtime.db, SalesMeeting) == 0


@pytest.mark.parametrize("kind", ["timeout", "malformed"])
async def test_a_booking_without_a_clear_answer_is_stored_as_unknown_with_our_event_id(server, kind) -> None:
    _, (ana,) = seed(server, lambda s: _company_with_contacts(s, "ana@acme.test"))
    start = at(next_monday(), 14)
    with fake_google() as google:
        route = google.mock.routes["insert"]
        route.mock(side_effect=failure(kind))
        async with connect(server) as client:
            got = await call_ok(
                client,
                "book_meeting",
                title="X",
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(hours=1)).isoformat(),
                contact_ids=[ana],
            )
    sent_id = json.loads(route.calls[0].request.content)["id"]
    assert route.call_count == 1  # never resent: Google may have created it
    assert (got["calendar_status"], got["calendar_event_id"]) == ("unknown", sent_id)
    assert count_rows(server.runtime.db, SalesMeeting, SalesMeeting.calendar_status == "created") == 0


def _meeting(s, owner: str, start: datetime, **kw) -> int:
    row = SalesMeeting(
        title=kw.pop("title", "Call"),
        owner=owner,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        calendar_event_id=f"e{start.timestamp():.0f}{owner}",
        calendar_status="created",
        **kw,
    )
    s.add(row)
    s.flush()
    return row.id


async def test_logging_an_outcome_records_one_meeting_activity_and_refuses_a_second_log(server) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    company_id, (ana,) = seed(server, lambda s: _company_with_contacts(s, "ana@acme.test"))
    held_id, future_id = seed(
        server,
        lambda s: (
            _meeting(s, "rep", past, contact_id=ana, company_id=company_id, title="Demo"),
            _meeting(s, "rep", past + timedelta(days=5)),
        ),
    )
    db = server.runtime.db
    async with connect(server) as client:
        no_outcome = await call_error(client, "log_meeting_outcome", meeting_id=held_id, status="held")
        bad = await call_error(
            client, "log_meeting_outcome", meeting_id=held_id, status="no_show", outcome="positive"
        )
        early = await call_error(
            client, "log_meeting_outcome", meeting_id=future_id, status="held", outcome="neutral"
        )
        assert count_rows(db, SalesActivity) == 0  # refused calls changed nothing
        done = await call_ok(
            client,
            "log_meeting_outcome",
            meeting_id=held_id,
            status="held",
            outcome="positive",
            next_steps="Send the proposal",
        )
        again = await call_error(client, "log_meeting_outcome", meeting_id=held_id, status="cancelled")
        cancelled = await call_ok(client, "log_meeting_outcome", meeting_id=future_id, status="cancelled")
    assert (no_outcome["field"], bad["field"], early["field"]) == ("outcome", "outcome", "status")
    assert (done["status"], done["outcome"], done["next_steps"]) == ("held", "positive", "Send the proposal")
    assert again["code"] == "conflict"
    assert cancelled["status"] == "cancelled"
    with db.session() as s:
        rows = s.exec(
            text("SELECT kind, contact_id, company_id, subject, source_id FROM sales_activity")
        ).all()
    assert [tuple(r) for r in rows] == [("meeting", ana, company_id, "Demo", held_id)]


async def test_meeting_stats_per_rep_from_stored_rows(server) -> None:
    base = datetime(2026, 3, 2, 10, tzinfo=UTC)
    async with connect(server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        won_stage = next(s["id"] for s in pipeline["stages"] if s["name"] == "closed won")
        deals = []
        for owner in ("ann", "ann", "ben"):
            deal = await call_ok(
                client, "create_deal", pipeline_id=pipeline["id"], name="D", amount_minor=100, owner=owner
            )
            deals.append(deal["id"])
        for deal_id in deals[:2]:  # ann wins two deals now (closed_at = today)
            await call_ok(client, "move_deal_stage", deal_id=deal_id, stage_id=won_stage)

    def rows(s) -> None:
        # ann: 3 held (2 positive, 1 negative) on her won deals, 1 no-show, 1 cancelled, 1 unlogged
        _meeting(s, "ann", base, status="held", outcome="positive", deal_id=deals[0])
        _meeting(s, "ann", base + timedelta(days=1), status="held", outcome="positive", deal_id=deals[0])
        _meeting(s, "ann", base + timedelta(days=2), status="held", outcome="negative", deal_id=deals[1])
        _meeting(s, "ann", base + timedelta(days=3), status="no_show")
        _meeting(s, "ann", base + timedelta(days=4), status="cancelled")
        _meeting(s, "ann", base + timedelta(days=5))
        _meeting(s, "ann", base - timedelta(days=40), status="held", outcome="neutral")  # outside
        # ben: one no-show only, no won deal
        _meeting(s, "ben", base, status="no_show", deal_id=deals[2])

    seed(server, rows)
    today = datetime.now(UTC).date()
    async with connect(server) as client:
        march = await call_ok(client, "meeting_stats", start="2026-03-01", end="2026-03-31")
        everything = await call_ok(
            client, "meeting_stats", start="2026-01-01", end=today.isoformat(), owner="ann"
        )
    ann, ben = march["reps"]
    assert ann | {"notes": None} == {
        "owner": "ann",
        "booked": 6,
        "held": 3,
        "no_shows": 1,
        "cancelled": 1,
        "unlogged": 1,
        "positive": 2,
        "neutral": 0,
        "negative": 1,
        "no_show_rate": 1 / 4,
        "won_deals": 0,
        "meetings_per_won_deal": None,
        "notes": None,
    }
    assert ann["notes"] == ["meetings_per_won_deal: the rep won no deal in the period."]
    assert (ben["booked"], ben["no_shows"], ben["no_show_rate"], ben["won_deals"]) == (1, 1, 1.0, 0)
    (ann_all,) = everything["reps"]
    # 4 held meetings in the period; the 3 on her 2 won deals count per won deal: 3 / 2
    assert (ann_all["held"], ann_all["won_deals"], ann_all["meetings_per_won_deal"]) == (4, 2, 1.5)
    assert (ann_all["neutral"], ann_all["no_show_rate"]) == (1, 1 / 5)


async def test_the_brief_gathers_deal_history_tasks_touches_contacts_and_cs_health(server) -> None:
    company_id, (ana, bob) = seed(
        server, lambda s: _company_with_contacts(s, "ana@acme.test", "bob@acme.test")
    )
    async with connect(server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        proposal = next(s["id"] for s in pipeline["stages"] if s["name"] == "proposal")
        deal = await call_ok(
            client,
            "create_deal",
            pipeline_id=pipeline["id"],
            name="Acme",
            amount_minor=100,
            company_id=company_id,
        )
        await call_ok(client, "move_deal_stage", deal_id=deal["id"], stage_id=proposal)
    when = datetime.now(UTC) - timedelta(days=2)

    def rows(s):
        s.add(SalesTask(deal_id=deal["id"], title="Send pricing", created_by="rep"))
        s.add(SalesTask(deal_id=deal["id"], title="Done already", created_by="rep", done_at=when))
        s.add(SalesActivity(kind="call", deal_id=deal["id"], subject="First call", occurred_at=when))
        return _meeting(s, "rep", when, deal_id=deal["id"], company_id=company_id, contact_id=ana)

    meeting_id = seed(server, rows)
    async with connect(server) as client:
        before = await call_ok(client, "get_meeting_brief", meeting_id=meeting_id)
        # CS shares this database: its client for the company and two health snapshots
        from revops_cs.models.clients import CsClient
        from revops_cs.models.health import CsHealthSnapshot

        with server.runtime.db.session(write=True) as s:
            cs_client = CsClient(company_id=company_id, name="Acme", tier="mid")
            s.add(cs_client)
            s.flush()
            for day, score in (("2026-01-01", 40.0), ("2026-02-01", 72.5)):
                s.add(
                    CsHealthSnapshot(
                        client_id=cs_client.id,
                        as_of=date.fromisoformat(day),
                        score=score,
                        band="green",
                        components="{}",
                        weights="{}",
                        inputs_hash="h",
                    )
                )
        after = await call_ok(client, "get_meeting_brief", meeting_id=meeting_id)
        missing = await call_error(client, "get_meeting_brief", meeting_id=meeting_id + 1)
    assert [m["to_stage_id"] for m in before["deal"]["history"]][-1] == proposal
    assert [t["title"] for t in before["open_tasks"]] == ["Send pricing"]
    assert [a["subject"] for a in before["last_touches"]] == ["First call"]
    assert [c["id"] for c in before["contacts"]] == [ana, bob]
    assert before["cs_health"] == {
        "score": None,
        "band": None,
        "as_of": None,
        "reason": "CS has no health snapshot for this company.",
    }
    assert after["cs_health"] == {"score": 72.5, "band": "green", "as_of": "2026-02-01", "reason": None}
    assert after["notes"] == []
    assert (missing["code"], missing["field"]) == ("not_found", "meeting_id")


def test_cs_health_is_null_with_the_reason_when_cs_is_not_in_the_database() -> None:
    from sqlalchemy import create_engine
    from sqlmodel import Session

    from revops_sales.services.meeting_brief import cs_health

    with Session(create_engine("sqlite://")) as s:  # a database without CS's tables
        health = cs_health(s, "default", 1)
    assert (health.score, health.reason) == (None, "CS not installed in this database")
