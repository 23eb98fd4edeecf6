"""Leads through the protocol on both backends: create/update/get/search with keyset paging, and
conversion to contact + company + deal (source and campaign copied, idempotent on replay)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.models.activities import SalesActivity
from revops_sales.models.deals import SalesDeal
from revops_sales.models.leads import SalesLead

pytestmark = pytest.mark.anyio


async def test_leads_are_created_updated_searched_and_paged(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        ana = await call_ok(
            client,
            "save_lead",
            name="Ana Ruiz",
            email="Ana@Acme.com",
            company_name="Acme 100%",
            company_domain="www.Acme.com",
            country="de",
            source="webinar",
            campaign="Q4 launch",
        )
        others = [
            await call_ok(client, "save_lead", name=f"Bo {i}", source="ads", campaign="Spring")
            for i in range(3)
        ]
        updated = await call_ok(client, "save_lead", lead_id=ana["id"], status="working", owner="alice")
        got = await call_ok(client, "get_lead", lead_id=ana["id"])
        literal = await call_ok(client, "search_leads", text="100%")
        wildcard = await call_ok(client, "search_leads", text="%")
        by_source = await call_ok(client, "search_leads", source="ads", limit=2)
        rest = await call_ok(client, "search_leads", source="ads", limit=2, cursor=by_source["next_cursor"])
        working = await call_ok(client, "search_leads", status="working", campaign="Q4 launch")
    assert (ana["email"], ana["company_domain"], ana["country"]) == ("ana@acme.com", "acme.com", "DE")
    assert (ana["source"], ana["campaign"], ana["status"]) == ("webinar", "Q4 launch", "new")
    assert (updated["status"], updated["owner"]) == ("working", "alice")
    assert got["fit_score"] is None
    assert got["score_detail"] == {}
    assert got["routing"] == []
    assert [i["id"] for i in literal["items"]] == [ana["id"]]
    assert [i["id"] for i in wildcard["items"]] == [ana["id"]]  # % is literal: only "100%" has one
    newest_first = [o["id"] for o in reversed(others)]
    assert [i["id"] for i in by_source["items"] + rest["items"]] == newest_first
    assert by_source["total"] == 3
    assert [i["id"] for i in working["items"]] == [ana["id"]]
    assert count_rows(db, SalesLead) == 4


async def test_lead_bad_input_names_the_field_and_changes_nothing(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        lead = await call_ok(client, "save_lead", name="Cy")
        no_name = await call_error(client, "save_lead", email="x@y.io")
        bad_email = await call_error(client, "save_lead", name="Z", email="not-an-email")
        converted = await call_error(client, "save_lead", lead_id=lead["id"], status="converted")
        nothing = await call_error(client, "save_lead", lead_id=lead["id"])
        missing = await call_error(client, "get_lead", lead_id=lead["id"] + 50)
        after = await call_ok(client, "get_lead", lead_id=lead["id"])
    assert (no_name["code"], no_name["field"]) == ("validation_error", "name")
    assert bad_email["code"] == "validation_error"
    assert "email" in bad_email["message"]
    assert converted["code"] == "validation_error"
    assert "status" in converted["message"]
    assert nothing["field"] == "lead_id"
    assert (missing["code"], missing["field"]) == ("not_found", "lead_id")
    assert after["status"] == "new"
    assert count_rows(db, SalesLead) == 1


async def _pipeline(client) -> dict:
    return await call_ok(client, "create_pipeline", name="New business")


async def test_conversion_creates_or_links_and_replays_without_a_second_deal(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        first_open = next(s["id"] for s in pipeline["stages"] if s["kind"] == "open")
        known = await call_ok(client, "create_contact", email="bob@globex.io", first_name="Bob")
        globex = await call_ok(client, "create_company", name="Globex", domain="globex.io")
        ana = await call_ok(
            client,
            "save_lead",
            name="Ana Maria Ruiz",
            email="ana@acme.com",
            company_name="Acme",
            company_domain="acme.com",
            title="CFO",
            industry="Retail",
            source="webinar",
            campaign="Q4 launch",
            owner="alice",
        )
        bob = await call_ok(
            client,
            "save_lead",
            name="Bob",
            email="BOB@globex.io",
            company_name="Globex",
            company_domain="globex.io",
        )
        done = await call_ok(
            client, "convert_lead", lead_id=ana["id"], pipeline_id=pipeline["id"], amount_minor=5_000_00
        )
        replay = await call_ok(
            client, "convert_lead", lead_id=ana["id"], pipeline_id=pipeline["id"], amount_minor=5_000_00
        )
        linked = await call_ok(
            client,
            "convert_lead",
            lead_id=bob["id"],
            pipeline_id=pipeline["id"],
            amount_minor=100,
            deal_name="Globex",
        )
        frozen = await call_error(client, "save_lead", lead_id=ana["id"], title="CEO")
        lead_after = await call_ok(client, "get_lead", lead_id=ana["id"])
    assert (done["contact_created"], done["company_created"], done["replayed"]) == (True, True, False)
    assert (done["stage_id"], done["source"], done["campaign"]) == (first_open, "webinar", "Q4 launch")
    assert replay == {**done, "replayed": True, "contact_created": False, "company_created": False}
    assert (linked["contact_id"], linked["contact_created"]) == (known["id"], False)
    assert (linked["company_id"], linked["company_created"]) == (globex["id"], False)
    assert frozen["code"] == "conflict"
    assert lead_after["status"] == "converted"
    assert (lead_after["converted_contact_id"], lead_after["converted_deal_id"]) == (
        done["contact_id"],
        done["deal_id"],
    )
    with db.session() as s:
        deal = s.get(SalesDeal, done["deal_id"])
        contact = s.get(CoreContact, done["contact_id"])
        company = s.get(CoreCompany, done["company_id"])
        activity = s.exec(select(SalesActivity).where(SalesActivity.deal_id == done["deal_id"])).one()
        known_contact = s.get(CoreContact, known["id"])
    assert deal is not None
    assert contact is not None
    assert company is not None
    assert (deal.name, deal.amount_minor, deal.owner, deal.company_id) == (
        "Acme",
        5_000_00,
        "alice",
        company.id,
    )
    assert (deal.source, deal.campaign, deal.stage_id) == ("webinar", "Q4 launch", first_open)
    assert (contact.email, contact.first_name, contact.last_name, contact.title) == (
        "ana@acme.com",
        "Ana",
        "Maria Ruiz",
        "CFO",
    )
    assert (company.name, company.domain, company.industry) == ("Acme", "acme.com", "Retail")
    assert (activity.kind, activity.contact_id, activity.source_table) == ("note", contact.id, "sales_lead")
    assert known_contact is not None
    assert known_contact.company_id == globex["id"]
    assert count_rows(db, SalesDeal) == 2  # the replay made no second deal
    assert count_rows(db, CoreContact) == 2


async def test_conversion_refusals_change_nothing(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        pipeline = await _pipeline(client)
        no_email = await call_ok(client, "save_lead", name="Nobody")
        no_company = await call_ok(client, "save_lead", name="Solo", email="solo@x.io")
        e1 = await call_error(
            client, "convert_lead", lead_id=no_email["id"], pipeline_id=pipeline["id"], amount_minor=1
        )
        e2 = await call_error(
            client, "convert_lead", lead_id=no_company["id"], pipeline_id=pipeline["id"], amount_minor=1
        )
        e3 = await call_error(
            client, "convert_lead", lead_id=no_company["id"], pipeline_id=pipeline["id"] + 9, amount_minor=1
        )
        ok = await call_ok(
            client,
            "convert_lead",
            lead_id=no_company["id"],
            pipeline_id=pipeline["id"],
            amount_minor=1,
            create_company=False,
        )
    assert (e1["code"], e1["field"]) == ("validation_error", "lead_id")
    assert (e2["code"], e2["field"]) == ("validation_error", "create_company")
    assert (e3["code"], e3["field"]) == ("not_found", "pipeline_id")
    assert ok["company_id"] is None
    assert ok["contact_created"] is True
    assert count_rows(db, SalesDeal) == 1
    assert count_rows(db, CoreContact) == 1
    assert count_rows(db, CoreCompany) == 0
    assert count_rows(db, SalesActivity) == 1
