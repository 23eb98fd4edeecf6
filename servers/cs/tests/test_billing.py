"""Billing events and MRR changes recorded through the tool, and what they feed (issue 7, finding 2):
monthly MRR, NRR/GRR and the health contract component — no direct table writes in these tests."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.models.retention import CsBillingEvent

pytestmark = pytest.mark.anyio


async def _client(client, name: str) -> int:
    return int((await call_ok(client, "register_client", name=name, tier="smb"))["client_id"])


async def test_mrr_changes_become_monthly_mrr_and_nrr(cs_server) -> None:
    async with connect(cs_server) as client:
        grows, leaves = await _client(client, "Grows"), await _client(client, "Leaves")
        events = [
            {
                "client_id": grows,
                "kind": "mrr_change",
                "amount_minor": 1_000_00,
                "occurred_at": "2026-01-15T09:00:00Z",
            },
            {
                "client_id": grows,
                "kind": "mrr_change",
                "amount_minor": 1_500_00,
                "occurred_at": "2026-03-10T09:00:00Z",
            },
            {
                "client_id": leaves,
                "kind": "mrr_change",
                "amount_minor": 500_00,
                "occurred_at": "2026-01-02T09:00:00Z",
            },
            {
                "client_id": leaves,
                "kind": "mrr_change",
                "amount_minor": 0,
                "occurred_at": "2026-02-20T09:00:00Z",
            },
            {
                "client_id": 999_999,
                "kind": "refund",
                "amount_minor": 1,
                "occurred_at": "2026-01-02T09:00:00Z",
            },
        ]
        report = await call_ok(client, "record_billing", events=events)
        retention = await call_ok(
            client, "analyze_revenue_retention", start_month="2026-01-01", end_month="2026-04-01"
        )
    assert (report["rows"], report["recorded"]) == (5, 4)
    assert report["errors"] == [{"row": 5, "field": "client_id", "message": "No client with id 999999."}]
    with cs_server.runtime.db.session() as s:
        months = {(m.client_id, m.month): m.mrr_minor for m in s.exec(select(CsMrrMonth)).all()}
    # Carried forward month by month; at 0 MRR there is no row (churned).
    assert months[(grows, date(2026, 1, 1))] == months[(grows, date(2026, 2, 1))] == 1_000_00
    assert months[(grows, date(2026, 3, 1))] == months[(grows, date(2026, 4, 1))] == 1_500_00
    assert months[(leaves, date(2026, 1, 1))] == 500_00
    assert (leaves, date(2026, 2, 1)) not in months
    # NRR over Jan → Apr: (1 500 + 0) / (1 000 + 500); GRR: (1 000 + 0) / 1 500 (expansion not counted).
    assert retention["accounts"] == 2
    assert retention["churned_accounts"] == 1
    assert retention["nrr"] == pytest.approx(1_500_00 / 1_500_00)
    assert retention["grr"] == pytest.approx(1_000_00 / 1_500_00)


async def test_csv_rows_are_reported_one_by_one_and_a_dry_run_stores_nothing(cs_server) -> None:
    text = (
        "client_id,kind,amount_minor,currency,occurred_at\n"
        "{id},payment_succeeded,9900,USD,2026-02-01T10:00:00+00:00\n"
        "{id},payment_bounced,9900,USD,2026-02-01T10:00:00+00:00\n"
        "{id},payment_failed,9900,USD,2026-02-01T10:00:00\n"
        "{id},payment_failed,-5,USD,2026-02-01T10:00:00Z\n"
    )
    async with connect(cs_server) as client:
        cid = await _client(client, "Csv")
        dry = await call_ok(client, "record_billing", csv=text.format(id=cid), dry_run=True)
        stored_after_dry_run = count_rows(cs_server.runtime.db, CsBillingEvent)
        done = await call_ok(client, "record_billing", csv=text.format(id=cid))
        no_header = await call_ok(client, "record_billing", csv="id,kind\n1,refund\n")
        neither = await call_error(client, "record_billing")
    assert [(e["row"], e["field"]) for e in dry["errors"]] == [
        (3, "kind"),
        (4, "occurred_at"),
        (5, "amount_minor"),
    ]
    assert (dry["recorded"], dry["dry_run"], stored_after_dry_run) == (0, True, 0)
    assert (done["rows"], done["recorded"]) == (4, 1)
    assert count_rows(cs_server.runtime.db, CsBillingEvent) == 1
    assert no_header["errors"][0]["row"] == 1
    assert (neither["code"], neither["field"]) == ("validation_error", "events")


async def test_a_recorded_failed_payment_reaches_the_health_contract_component(cs_server) -> None:
    async with connect(cs_server) as client:
        cid = await _client(client, "Late payer")
        await call_ok(
            client,
            "record_usage_events",
            events=[
                {"client_id": cid, "user_ref": "ana", "event": "login", "occurred_at": "2026-03-30T08:00:00Z"}
            ],
        )
        before = (await call_ok(client, "calculate_health_score", client_id=cid, as_of="2026-03-31"))[
            "client"
        ]
        await call_ok(
            client,
            "record_billing",
            events=[
                {
                    "client_id": cid,
                    "kind": "payment_failed",
                    "amount_minor": 9900,
                    "occurred_at": "2026-03-01T00:00:00Z",
                }
            ],
        )
        after = (await call_ok(client, "calculate_health_score", client_id=cid, as_of="2026-03-31"))["client"]
    assert "contract" in before["missing"]  # no billing data: not a perfect 100
    contract = next(c for c in after["components"] if c["name"] == "contract")
    assert contract["score"] == 75  # 100 − 25 · 1 failed payment in 90 days
