"""The onboarding toolset: templates → plans, progress statuses, training/certification, TTV, funnel."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import add_client, add_contact, at
from sqlalchemy import func
from sqlmodel import select

from revops_core.testing import call_error, call_ok, connect, error_of
from revops_cs.models.onboarding import CsOnboardingMilestone, CsOnboardingPlan
from revops_cs.models.usage import CsUsageEvent

pytestmark = pytest.mark.anyio
START = date(2026, 3, 1)
STEPS = [
    {"name": "Kick-off", "offset_days": 2},
    {"name": "Setup", "offset_days": 10},
    {"name": "Go-live", "offset_days": 30},
]


async def test_template_plan_progress_and_funnel(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        a = add_client(s, "A", contract_start=START).id
        b = add_client(s, "B", contract_start=START + timedelta(days=5)).id
    async with connect(cs_server) as client:
        missing = await client.call_tool("create_onboarding_plan", {"template": "std", "client_id": a})
        assert error_of(missing)["field"] == "template"
        t = await client.call_tool("save_onboarding_template", {"template": "std", "milestones": STEPS[:2]})
        edit = await client.call_tool("save_onboarding_template", {"template": "std", "milestones": STEPS})
        assert t.structured_content["template_id"] == edit.structured_content["template_id"]
        p1 = (
            await client.call_tool("create_onboarding_plan", {"template": "std", "client_id": a})
        ).structured_content
        p2 = (
            await client.call_tool("create_onboarding_plan", {"template": "std", "client_id": b})
        ).structured_content
        assert [m["due_date"] for m in p1["milestones"]] == ["2026-03-03", "2026-03-11", "2026-03-31"]
        pid = p1["plan_id"]
        done = await client.call_tool(
            "complete_onboarding_milestone", {"plan_id": pid, "seq": 1, "completed_on": "2026-03-04"}
        )
        assert done.structured_content["milestones"][0]["status"] == "done"
        st = await client.call_tool("track_onboarding_progress", {"plan_id": pid, "as_of": "2026-03-25"})
        out = st.structured_content
        assert [m["status"] for m in out["milestones"]] == ["done", "overdue", "at_risk"]
        assert out["counts"] == {"done": 1, "overdue": 1, "at_risk": 1, "on_track": 0}
        wide = await client.call_tool(
            "track_onboarding_progress", {"plan_id": pid, "as_of": "2026-03-12", "at_risk_days": 2}
        )
        assert wide.structured_content["milestones"][2]["status"] == "on_track"
        await client.call_tool(
            "complete_onboarding_milestone", {"plan_id": pid, "seq": 2, "completed_on": "2026-03-15"}
        )
        await client.call_tool(
            "complete_onboarding_milestone",
            {"plan_id": p2["plan_id"], "seq": 1, "completed_on": "2026-03-10"},
        )
        bad = await client.call_tool("complete_onboarding_milestone", {"plan_id": pid, "seq": 9})
        assert error_of(bad)["field"] == "seq"
        early = await client.call_tool(
            "complete_onboarding_milestone", {"plan_id": pid, "seq": 3, "completed_on": "2026-01-01"}
        )
        assert error_of(early)["field"] == "completed_on"
        funnel = await client.call_tool("analyze_onboarding", {"view": "funnel", "template": "std"})
    f = funnel.structured_content["funnel"]
    assert f["plans"] == 2
    s1, s2, s3 = f["steps"]
    assert (s1["completed"], s1["median_days_from_start"]) == (2, 3.5)  # 3 days (A) and 4 days (B)
    assert (s2["completed"], s2["conversion_from_previous"], s2["median_days_from_start"]) == (1, 0.5, 14.0)
    assert (s3["completed"], s3["conversion_from_previous"]) == (0, 0.0)
    with cs_server.runtime.db.session() as s:
        assert s.exec(select(func.count()).select_from(CsOnboardingPlan)).one() == 2
        assert s.exec(select(func.count()).select_from(CsOnboardingMilestone)).one() == 6


async def test_training_attendance_and_certification(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "T")
        x = add_contact(s, c, "x@t.com").id
        y = add_contact(s, c, "y@t.com").id
        other = add_client(s, "Other")
        z = add_contact(s, other, "z@o.com").id
        cid = c.id
    when = datetime(2026, 3, 2, 15, tzinfo=UTC).isoformat()
    async with connect(cs_server) as client:
        await client.call_tool(
            "configure_cs_thresholds",
            {"section": "onboarding", "values": {"certification_modules": ["basics", "admin"]}},
        )
        s1 = await client.call_tool(
            "manage_training",
            {
                "action": "schedule",
                "client_id": cid,
                "title": "Basics",
                "module": "basics",
                "scheduled_at": when,
            },
        )
        s2 = await client.call_tool(
            "manage_training",
            {
                "action": "schedule",
                "client_id": cid,
                "title": "Admin",
                "module": "admin",
                "scheduled_at": when,
            },
        )
        id1, id2 = s1.structured_content["session_id"], s2.structured_content["session_id"]
        await client.call_tool(
            "manage_training",
            {
                "action": "attendance",
                "client_id": cid,
                "session_id": id1,
                "attendees": [{"contact_id": x, "attended": True}, {"contact_id": y, "attended": True}],
            },
        )
        await client.call_tool(
            "manage_training",
            {
                "action": "attendance",
                "client_id": cid,
                "session_id": id2,
                "attendees": [{"contact_id": x, "attended": True}, {"contact_id": y, "attended": False}],
            },
        )
        foreign = await client.call_tool(
            "manage_training",
            {
                "action": "attendance",
                "client_id": cid,
                "session_id": id2,
                "attendees": [{"contact_id": z, "attended": True}],
            },
        )
        assert error_of(foreign)["field"] == "attendees"
        rep = await client.call_tool("get_training_report", {"client_id": cid})
    out = rep.structured_content
    assert out["attendance_rate"] == 0.75
    cert = {c["email"]: c for c in out["certification"]}
    assert (cert["x@t.com"]["completed"], cert["x@t.com"]["percent"]) == (["admin", "basics"], 100.0)
    assert (cert["y@t.com"]["completed"], cert["y@t.com"]["percent"]) == (["basics"], 50.0)


async def test_time_to_value_from_contract_start_to_first_value_event(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        a = add_client(s, "A", contract_start=START)
        b = add_client(s, "B", contract_start=START)
        add_client(s, "C", contract_start=START)
        for c, days in ((a, 12), (b, 30)):
            s.add(
                CsUsageEvent(
                    client_id=c.id or 0,
                    user_ref="u",
                    event="first_value",
                    occurred_at=at(START + timedelta(days=days)),
                )
            )
            s.add(
                CsUsageEvent(
                    client_id=c.id or 0,
                    user_ref="u",
                    event="first_value",
                    occurred_at=at(START + timedelta(days=days + 40)),
                )
            )
        aid = a.id
    async with connect(cs_server) as client:
        res = await client.call_tool("analyze_onboarding", {"view": "time_to_value", "as_of": "2026-06-30"})
        early = await client.call_tool(
            "analyze_onboarding", {"view": "time_to_value", "client_id": aid, "as_of": "2026-03-05"}
        )
        other = await client.call_tool(
            "analyze_onboarding", {"view": "time_to_value", "value_event": "never_seen"}
        )
        none = await client.call_tool("analyze_onboarding", {"view": "funnel"})
    out = res.structured_content["time_to_value"]
    assert [c["days"] for c in out["clients"]] == [12, 30, None]
    assert (out["reached"], out["not_reached"], out["median_days"]) == (2, 1, 21.0)
    assert early.structured_content["time_to_value"]["clients"][0]["days"] is None
    assert other.structured_content["time_to_value"]["reached"] == 0
    assert other.structured_content["time_to_value"]["median_days"] is None
    assert error_of(none)["code"] == "not_found"


async def test_manage_training_names_the_field_an_action_needs(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        cid = add_client(s, "T").id
    async with connect(cs_server) as client:
        no_time = await call_error(
            client, "manage_training", action="schedule", client_id=cid, title="Basics"
        )
        naive = await call_error(
            client,
            "manage_training",
            action="schedule",
            client_id=cid,
            title="Basics",
            scheduled_at="2026-03-02T15:00:00",
        )
        no_session = await call_error(client, "manage_training", action="attendance", client_id=cid)
        unknown = await call_error(
            client,
            "manage_training",
            action="attendance",
            client_id=cid,
            session_id=999,
            attendees=[{"contact_id": 1, "attended": True}],
        )
        report = await call_ok(client, "get_training_report", client_id=cid)
    assert (no_time["code"], no_time["field"]) == ("validation_error", "scheduled_at")
    assert (naive["code"], naive["field"]) == ("validation_error", "scheduled_at")
    assert (no_session["code"], no_session["field"]) == ("validation_error", "session_id")
    assert (unknown["code"], unknown["field"]) == ("not_found", "session_id")
    assert (report["sessions"], report["attendance_rate"], report["certification"]) == ([], None, [])


async def test_a_read_only_server_lists_and_calls_the_onboarding_reads(make_settings):
    from revops_cs.server import create_server

    writer = create_server(make_settings())
    try:
        with writer.runtime.db.session(write=True) as s:
            cid = add_client(s, "R", contract_start=START).id
    finally:
        writer.runtime.db.dispose()
    reader = create_server(make_settings(read_only=True))
    try:
        async with connect(reader) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            report = await call_ok(client, "get_training_report", client_id=cid)
            ttv = await call_ok(client, "analyze_onboarding", view="time_to_value", as_of="2026-06-30")
            no_plan = await call_error(client, "track_onboarding_progress", plan_id=1)
    finally:
        reader.runtime.db.dispose()
    assert {"get_training_report", "track_onboarding_progress", "analyze_onboarding"} <= names
    writes = {"manage_training", "save_onboarding_template", "create_onboarding_plan"}
    assert writes & names == set()
    assert "complete_onboarding_milestone" not in names
    assert report["client_id"] == cid
    assert (ttv["time_to_value"]["reached"], ttv["time_to_value"]["not_reached"]) == (0, 1)
    assert (no_plan["code"], no_plan["field"]) == ("not_found", "plan_id")


TOO_BIG = 2**31  # one above PostgreSQL INTEGER: refused by the schema, never sent to the database
ONBOARDING_IDS = [
    ("manage_training", {"action": "schedule", "title": "t"}, "client_id"),
    ("manage_training", {"action": "attendance", "client_id": 1}, "session_id"),
    ("manage_training", {"action": "attendance", "client_id": 1, "session_id": 1}, "attendees"),
    ("get_training_report", {}, "client_id"),
    ("create_onboarding_plan", {"template": "std"}, "client_id"),
    ("track_onboarding_progress", {}, "plan_id"),
    ("complete_onboarding_milestone", {"seq": 1}, "plan_id"),
    ("complete_onboarding_milestone", {"plan_id": 1}, "seq"),
    ("analyze_onboarding", {"view": "time_to_value"}, "client_id"),
]


@pytest.mark.parametrize(("tool", "args", "field"), ONBOARDING_IDS)
async def test_an_id_above_the_integer_range_is_a_validation_error(cs_server, tool, args, field):
    value = [{"contact_id": TOO_BIG, "attended": True}] if field == "attendees" else TOO_BIG
    async with connect(cs_server) as client:
        err = await call_error(client, tool, **args, **{field: value})
    assert err["code"] == "validation_error"
    assert err["field"].split(".")[0] == field
