"""Issue 7, finding 7: the smaller conventions, each pinned through the protocol with exact values.

Annualised churn compounds the monthly rate; e-mail stats count unknown outcomes apart; the ABC tier of
the client that crosses a cut; lifecycle maturity and the health contract recipe come from config; the
overview and the health report average the same clients; a plan needs a start date.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import respx
from comm_helpers import failure, steady_settings
from factories import add_contact
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.testing import call_error, call_ok, connect, override_vendor
from revops_core.vault import Vault
from revops_cs.models.clients import CsClient
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.services.health_settings import health_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(make_settings):
    return steady_settings(make_settings)


async def register(client: Any, name: str, **fields: Any) -> int:
    out = await call_ok(client, "register_client", name=name, tier=fields.pop("tier", "smb"), **fields)
    return int(out["client_id"])


# --------------------------------------------------------------------------- 1. annualised churn


def mrr(client_id: int, when: str, amount: int) -> dict[str, Any]:
    return {"client_id": client_id, "kind": "mrr_change", "amount_minor": amount, "occurred_at": when}


async def test_annualised_churn_compounds_the_monthly_rate(cs_server):
    async with connect(cs_server) as client:
        ids = [await register(client, f"C{i}") for i in range(5)]
        events = [mrr(cid, "2026-01-05T12:00:00Z", 1000_00) for cid in ids]
        events.append(mrr(ids[0], "2026-02-10T12:00:00Z", 0))  # churns in February
        await call_ok(client, "record_billing", events=events)
        out = await call_ok(
            client, "analyze_revenue_retention", start_month="2026-01-01", end_month="2026-04-01"
        )
    # GRR 4000/5000 over 3 months: monthly m = 1 − 0.8^(1/3); annual 1 − (1 − m)^12 = 1 − 0.8^4 = 0.5904.
    assert out["grr"] == pytest.approx(0.8)
    assert out["annualised_gross_churn"] == pytest.approx(1 - 0.8**4)
    assert out["annualised_gross_churn"] == pytest.approx(0.5904)


async def test_annualised_churn_does_not_depend_on_the_months_length(cs_server):
    async with connect(cs_server) as client:
        ids = [await register(client, f"C{i}") for i in range(10)]
        events = [mrr(cid, "2026-02-01T12:00:00Z", 100_00) for cid in ids]
        events.append(mrr(ids[9], "2026-03-05T12:00:00Z", 0))  # February → March: 10 % lost
        events.append(mrr(ids[8], "2026-04-10T12:00:00Z", 10_00))  # March → April: 90 of 900 lost
        await call_ok(client, "record_billing", events=events)
        feb = await call_ok(
            client, "analyze_revenue_retention", start_month="2026-02-01", end_month="2026-03-01"
        )
        mar = await call_ok(
            client, "analyze_revenue_retention", start_month="2026-03-01", end_month="2026-04-01"
        )
    # 28 days and 31 days, one month each with GRR 0.9: the same annual rate 1 − 0.9^12.
    assert (feb["grr"], mar["grr"]) == (pytest.approx(0.9), pytest.approx(0.9))
    assert feb["annualised_gross_churn"] == pytest.approx(1 - 0.9**12)
    assert mar["annualised_gross_churn"] == pytest.approx(1 - 0.9**12)


# --------------------------------------------------------------------------- 2. e-mail outcomes

SEND_URL = "https://api.sendgrid.com/v3/mail/send"
T0 = 1_780_000_000


async def test_email_stats_count_unknown_outcomes_apart(cs_server, settings):
    Vault(cs_server.runtime.db, settings).set(
        "sendgrid", "default", {"api_key": "SG.key", "from_email": "cs@vendor.test"}
    )
    override_vendor(cs_server, "sendgrid", clock=FakeClock())
    async with connect(cs_server) as client:
        cid = await register(client, "Acme")
    with cs_server.runtime.db.session(write=True) as s:
        acme = s.get(CsClient, cid)
        contacts = [add_contact(s, acme, f"{n}@acme.test").id for n in ("ann", "bob", "cid", "dan", "eve")]
    answers = [
        httpx.Response(202, headers={"X-Message-Id": "m1"}),  # ann: delivered, opened
        httpx.Response(202, headers={"X-Message-Id": "m2"}),  # bob: bounced
        httpx.Response(202, headers={"X-Message-Id": "m3"}),  # cid: accepted, only "processed" since
        failure("timeout"),  # dan: may or may not have been sent; nothing heard since
        httpx.Response(202),  # eve: no message id (unknown), then a delivery event arrives
    ]
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(SEND_URL).mock(side_effect=answers)
        async with connect(cs_server) as client:
            for contact in contacts:
                await client.call_tool(
                    "send_personalized_email",
                    {"client_ids": [cid], "contact_ids": [contact], "subject": "Hi", "body": "Hello"},
                )
    eve_ref = json.loads(route.calls[4].request.content)["personalizations"][0]["custom_args"]["revops_ref"]

    def ev(n: str, event: str, email: str, **ref: str) -> dict[str, Any]:
        return {"sg_event_id": n, "event": event, "email": email, "timestamp": T0, **ref}

    events = [
        ev("e1", "delivered", "ann@acme.test", sg_message_id="m1.filter0001"),
        ev("e2", "open", "ann@acme.test", sg_message_id="m1.filter0001"),
        ev("e3", "bounce", "bob@acme.test", sg_message_id="m2.filter0001"),
        ev("e4", "processed", "cid@acme.test", sg_message_id="m3.filter0001"),
        ev("e5", "delivered", "eve@acme.test", revops_ref=eve_ref),
    ]
    async with connect(cs_server) as client:
        await call_ok(client, "ingest_email_events", events=events)
        stats = await call_ok(client, "get_email_stats")
    # Sent: SendGrid has it (4: not dan's timed-out send). Delivered: a delivery event (ann, eve).
    # Unknown: no delivery or bounce event yet (cid, dan). Rates over the 2 delivered.
    assert stats == {
        "sent": 4,
        "bounces": 1,
        "delivered": 2,
        "unknown": 2,
        "unique_opens": 1,
        "unique_clicks": 0,
        "unsubscribes": 0,
        "complaints": 0,
        "open_rate": 0.5,
        "ctr": 0.0,
        "ctor": 0.0,
        "unsubscribe_rate": 0.0,
        "complaint_rate": 0.0,
    }


# --------------------------------------------------------------------------- 3. ABC boundary


@pytest.mark.parametrize(
    ("arr", "tiers"),
    [
        # Shares before each client: 0, 70 %, 85 %, 95 %. The client crossing 80 % (70 → 85) is A, the
        # one crossing 95 % (85 → 95) is B, and one starting exactly at 95 % is C.
        ([7000_00, 1500_00, 1000_00, 500_00], ["A", "A", "B", "C"]),
        # Shares before: 0, 80 %, 95 %: starting exactly at 80 % is B.
        ([8000_00, 1500_00, 500_00], ["A", "B", "C"]),
    ],
)
async def test_abc_tier_of_the_client_crossing_a_cut(cs_server, arr, tiers):
    async with connect(cs_server) as client:
        ids = [await register(client, f"C{i}", arr_minor=a) for i, a in enumerate(arr)]
        out = await call_ok(client, "segment_by_value_tier", method="abc")
    got = {m["client_id"]: m["segment"] for m in out["members"]}
    assert [got[i] for i in ids] == tiers


# ---------------------------------------------------------- 4. configured maturity and contract


async def test_mature_days_come_from_the_onboarding_config(cs_server):
    async with connect(cs_server) as client:
        cid = await register(client, "Acme", contract_start="2026-01-01")
        before = await call_ok(client, "segment_customers", by="lifecycle", as_of="2026-08-01")
        await call_ok(client, "configure_cs_thresholds", section="onboarding", values={"mature_days": 180})
        after = await call_ok(client, "segment_customers", by="lifecycle", as_of="2026-08-01")
    # 212 days into the contract: adoption under the default 365, mature under 180.
    assert [(m["client_id"], m["segment"]) for m in before["members"]] == [(cid, "adoption")]
    assert [(m["client_id"], m["segment"]) for m in after["members"]] == [(cid, "mature")]


@pytest.fixture
def fresh_health_settings() -> Iterator[None]:
    health_settings.cache_clear()
    yield
    health_settings.cache_clear()


async def contract_component(client: Any, cid: int, day: str) -> dict[str, Any]:
    out = await call_ok(client, "calculate_health_score", scope="client", client_id=cid, as_of=day)
    return next(c for c in out["client"]["components"] if c["name"] == "contract")


async def test_contract_recipe_comes_from_the_health_settings(cs_server, monkeypatch, fresh_health_settings):
    async with connect(cs_server) as client:
        cid = await register(client, "Acme", renewal_date="2026-05-01")
        failed = {"client_id": cid, "kind": "payment_failed", "amount_minor": 500_00}
        await call_ok(client, "record_billing", events=[failed | {"occurred_at": "2026-05-20T12:00:00Z"}])
        default = await contract_component(client, cid, "2026-06-01")
        monkeypatch.setenv("REVOPS_CS_HEALTH_CONTRACT_PER_FAILED_PAYMENT", "10")
        monkeypatch.setenv("REVOPS_CS_HEALTH_CONTRACT_OVERDUE_PENALTY", "30")
        health_settings.cache_clear()
        configured = await contract_component(client, cid, "2026-06-01")
    # One failed payment, renewal date passed: 100 − 25 − 50 by default, 100 − 10 − 30 configured.
    assert (default["score"], default["explanation"]) == (25.0, "100 − 25·1 − 50 (renewal date passed)")
    assert (configured["score"], configured["explanation"]) == (60.0, "100 − 10·1 − 30 (renewal date passed)")
    assert configured["inputs"]["per_failed_payment"] == 10.0
    assert configured["inputs"]["overdue_penalty"] == 30.0


# --------------------------------------------------------------------------- 5. one portfolio for health


async def test_overview_and_report_average_the_same_clients(cs_server):
    async with connect(cs_server) as client:
        a, b, gone = [await register(client, n) for n in ("A", "B", "Gone")]
        await call_ok(
            client, "update_client_info", client_id=gone, stage="churned", reason="Moved to a rival"
        )
    # Stored snapshots with known scores (no tool records a chosen score): 80 and 65; the churned 10.
    with cs_server.runtime.db.session(write=True) as s:
        for cid, score, band in ((a, 80.0, "good"), (b, 65.0, "at_risk"), (gone, 10.0, "critical")):
            s.add(
                CsHealthSnapshot(
                    client_id=cid,
                    as_of=date(2026, 3, 1),
                    score=score,
                    band=band,
                    components="{}",
                    weights="{}",
                    inputs_hash="x",
                )
            )
    async with connect(cs_server) as client:
        overview = await call_ok(client, "get_cs_metrics_overview", as_of="2026-03-02")
        report = await call_ok(client, "generate_health_report", as_of="2026-03-02")
    assert overview["health"] == {"clients_scored": 2, "average": 72.5, "by_band": {"at_risk": 1, "good": 1}}
    assert (report["scored"], report["average_score"]) == (2, 72.5)


# --------------------------------------------------------------------------- 6. plan start


async def test_a_plan_needs_a_start_when_no_contract_start_is_recorded(cs_server):
    steps = [{"name": "Kick-off", "offset_days": 2}]
    async with connect(cs_server) as client:
        await call_ok(client, "save_onboarding_template", template="std", milestones=steps)
        bare = await register(client, "Bare")
        dated = await register(client, "Dated", contract_start="2026-03-01")
        refused = await call_error(client, "create_onboarding_plan", template="std", client_id=bare)
        given = await call_ok(
            client, "create_onboarding_plan", template="std", client_id=bare, start_date="2026-04-01"
        )
        from_contract = await call_ok(client, "create_onboarding_plan", template="std", client_id=dated)
    assert (refused["code"], refused["field"]) == ("validation_error", "start_date")
    assert "contract start" in refused["message"]
    assert (given["start_date"], given["milestones"][0]["due_date"]) == ("2026-04-01", "2026-04-03")
    assert (from_contract["start_date"], from_contract["milestones"][0]["due_date"]) == (
        "2026-03-01",
        "2026-03-03",
    )
    with cs_server.runtime.db.session() as s:
        assert s.exec(select(CsClient.contract_start).where(CsClient.id == bare)).one() is None
