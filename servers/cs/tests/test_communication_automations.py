"""automate_communications: rules evaluated on stored snapshots and tickets send once per occurrence."""

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
from revops_core.testing import connect, error_of
from revops_core.vault import Vault
from revops_cs.models.communication import CsCommFiring, CsEmailMessage
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsHealthSnapshot

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
    cs_server.runtime.state["sendgrid_options"] = {"clock": FakeClock()}
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


async def test_rules_fire_once_per_occurrence_and_really_send(cs_server, settings, portfolio):
    Vault(cs_server.runtime.db, settings).set(
        "sendgrid", "default", {"api_key": "SG.k", "from_email": "cs@v.test"}
    )
    async with connect(cs_server) as client:
        created = await tool(
            client,
            action="create",
            name="Health dropped",
            trigger="band_drop",
            subject="{{client_name}}: let's talk",
            body="Hi {{first_name}}, your health is now {{health_band}}.",
        )
        assert created.structured_content["rules"][0]["trigger"] == "band_drop"
        await tool(
            client, action="create", name="Urgent", trigger="urgent_ticket", subject="We're on it", body="Hi"
        )
        with cs_server.runtime.db.session(write=True) as s:
            s.add(CsTicket(client_id=portfolio["steady"], subject="Down", priority="urgent", status="new"))
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post(SEND_URL).mock(
                side_effect=[httpx.Response(202, headers={"X-Message-Id": f"m{i}"}) for i in range(5)]
            )
            first = await tool(client, action="run")
            again = await tool(client, action="run")
    fired = {(f["client_id"], f["sent"], f["skipped"]) for f in first.structured_content["fired"]}
    assert fired == {
        (portfolio["acme"], 1, None),
        (portfolio["beta"], 0, "no primary contact"),
        (portfolio["steady"], 1, None),
    }
    assert again.structured_content["fired"] == []
    assert route.call_count == 2
    assert sv.validate_all(sv.SENDGRID, route.calls) == 2
    with cs_server.runtime.db.session() as s:
        bodies = sorted(m.body for m in s.exec(select(CsEmailMessage)))
    assert bodies == ["Hi", "Hi Ann, your health is now at_risk."]
    assert count(cs_server, CsCommFiring) == 3


async def test_score_drop_threshold(cs_server, settings, portfolio):
    Vault(cs_server.runtime.db, settings).set(
        "sendgrid", "default", {"api_key": "SG.k", "from_email": "cs@v.test"}
    )
    async with connect(cs_server) as client:
        missing = await tool(client, action="create", name="x", trigger="score_drop", subject="s", body="b")
        assert error_of(missing)["field"] == "threshold"
        await tool(
            client, action="create", name="Drop 15", trigger="score_drop", threshold=15, subject="s", body="b"
        )
        with respx.mock() as mock:
            mock.post(SEND_URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
            run = await tool(client, action="run")
    # Acme lost 18 points, Beta 20 (no primary contact), Steady 1.
    assert {f["client_id"] for f in run.structured_content["fired"]} == {portfolio["acme"], portfolio["beta"]}


async def test_run_without_sendgrid_sends_and_stores_nothing(cs_server, portfolio):
    async with connect(cs_server) as client:
        await tool(client, action="create", name="r", trigger="band_drop", subject="s", body="b")
        result = await tool(client, action="run")
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
        rid = rule.structured_content["rules"][0]["id"]
        run = await tool(client, action="run")  # the ticket predates the rule: nothing to send
        assert run.structured_content["fired"] == []
        listed = await tool(client, action="list")
        assert [r["id"] for r in listed.structured_content["rules"]] == [rid]
        await tool(client, action="delete", rule_id=rid)
        listed = await tool(client, action="list")
    assert listed.structured_content["rules"] == []
