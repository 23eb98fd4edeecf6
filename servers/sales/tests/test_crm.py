"""Companies, contacts and bulk archive through the protocol, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from revops_core import guards
from revops_core.models import CoreCompany
from revops_core.testing import call_error, call_ok, connect, count_rows

pytestmark = pytest.mark.anyio


async def test_companies_and_contacts_are_unique_searchable_and_paged(sales_server) -> None:
    async with connect(sales_server) as client:
        acme = await call_ok(
            client, "create_company", name="Acme 100% Corp", domain="www.Acme.com", industry="Retail"
        )
        duplicate = await call_error(client, "create_company", name="Other", domain="acme.com")
        for i in range(3):
            await call_ok(client, "create_company", name=f"Globex {i}", domain=f"globex{i}.io")
        await call_ok(client, "create_contact", email="Ana@Acme.com", company_id=acme["id"], first_name="Ana")
        again = await call_error(client, "create_contact", email="ana@acme.com")
        literal = await call_ok(client, "search_companies", text="100%")
        wildcard = await call_ok(client, "search_companies", text="%")
        first = await call_ok(client, "search_companies", text="globex", limit=2)
        second = await call_ok(
            client, "search_companies", text="globex", limit=2, cursor=first["next_cursor"]
        )
        detail = await call_ok(client, "get_company", company_id=acme["id"])
        found = await call_ok(client, "search_contacts", text="ana")
    assert acme["domain"] == "acme.com"
    assert (duplicate["code"], duplicate["field"]) == ("conflict", "domain")
    assert (again["code"], again["field"]) == ("conflict", "email")
    assert [c["name"] for c in literal["items"]] == ["Acme 100% Corp"]
    assert [c["name"] for c in wildcard["items"]] == ["Acme 100% Corp"]  # % is literal, not "anything"
    assert [c["name"] for c in first["items"] + second["items"]] == ["Globex 0", "Globex 1", "Globex 2"]
    assert first["total"] == 3
    assert [c["email"] for c in detail["contacts"]] == ["ana@acme.com"]
    assert detail["open_deals"] == 0
    assert [c["email"] for c in found["items"]] == ["ana@acme.com"]


async def _companies(client, n: int) -> list[int]:
    return [(await call_ok(client, "create_company", name=f"C{i}"))["id"] for i in range(n)]


async def test_archive_is_plan_then_confirm_and_refuses_replays_stale_and_foreign_plans(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        ids = await _companies(client, 3)
        planned = await call_ok(client, "archive_records", entity="company", ids=ids)
        assert planned["status"] == "planned"
        assert planned["plan"]["affected_count"] == 3
        assert count_rows(db, CoreCompany, CoreCompany.deleted_at.is_(None)) == 3  # the plan changed nothing
        foreign = await call_error(
            client, "archive_records", entity="company", ids=ids[:2], confirm=planned["plan_id"]
        )
        done = await call_ok(client, "archive_records", entity="company", ids=ids, confirm=planned["plan_id"])
        listed = await call_ok(client, "search_companies")
        await call_ok(client, "restore_records", entity="company", ids=ids)
        # The records are live again, but the plan was used: it cannot archive them a second time.
        replay = await call_error(
            client, "archive_records", entity="company", ids=ids, confirm=planned["plan_id"]
        )
        fresh = await call_ok(client, "archive_records", entity="company", ids=ids)
        await call_ok(client, "archive_records", entity="company", ids=ids, confirm=fresh["plan_id"])
        more = await _companies(client, 2)
        stale_plan = await call_ok(client, "archive_records", entity="company", ids=more)
        await call_ok(client, "update_company", company_id=more[0], name="Renamed")
        stale = await call_error(
            client, "archive_records", entity="company", ids=more, confirm=stale_plan["plan_id"]
        )
        restored = await call_ok(client, "restore_records", entity="company", ids=ids)
        twice = await call_error(client, "restore_records", entity="company", ids=ids)
    assert done["status"] == "done"
    assert done["result"] == {"entity": "company", "ids": sorted(ids), "archived": True}
    assert foreign["code"] == "confirmation_required"
    assert replay["code"] == "confirmation_required"
    assert listed["total"] == 0
    assert stale["code"] == "stale_plan"
    assert restored["archived"] is False
    assert (twice["code"], twice["field"]) == ("validation_error", "ids")
    assert count_rows(db, CoreCompany, CoreCompany.deleted_at.is_(None)) == 5


async def test_a_bulk_archive_above_the_threshold_needs_a_person(make_settings) -> None:
    from revops_sales.server import create_server

    server = create_server(make_settings(bulk_approval_threshold=2))
    db = server.runtime.db
    try:
        async with connect(server) as client:
            ids = await _companies(client, 3)
            planned = await call_ok(client, "archive_records", entity="company", ids=ids)
            refused = await call_error(
                client, "archive_records", entity="company", ids=ids, confirm=planned["plan_id"]
            )
            live_after_refusal = count_rows(db, CoreCompany, CoreCompany.deleted_at.is_(None))
            guards.approve(db, planned["plan_id"], "person:lead")  # what `revops approve` does
            done = await call_ok(
                client, "archive_records", entity="company", ids=ids, confirm=planned["plan_id"]
            )
    finally:
        db.dispose()
    assert planned["plan"]["requires_approval"] is True
    assert refused["code"] == "approval_required"
    assert live_after_refusal == 3
    assert done["status"] == "done"
    assert count_rows(db, CoreCompany, CoreCompany.deleted_at.is_(None)) == 0


async def test_archive_refusals_change_nothing_and_leads_can_be_archived(sales_server) -> None:
    from revops_sales.models.leads import SalesLead

    db = sales_server.runtime.db
    with db.session(write=True) as session:
        leads = [SalesLead(name=f"Lead {i}", email=f"l{i}@x.io") for i in range(2)]
        session.add_all(leads)
        session.flush()
        lead_ids = sorted(int(lead.id or 0) for lead in leads)
    live = SalesLead.deleted_at.is_(None)  # type: ignore[union-attr]
    async with connect(sales_server) as client:
        ids = await _companies(client, 2)
        missing = await call_error(client, "archive_records", entity="company", ids=ids, confirm="pl_nope")
        planned = await call_ok(client, "archive_records", entity="lead", ids=lead_ids)
        foreign = await call_error(
            client, "archive_records", entity="lead", ids=lead_ids[:1], confirm=planned["plan_id"]
        )
        with db.session(write=True) as session:  # the lead changes after the plan was made
            changed = session.get(SalesLead, lead_ids[0])
            assert changed is not None
            changed.name = "Renamed"
            changed.updated_at = changed.updated_at + timedelta(seconds=1)
            session.add(changed)
        stale = await call_error(
            client, "archive_records", entity="lead", ids=lead_ids, confirm=planned["plan_id"]
        )
        after_refusals = (
            count_rows(db, CoreCompany, CoreCompany.deleted_at.is_(None)),
            count_rows(db, SalesLead, live),
        )
        fresh = await call_ok(client, "archive_records", entity="lead", ids=lead_ids)
        done = await call_ok(client, "archive_records", entity="lead", ids=lead_ids, confirm=fresh["plan_id"])
        archived_leads = count_rows(db, SalesLead, live)
        await call_ok(client, "restore_records", entity="lead", ids=lead_ids)
    assert (missing["code"], missing["field"]) == ("not_found", "confirm")
    assert foreign["code"] == "confirmation_required"
    assert stale["code"] == "stale_plan"
    assert after_refusals == (2, 2)
    assert done["result"] == {"entity": "lead", "ids": lead_ids, "archived": True}
    assert archived_leads == 0
    assert count_rows(db, SalesLead, live) == 2
