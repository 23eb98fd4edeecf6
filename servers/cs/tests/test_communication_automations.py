"""Automations: rules (automate_communications, list_automations) evaluated on stored snapshots and
tickets by run_automations — plan first, then confirm — send once per occurrence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
import spec_validation as sv
from comm_helpers import (
    count,
    steady_settings,
)
from factories import add_client, add_contact
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.testing import call_error, call_ok, connect, error_of, override_vendor
from revops_core.vault import Vault
from revops_cs.models.communication import CsCommFiring, CsEmailMessage
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.support import CsTicket

pytestmark = pytest.mark.anyio
SEND_URL = "https://api.sendgrid.com/v3/mail/send"


@pytest.fixture
def settings(make_settings):
    return steady_settings(make_settings)


def snapshot(client_id: int, day: date, score: float, band: str) -> CsHealthSnapshot:
    return CsHealthSnapshot(
        client_id=client_id, as_of=day, score=score, band=band, components="{}", weights="{}", inputs_hash="h"
    )


@pytest.fixture
def portfolio(cs_server) -> dict[str, int]:
    # A fake clock per test: vendor holds (429 Retry-After) live in one process-wide store, and a hold
    # recorded by another test's fake clock must not read as a years-long wait on the real one.
    override_vendor(cs_server, "sendgrid", clock=FakeClock())
    with cs_server.runtime.db.session(write=True) as s:
        acme = add_client(s, "Acme")
        add_contact(s, acme, "ann@acme.test", first_name="Ann", is_primary=True)
        add_contact(s, acme, "bob@acme.test", first_name="Bob")
        beta = add_client(s, "Beta")  # its health falls too, but it has no primary contact
        add_contact(s, beta, "bea@beta.test")
        steady = add_client(s, "Steady")
        add_contact(s, steady, "sam@steady.test", is_primary=True)
        for cid, (old, new) in {acme.id: (82, 64), beta.id: (75, 55), steady.id: (80, 79)}.items():
            s.add(snapshot(cid, date(2026, 5, 1), old, "good"))
            s.add(snapshot(cid, date(2026, 5, 8), new, "at_risk" if new < 70 else "good"))
        return {"acme": acme.id, "beta": beta.id, "steady": steady.id}


async def tool(client: Any, **args: Any) -> Any:
    return await client.call_tool("automate_communications", args)


async def run(client: Any) -> dict[str, Any]:
    """run_automations: the plan (nothing sent), then the confirmed run; its result.

    With nothing new to fire there is no plan: the first call is already done."""
    first = await call_ok(client, "run_automations")
    if first["status"] == "done":
        assert first["plan"] is None
        return dict(first["result"])
    done = await call_ok(client, "run_automations", confirm=first["plan_id"])
    assert done["status"] == "done"
    return dict(done["result"])


def configure(cs_server: Any, settings: Any) -> None:
    Vault(cs_server.runtime.db, settings).set(
        "sendgrid", "default", {"api_key": "SG.k", "from_email": "cs@v.test"}
    )


async def test_rules_fire_once_per_occurrence_and_really_send(cs_server, settings, portfolio):
    configure(cs_server, settings)
    async with connect(cs_server) as client:
        created = await tool(
            client,
            action="create",
            name="Health dropped",
            trigger="band_drop",
            subject="{{client_name}}: let's talk",
            body="Hi {{first_name}}, your health is now {{health_band}}.",
        )
        assert created.structured_content["trigger"] == "band_drop"
        await tool(
            client, action="create", name="Urgent", trigger="urgent_ticket", subject="We're on it", body="Hi"
        )
        with cs_server.runtime.db.session(write=True) as s:
            s.add(CsTicket(client_id=portfolio["steady"], subject="Down", priority="urgent", status="new"))
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post(SEND_URL).mock(
                side_effect=[httpx.Response(202, headers={"X-Message-Id": f"m{i}"}) for i in range(5)]
            )
            first = await run(client)
            again = await run(client)
    fired = {(f["client_id"], f["sent"], f["skipped"]) for f in first["fired"]}
    assert fired == {
        (portfolio["acme"], 1, None),
        (portfolio["beta"], 0, "no primary contact"),
        (portfolio["steady"], 1, None),
    }
    assert again["fired"] == []
    assert route.call_count == 2
    assert sv.validate_all(sv.SENDGRID, route.calls) == 2
    with cs_server.runtime.db.session() as s:
        bodies = sorted(m.body for m in s.exec(select(CsEmailMessage)))
    assert bodies == ["Hi", "Hi Ann, your health is now at_risk."]
    assert count(cs_server, CsCommFiring) == 3


async def test_score_drop_threshold(cs_server, settings, portfolio):
    configure(cs_server, settings)
    async with connect(cs_server) as client:
        missing = await tool(client, action="create", name="x", trigger="score_drop", subject="s", body="b")
        assert error_of(missing)["field"] == "threshold"
        await tool(
            client, action="create", name="Drop 15", trigger="score_drop", threshold=15, subject="s", body="b"
        )
        with respx.mock() as mock:
            mock.post(SEND_URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
            result = await run(client)
    # Acme lost 18 points, Beta 20 (no primary contact), Steady 1.
    assert {f["client_id"] for f in result["fired"]} == {portfolio["acme"], portfolio["beta"]}


async def test_run_without_sendgrid_sends_and_stores_nothing(cs_server, portfolio):
    async with connect(cs_server) as client:
        await tool(client, action="create", name="r", trigger="band_drop", subject="s", body="b")
        result = await client.call_tool("run_automations", {})
    assert error_of(result)["code"] == "configuration_error"
    assert count(cs_server, CsCommFiring) == 0
    assert count(cs_server, CsEmailMessage) == 0


async def test_list_delete_and_old_tickets(cs_server, portfolio):
    with cs_server.runtime.db.session(write=True) as s:
        old = datetime.now(UTC) - timedelta(days=3)
        s.add(CsTicket(client_id=portfolio["steady"], subject="Old", priority="urgent", created_at=old))
    async with connect(cs_server) as client:
        rule = await tool(
            client, action="create", name="u", trigger="urgent_ticket", subject="s", body="{{nope}}"
        )
        assert error_of(rule)["field"] == "nope"
        rule = await tool(client, action="create", name="u", trigger="urgent_ticket", subject="s", body="b")
        rid = rule.structured_content["id"]
        result = await run(client)  # the ticket predates the rule: nothing to send
        assert result["fired"] == []
        listed = await call_ok(client, "list_automations")
        assert [r["id"] for r in listed["items"]] == [rid]
        await tool(client, action="delete", rule_id=rid)
        listed = await call_ok(client, "list_automations")
    assert listed["items"] == []


async def test_run_plans_first_and_sends_only_when_confirmed(cs_server, settings, portfolio):
    configure(cs_server, settings)
    async with connect(cs_server) as client:
        await tool(client, action="create", name="Drop", trigger="band_drop", subject="s", body="Hi")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(SEND_URL).mock(
                side_effect=[httpx.Response(202, headers={"X-Message-Id": f"m{i}"}) for i in range(5)]
            )
            planned = await call_ok(client, "run_automations")
            # The first call sends nothing and records nothing: it returns the plan.
            assert (planned["status"], planned["result"]) == ("planned", None)
            assert planned["plan"]["affected_count"] == 1  # Acme's primary contact; Beta has none
            assert route.call_count == 0
            assert count(cs_server, CsEmailMessage) == 0
            assert count(cs_server, CsCommFiring) == 0
            done = await call_ok(client, "run_automations", confirm=planned["plan_id"])
            # Confirming again finds nothing new: nothing is sent twice.
            again = await call_ok(client, "run_automations", confirm=planned["plan_id"])
    assert done["status"] == "done"
    assert {(f["client_id"], f["sent"]) for f in done["result"]["fired"]} == {
        (portfolio["acme"], 1),
        (portfolio["beta"], 0),
    }
    assert again["result"]["fired"] == []
    assert route.call_count == 1
    assert count(cs_server, CsEmailMessage) == 1
    assert count(cs_server, CsCommFiring) == 2


async def test_a_new_occurrence_after_the_plan_makes_it_stale(cs_server, settings, portfolio):
    configure(cs_server, settings)
    async with connect(cs_server) as client:
        await tool(client, action="create", name="u", trigger="urgent_ticket", subject="s", body="b")
        with cs_server.runtime.db.session(write=True) as s:
            s.add(CsTicket(client_id=portfolio["steady"], subject="Down", priority="urgent"))
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(SEND_URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
            planned = await call_ok(client, "run_automations")
            with cs_server.runtime.db.session(write=True) as s:
                s.add(CsTicket(client_id=portfolio["acme"], subject="Also down", priority="urgent"))
            stale = await call_error(client, "run_automations", confirm=planned["plan_id"])
    assert stale["code"] == "stale_plan"
    assert route.call_count == 0
    assert count(cs_server, CsEmailMessage) == 0
    assert count(cs_server, CsCommFiring) == 0


async def test_rules_are_listed_on_a_read_only_server(make_settings, cs_server, portfolio):
    from revops_cs.server import create_server

    async with connect(cs_server) as client:
        await tool(client, action="create", name="u", trigger="urgent_ticket", subject="s", body="b")
    readonly = create_server(make_settings(read_only=True))
    try:
        async with connect(readonly) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            listed = await call_ok(client, "list_automations", limit=1)
    finally:
        readonly.runtime.db.dispose()
    assert "list_automations" in names
    assert not {"automate_communications", "run_automations"} & names
    assert [r["name"] for r in listed["items"]] == ["u"]


async def test_rule_ids_beyond_postgres_integer_are_validation_errors(cs_server):
    async with connect(cs_server) as client:
        err = await call_error(client, "automate_communications", action="delete", rule_id=2**31)
        missing = await call_error(client, "automate_communications", action="delete")
    assert err["code"] == "validation_error"
    assert (missing["code"], missing["field"]) == ("validation_error", "rule_id")
