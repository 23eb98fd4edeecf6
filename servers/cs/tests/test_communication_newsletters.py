"""automate_newsletters: segment-targeted issues, next-run maths, plan → confirm, each issue sent once."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from comm_helpers import (
    count,
    steady_settings,
)
from factories import add_client, add_contact, at
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.testing import connect, error_of
from revops_core.vault import Vault
from revops_cs.models.communication import CsEmailMessage, CsNewsletter, CsNewsletterIssue
from revops_cs.models.usage import CsSegmentRule
from revops_cs.tools.communication import next_run

pytestmark = pytest.mark.anyio
SEND_URL = "https://api.sendgrid.com/v3/mail/send"


@pytest.fixture
def settings(make_settings):
    return steady_settings(make_settings)


def test_next_run_weekly_and_monthly_clamps_short_months():
    assert next_run("weekly", 3, date(2026, 12, 29)) == date(2027, 1, 5)
    assert next_run("monthly", 31, date(2026, 1, 31)) == date(2026, 2, 28)
    assert next_run("monthly", 31, date(2026, 2, 28)) == date(2026, 3, 31)
    assert next_run("monthly", 15, date(2026, 12, 15)) == date(2027, 1, 15)


@pytest.fixture
def setup(cs_server, settings) -> dict[str, Any]:
    cs_server.runtime.state["sendgrid_options"] = {"clock": FakeClock()}  # see test_communication_automations
    Vault(cs_server.runtime.db, settings).set(
        "sendgrid", "default", {"api_key": "SG.k", "from_email": "cs@v.test"}
    )
    with cs_server.runtime.db.session(write=True) as s:
        big = add_client(s, "Big", tier="enterprise")
        add_contact(s, big, "a@big.test", first_name="Al")
        add_contact(s, big, "b@big.test", first_name="Bo")
        add_contact(s, big, "out@big.test", unsubscribed_at=at("2026-01-01"))
        small = add_client(s, "Small", tier="smb")
        add_contact(s, small, "s@small.test")
        s.add(
            CsSegmentRule(
                name="enterprise",
                created_by="t",
                conditions=json.dumps([{"field": "tier", "op": "eq", "value": "enterprise"}]),
            )
        )
    return {"server": cs_server}


async def test_due_issue_goes_to_the_segment_once_after_confirmation(setup):
    server = setup["server"]
    start = datetime.now(UTC).date() - timedelta(days=10)
    async with connect(server) as client:
        created = await client.call_tool(
            "automate_newsletters",
            {
                "action": "create",
                "name": "Enterprise digest",
                "segment_rule": "enterprise",
                "schedule": "weekly",
                "start": start.isoformat(),
                "subject": "{{client_name}} digest",
                "body": "Hi {{first_name}}",
            },
        )
        assert created.structured_content["newsletters"][0]["next_run"] == start.isoformat()
        with respx.mock() as mock:
            route = mock.post(SEND_URL).mock(
                side_effect=[httpx.Response(202, headers={"X-Message-Id": f"n{i}"}) for i in range(4)]
            )
            planned = await client.call_tool("automate_newsletters", {"action": "run_due"})
            plan = planned.structured_content["plan"]
            assert plan["affected_count"] == 2
            assert route.call_count == 0
            done = await client.call_tool(
                "automate_newsletters", {"action": "run_due", "confirm": plan["plan_id"]}
            )
            again = await client.call_tool("automate_newsletters", {"action": "run_due"})
    assert sorted(r["email"] for r in done.structured_content["recipients"]) == ["a@big.test", "b@big.test"]
    assert route.call_count == 2
    # Two weekly runs were missed: one issue is sent, and the next run is the first date after today.
    assert done.structured_content["newsletters"][0]["next_run"] == (start + timedelta(days=14)).isoformat()
    assert again.structured_content["newsletters"] == []
    assert count(server, CsNewsletterIssue) == 1
    assert count(server, CsEmailMessage) == 2


async def test_unknown_segment_and_variable_are_refused(setup):
    server = setup["server"]
    base = {"action": "create", "name": "n", "schedule": "monthly", "subject": "s", "body": "b"}
    async with connect(server) as client:
        seg = await client.call_tool("automate_newsletters", base | {"segment_rule": "nope"})
        var = await client.call_tool("automate_newsletters", base | {"body": "{{zip}}"})
    assert error_of(seg)["field"] == "segment_rule"
    assert error_of(var)["field"] == "zip"
    assert count(server, CsNewsletter) == 0


async def test_failed_send_keeps_the_issue_due(setup):
    server = setup["server"]
    async with connect(server) as client:
        await client.call_tool(
            "automate_newsletters",
            {"action": "create", "name": "All", "schedule": "monthly", "subject": "s", "body": "b"},
        )
        with respx.mock() as mock:
            mock.post(SEND_URL).respond(500)
            planned = await client.call_tool("automate_newsletters", {"action": "run_due"})
            plan_id = planned.structured_content["plan"]["plan_id"]
            failed = await client.call_tool("automate_newsletters", {"action": "run_due", "confirm": plan_id})
    assert error_of(failed)["code"] == "integration_unavailable"
    assert count(server, CsNewsletterIssue) == 0
    with server.runtime.db.session() as s:
        assert s.exec(select(CsNewsletter.next_run)).one() == datetime.now(UTC).date()
