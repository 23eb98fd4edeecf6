"""Newsletters (automate_newsletters, list_newsletters, send_due_newsletters): segment-targeted issues,
next-run maths, plan → confirm, each issue sent once."""

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
from revops_core.testing import call_error, call_ok, connect, error_of, override_vendor
from revops_core.vault import Vault
from revops_cs.models.communication import CsEmailMessage, CsNewsletter, CsNewsletterIssue
from revops_cs.models.usage import CsSegmentRule
from revops_cs.services.newsletters import next_run

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
    override_vendor(cs_server, "sendgrid", clock=FakeClock())  # see test_communication_automations
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
        assert created.structured_content["next_run"] == start.isoformat()
        with respx.mock() as mock:
            route = mock.post(SEND_URL).mock(
                side_effect=[httpx.Response(202, headers={"X-Message-Id": f"n{i}"}) for i in range(4)]
            )
            planned = await call_ok(client, "send_due_newsletters")
            assert (planned["status"], planned["result"]) == ("planned", None)
            plan = planned["plan"]
            assert plan["affected_count"] == 2
            assert route.call_count == 0
            done = await call_ok(client, "send_due_newsletters", confirm=plan["plan_id"])
            again = await call_ok(client, "send_due_newsletters")
    result = done["result"]
    assert sorted(r["email"] for r in result["recipients"]) == ["a@big.test", "b@big.test"]
    assert route.call_count == 2
    # Two weekly runs were missed: one issue is sent, and the next run is the first date after today.
    assert result["newsletters"][0]["next_run"] == (start + timedelta(days=14)).isoformat()
    assert (again["status"], again["plan"]) == ("done", None)
    assert again["result"]["newsletters"] == []
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
            planned = await call_ok(client, "send_due_newsletters")
            plan_id = planned["plan"]["plan_id"]
            failed = await call_error(client, "send_due_newsletters", confirm=plan_id)
    assert failed["code"] == "integration_unavailable"
    assert count(server, CsNewsletterIssue) == 0
    with server.runtime.db.session() as s:
        assert s.exec(select(CsNewsletter.next_run)).one() == datetime.now(UTC).date()


async def test_list_and_delete_and_read_only_listing(setup, make_settings):
    from revops_cs.server import create_server

    server = setup["server"]
    base = {"action": "create", "schedule": "weekly", "subject": "s", "body": "b"}
    async with connect(server) as client:
        first = await call_ok(client, "automate_newsletters", **base, name="One")
        second = await call_ok(client, "automate_newsletters", **base, name="Two")
        page = await call_ok(client, "list_newsletters", limit=1)
        rest = await call_ok(client, "list_newsletters", limit=1, cursor=page["next_cursor"])
        await call_ok(client, "automate_newsletters", action="delete", newsletter_id=first["id"])
        missing = await call_error(client, "automate_newsletters", action="delete", newsletter_id=first["id"])
        too_big = await call_error(client, "automate_newsletters", action="delete", newsletter_id=2**31)
        no_id = await call_error(client, "automate_newsletters", action="delete")
    assert [n["name"] for n in page["items"] + rest["items"]] == ["One", "Two"]
    assert page["total"] == 2
    assert rest["next_cursor"] is None
    assert (missing["code"], missing["field"]) == ("not_found", "newsletter_id")
    assert too_big["code"] == "validation_error"
    assert (no_id["code"], no_id["field"]) == ("validation_error", "newsletter_id")
    readonly = create_server(make_settings(read_only=True))
    try:
        async with connect(readonly) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            listed = await call_ok(client, "list_newsletters")
    finally:
        readonly.runtime.db.dispose()
    assert "list_newsletters" in names
    assert not {"automate_newsletters", "send_due_newsletters"} & names
    assert [n["id"] for n in listed["items"]] == [second["id"]]
