"""CRM data through the protocol on SQLite and PostgreSQL: search filters, custom properties,
associations, CSV import, duplicates and merge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from revops_core.audit import AuditEntry
from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_sales.models.activities import SalesActivity
from revops_sales.models.crm import SalesAssociation, SalesCustomProperty, SalesCustomValue, SalesMerge
from revops_sales.models.deals import SalesDeal
from revops_sales.models.leads import SalesLead
from revops_sales.services import associations

pytestmark = pytest.mark.anyio


def _set_created(server, model, record_id: int, when: datetime) -> None:
    with server.runtime.db.session(write=True) as session:
        session.execute(update(model).where(col(model.id) == record_id).values(created_at=when))


def _add(server, row) -> int:
    with server.runtime.db.session(write=True) as session:
        session.add(row)
        session.flush()
        return int(row.id)


async def test_search_filters_by_industry_created_days_and_property_with_keyset_paging(sales_server) -> None:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    old, recent = today - timedelta(days=40), today - timedelta(days=5)
    async with connect(sales_server) as client:
        ids = [
            (await call_ok(client, "create_company", name=f"Shop {i}", industry=industry))["id"]
            for i, industry in enumerate(["Retail", "Retail", "Retail", "Software", "Retail"])
        ]
        owned = await call_ok(client, "create_company", name="Owned", industry="Retail", owner="Rita")
        reowned = await call_ok(client, "update_company", company_id=ids[2], owner="rita")
        await call_ok(client, "update_company", company_id=ids[3], owner="Sam")
        by_owner = await call_ok(client, "search_companies", owner="RITA")
        archive_plan = await call_ok(client, "archive_records", entity="company", ids=[owned["id"]])
        await call_ok(
            client, "archive_records", entity="company", ids=[owned["id"]], confirm=archive_plan["plan_id"]
        )
        for company_id, when in zip(ids, [old, recent, recent, recent, today], strict=True):
            _set_created(sales_server, CoreCompany, company_id, when)
        await call_ok(
            client,
            "set_custom_property",
            action="define",
            entity="company",
            name="tier",
            value_type="enum",
            options=["Gold", "Silver"],
        )
        for company_id, tier in zip(ids, ["gold", "Gold", "Silver", "Gold", "Gold"], strict=True):
            await call_ok(
                client,
                "set_custom_property",
                action="set",
                entity="company",
                name="tier",
                record_id=company_id,
                value=tier,
            )
        window = {
            "created_from": (today - timedelta(days=10)).date().isoformat(),
            "created_to": (today - timedelta(days=1)).date().isoformat(),
        }
        recent_retail = await call_ok(client, "search_companies", industry="retail", **window)
        gold_retail = await call_ok(
            client,
            "search_companies",
            industry="Retail",
            property_name="tier",
            property_value="GOLD",
            limit=2,
        )
        gold_next = await call_ok(
            client,
            "search_companies",
            industry="Retail",
            property_name="tier",
            property_value="GOLD",
            limit=2,
            cursor=gold_retail["next_cursor"],
        )
        half = await call_error(client, "search_companies", property_name="tier")
        unknown = await call_error(client, "search_companies", property_name="size", property_value="1")
        bad_enum = await call_error(client, "search_companies", property_name="tier", property_value="Bronze")
        backwards = await call_error(
            client, "search_companies", created_from=window["created_to"], created_to=window["created_from"]
        )

        acme = ids[0]
        await call_ok(
            client,
            "set_custom_property",
            action="define",
            entity="contact",
            name="score",
            value_type="number",
        )
        people = []
        for i, score in enumerate(["10", "10.00", "9.5"]):
            person = await call_ok(client, "create_contact", email=f"p{i}@shop.com", company_id=acme)
            people.append(person["id"])
            await call_ok(
                client,
                "set_custom_property",
                action="set",
                entity="contact",
                name="score",
                record_id=person["id"],
                value=score,
            )
        await call_ok(client, "create_contact", email="elsewhere@x.com", company_id=ids[1])
        _set_created(sales_server, CoreContact, people[0], old)
        ten = await call_ok(
            client, "search_contacts", company_id=acme, property_name="score", property_value="1e1"
        )
        ten_recent = await call_ok(
            client,
            "search_contacts",
            property_name="score",
            property_value="10",
            created_from=(today - timedelta(days=1)).date().isoformat(),
        )
        not_number = await call_error(client, "search_contacts", property_name="score", property_value="ten")
    assert (owned["owner"], reowned["owner"]) == ("Rita", "rita")
    assert [(c["id"], c["owner"]) for c in by_owner["items"]] == [(ids[2], "rita"), (owned["id"], "Rita")]
    assert [c["id"] for c in recent_retail["items"]] == [ids[1], ids[2]]
    # Gold retail companies: ids 0, 1 and 4 ("gold" was stored as the option "Gold"), two per page.
    assert [c["id"] for c in gold_retail["items"]] == [ids[0], ids[1]]
    assert [c["id"] for c in gold_next["items"]] == [ids[4]]
    assert gold_retail["total"] == 3
    assert gold_next["next_cursor"] is None
    assert gold_retail["items"][0]["properties"] == [{"name": "tier", "type": "enum", "value": "Gold"}]
    assert (half["code"], half["field"]) == ("validation_error", "property_value")
    assert (unknown["code"], unknown["field"]) == ("not_found", "property_name")
    assert "tier" in unknown["hint"]
    assert (bad_enum["code"], bad_enum["field"]) == ("validation_error", "property_value")
    assert (backwards["code"], backwards["field"]) == ("validation_error", "created_to")
    assert [c["id"] for c in ten["items"]] == people[:2]  # 10 == 10.00 == 1e1; 9.5 is not
    assert ten["items"][1]["properties"] == [{"name": "score", "type": "number", "value": "10"}]
    assert [c["id"] for c in ten_recent["items"]] == [people[1]]
    assert (not_number["code"], not_number["field"]) == ("validation_error", "property_value")


async def test_custom_values_are_validated_by_type_and_a_bad_one_changes_nothing(sales_server) -> None:
    db = sales_server.runtime.db
    lead_id = _add(sales_server, SalesLead(name="Lee", email="lee@lead.io"))
    async with connect(sales_server) as client:
        company = await call_ok(client, "create_company", name="Acme")
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        deal = await call_ok(client, "create_deal", pipeline_id=pipeline["id"], name="Big", amount_minor=100)
        for entity, name, kind in [
            ("company", "renewal_on", "date"),
            ("company", "seats", "number"),
            ("company", "notes", "text"),
            ("deal", "region", "enum"),
            ("lead", "channel", "text"),
        ]:
            extra = {"options": ["EMEA", "APAC"]} if kind == "enum" else {}
            await call_ok(
                client,
                "set_custom_property",
                action="define",
                entity=entity,
                name=name,
                value_type=kind,
                **extra,
            )
        again = await call_error(
            client, "set_custom_property", action="define", entity="company", name="seats", value_type="text"
        )
        # The same name on another object is a different property.
        await call_ok(
            client, "set_custom_property", action="define", entity="contact", name="seats", value_type="text"
        )
        no_options = await call_error(
            client, "set_custom_property", action="define", entity="deal", name="kind", value_type="enum"
        )
        stray_options = await call_error(
            client,
            "set_custom_property",
            action="define",
            entity="deal",
            name="kind",
            value_type="text",
            options=["a"],
        )
        bad_name = await call_error(
            client, "set_custom_property", action="define", entity="deal", name="Bad Name", value_type="text"
        )
        properties_before = count_rows(db, SalesCustomProperty)

        def setter(entity: str, name: str, record_id: int, value: str):
            return {
                "action": "set",
                "entity": entity,
                "name": name,
                "record_id": record_id,
                "value": value,
            }

        await call_ok(
            client, "set_custom_property", **setter("company", "renewal_on", company["id"], "2027-03-01")
        )
        seats = await call_ok(
            client, "set_custom_property", **setter("company", "seats", company["id"], "0120.50")
        )
        await call_ok(client, "set_custom_property", **setter("deal", "region", deal["id"], "emea"))
        lead = await call_ok(client, "set_custom_property", **setter("lead", "channel", lead_id, "webinar"))
        values_before = count_rows(db, SalesCustomValue)
        bad_date = await call_error(
            client, "set_custom_property", **setter("company", "renewal_on", company["id"], "2027-02-30")
        )
        bad_number = await call_error(
            client, "set_custom_property", **setter("company", "seats", company["id"], "12x")
        )
        bad_enum = await call_error(
            client, "set_custom_property", **setter("deal", "region", deal["id"], "LATAM")
        )
        no_record = await call_error(
            client, "set_custom_property", **setter("company", "seats", company["id"] + 99, "1")
        )
        no_value = await call_error(
            client,
            "set_custom_property",
            action="set",
            entity="company",
            name="seats",
            record_id=company["id"],
        )
        after_refusals = count_rows(db, SalesCustomValue)
        detail = await call_ok(client, "get_company", company_id=company["id"])
        cleared = await call_ok(
            client,
            "set_custom_property",
            action="clear",
            entity="company",
            name="seats",
            record_id=company["id"],
        )
    assert (again["code"], again["field"]) == ("conflict", "name")
    assert (no_options["code"], no_options["field"]) == ("validation_error", "options")
    assert (stray_options["code"], stray_options["field"]) == ("validation_error", "options")
    assert (bad_name["code"], bad_name["field"]) == ("validation_error", "name")
    assert properties_before == 6
    assert seats["values"] == [
        {"name": "renewal_on", "type": "date", "value": "2027-03-01"},
        {"name": "seats", "type": "number", "value": "120.5"},
    ]
    assert lead["values"] == [{"name": "channel", "type": "text", "value": "webinar"}]
    for refused, named in [(bad_date, "renewal_on"), (bad_number, "seats"), (bad_enum, "region")]:
        assert (refused["code"], refused["field"]) == ("validation_error", "value")
        assert named in refused["message"]
    assert (no_record["code"], no_record["field"]) == ("not_found", "record_id")
    assert (no_value["code"], no_value["field"]) == ("validation_error", "value")
    assert values_before == after_refusals == 4
    assert [p["value"] for p in detail["properties"]] == ["2027-03-01", "120.5"]
    assert cleared["values"] == [{"name": "renewal_on", "type": "date", "value": "2027-03-01"}]
    with db.session() as session:
        stored = session.exec(select(SalesCustomValue.value).order_by(col(SalesCustomValue.id))).all()
    assert stored == ["2027-03-01", "EMEA", "webinar"]


async def test_associations_link_contacts_deals_and_parent_companies(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        group = await call_ok(client, "create_company", name="Group")
        sub = await call_ok(client, "create_company", name="Sub")
        leaf = await call_ok(client, "create_company", name="Leaf")
        ana = await call_ok(client, "create_contact", email="ana@group.com")
        bob = await call_ok(client, "create_contact", email="bob@group.com", company_id=sub["id"])
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        deal = await call_ok(client, "create_deal", pipeline_id=pipeline["id"], name="Big", amount_minor=100)

        async def link(**kw):
            return await call_ok(client, "update_associations", **kw)

        await link(action="add", kind="contact_company", contact_id=ana["id"], company_id=group["id"])
        await link(
            action="add", kind="deal_contact", deal_id=deal["id"], contact_id=ana["id"], role="champion"
        )
        await link(action="add", kind="deal_contact", deal_id=deal["id"], contact_id=bob["id"], role="user")
        promoted = await link(
            action="add", kind="deal_contact", deal_id=deal["id"], contact_id=bob["id"], role="decision_maker"
        )
        await link(action="add", kind="company_parent", company_id=sub["id"], parent_company_id=group["id"])
        await link(action="add", kind="company_parent", company_id=leaf["id"], parent_company_id=sub["id"])
        links_before = count_rows(db, SalesAssociation)
        cycle = await call_error(
            client,
            "update_associations",
            action="add",
            kind="company_parent",
            company_id=group["id"],
            parent_company_id=leaf["id"],
        )
        no_role = await call_error(
            client,
            "update_associations",
            action="add",
            kind="deal_contact",
            deal_id=deal["id"],
            contact_id=ana["id"],
        )
        not_linked = await call_error(
            client,
            "update_associations",
            action="remove",
            kind="contact_company",
            contact_id=bob["id"],
            company_id=group["id"],
        )
        missing_deal = await call_error(
            client,
            "update_associations",
            action="add",
            kind="deal_contact",
            deal_id=deal["id"] + 9,
            contact_id=ana["id"],
            role="user",
        )
        links_after_refusals = count_rows(db, SalesAssociation)
        group_detail = await call_ok(client, "get_company", company_id=group["id"])
        sub_detail = await call_ok(client, "get_company", company_id=sub["id"])
        with db.session() as session:
            on_deal = associations.contacts_of_deal(session, "default", deal["id"])
        await link(action="remove", kind="deal_contact", deal_id=deal["id"], contact_id=ana["id"])
        await link(action="remove", kind="contact_company", contact_id=bob["id"], company_id=sub["id"])
        with db.session() as session:
            on_deal_after = associations.contacts_of_deal(session, "default", deal["id"])
        bob_row = await call_ok(client, "search_contacts", text="bob")
    assert promoted["role"] == "decision_maker"
    assert promoted["linked"] is True
    assert links_before == links_after_refusals == 4  # two deal contacts, two parents
    assert (cycle["code"], cycle["field"]) == ("validation_error", "parent_company_id")
    assert (no_role["code"], no_role["field"]) == ("validation_error", "role")
    assert (not_linked["code"], not_linked["field"]) == ("validation_error", "company_id")
    assert (missing_deal["code"], missing_deal["field"]) == ("not_found", "deal_id")
    assert [c["email"] for c in group_detail["contacts"]] == ["ana@group.com"]
    assert group_detail["parent"] is None
    assert group_detail["children"] == [{"id": sub["id"], "name": "Sub"}]
    assert sub_detail["parent"] == {"id": group["id"], "name": "Group"}
    assert sub_detail["children"] == [{"id": leaf["id"], "name": "Leaf"}]
    assert [(c.email, c.role) for c in on_deal] == [
        ("ana@group.com", "champion"),
        ("bob@group.com", "decision_maker"),
    ]
    assert [(c.email, c.role) for c in on_deal_after] == [("bob@group.com", "decision_maker")]
    assert bob_row["items"][0]["company_id"] is None


COMPANIES_CSV = """name,domain,industry,employees
Acme,acme.com,Retail,50
Globex,globex.io,,12
,nameless.com,,
Initech,not a domain,,
Umbrella,umbrella.com,,many
Acme Again,WWW.ACME.COM,,
Hooli,hooli.com,Tech,7,extra
Old Co,old.com,Retail,5
"""


async def test_csv_import_keeps_good_rows_reports_bad_ones_and_applies_the_duplicate_policy(
    sales_server,
) -> None:
    db = sales_server.runtime.db
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async with connect(sales_server) as client:
        old = await call_ok(client, "create_company", name="Old Co", domain="old.com", industry="Legacy")
        dry = await call_ok(client, "import_crm_csv", entity="company", csv_text=COMPANIES_CSV, dry_run=True)
        after_dry_run = count_rows(db, CoreCompany)
        result = await client.call_tool(
            "import_crm_csv", {"entity": "company", "csv_text": COMPANIES_CSV}, progress_callback=on_progress
        )
        report = result.structured_content
        with db.session() as session:
            old_industry = session.get(CoreCompany, old["id"]).industry  # type: ignore[union-attr]
        updated = await call_ok(
            client,
            "import_crm_csv",
            entity="company",
            csv_text="name,domain,industry\nOld Co,old.com,Retail\nNew Co,new.com,\n",
            on_duplicate="update",
        )
        contacts = await call_ok(
            client,
            "import_crm_csv",
            entity="contact",
            csv_text="email,first_name,company_domain\nAna@Acme.com,Ana,acme.com\nbob@x.com,Bob,nowhere.com\n"
            "ana@acme.com,Again,\nnot-an-email,,\n",
        )
        bad_header = await call_error(
            client, "import_crm_csv", entity="contact", csv_text="mail,first_name\na@b.co,A\n"
        )
        with db.session() as session:
            ana = session.exec(select(CoreContact).where(CoreContact.email == "ana@acme.com")).one()
            acme = session.exec(select(CoreCompany).where(CoreCompany.domain == "acme.com")).one()
            old_after = session.get(CoreCompany, old["id"])
    # Lines: 2 Acme, 3 Globex ok; 4 no name, 5 bad domain, 6 bad employees, 7 repeats Acme's domain,
    # 8 an extra value; 9 Old Co exists (skipped by default).
    assert [e["line"] for e in report["errors"]] == [4, 5, 6, 7, 8]
    assert [e["column"] for e in report["errors"]] == ["name", "domain", "employees", "domain", "row"]
    assert [r["line"] for r in report["created"]] == [2, 3]
    assert report["skipped"] == [{"line": 9, "id": old["id"]}]
    assert report["rows"] == 8
    assert report["updated"] == []
    assert dry["dry_run"] is True
    assert [r["id"] for r in dry["created"]] == [None, None]
    assert after_dry_run == 1
    assert count_rows(db, CoreCompany) == 1 + 2 + 1  # old, Acme, Globex, then New Co
    assert old_industry == "Legacy"  # skip left it alone
    assert updated["updated"] == [{"line": 2, "id": old["id"]}]
    assert old_after is not None
    assert old_after.industry == "Retail"
    assert [r["line"] for r in contacts["created"]] == [2]
    assert [(e["line"], e["column"]) for e in contacts["errors"]] == [
        (3, "company_domain"),
        (4, "email"),
        (5, "email"),
    ]
    assert ana.company_id == acme.id
    assert ana.first_name == "Ana"
    assert (bad_header["code"], bad_header["field"]) == ("validation_error", "csv_text")
    assert progress[-1] == (7, 7)  # the 7 rows read_csv parsed (line 8 was refused while parsing)


async def test_duplicates_are_found_by_domain_name_email_and_name_at_company(sales_server) -> None:
    # Other servers may store a domain or e-mail un-normalised: seed those rows directly.
    a = _add(sales_server, CoreCompany(name="Acme Inc", domain="acme.com"))
    b = _add(sales_server, CoreCompany(name="Acme Holdings", domain="https://www.Acme.com/about"))
    c = _add(sales_server, CoreCompany(name="ACME, inc."))
    _add(sales_server, CoreCompany(name="Globex", domain="globex.io"))
    archived = _add(sales_server, CoreCompany(name="Acme", deleted_at=datetime.now(UTC)))
    p1 = _add(sales_server, CoreContact(email="bob@x.com", first_name="Bob", last_name="Lee", company_id=a))
    p2 = _add(sales_server, CoreContact(email="Bob@X.com"))
    p3 = _add(
        sales_server, CoreContact(email="robert@x.com", first_name="bob", last_name="LEE", company_id=a)
    )
    _add(sales_server, CoreContact(email="bob@y.com", first_name="Bob", last_name="Lee", company_id=c))
    async with connect(sales_server) as client:
        companies = await call_ok(client, "find_duplicates", entity="company")
        people = await call_ok(client, "find_duplicates", entity="contact", top=1)
    assert [(g["reason"], g["key"], [r["id"] for r in g["records"]]) for g in companies["groups"]] == [
        ("domain", "acme.com", [a, b]),
        ("name", "acme", [a, c]),
    ]
    assert archived not in {r["id"] for g in companies["groups"] for r in g["records"]}
    assert companies["total_groups"] == 2
    assert [(g["reason"], [r["id"] for r in g["records"]]) for g in people["groups"]] == [("email", [p1, p2])]
    assert people["total_groups"] == 2  # and bob lee at company a: p1, p3
    assert p3


async def _merge_setup(client, server) -> dict[str, int]:
    keep = (await call_ok(client, "create_company", name="Acme", domain="acme.com"))["id"]
    lose = (await call_ok(client, "create_company", name="Acme Inc", owner="Sam"))["id"]
    parent = (await call_ok(client, "create_company", name="Group"))["id"]
    other = (await call_ok(client, "create_company", name="Other"))["id"]
    for email in ("a@acme.com", "b@acme.com"):
        await call_ok(client, "create_contact", email=email, company_id=lose)
    await call_ok(client, "create_contact", email="c@acme.com", company_id=keep)
    pipeline = await call_ok(client, "create_pipeline", name="New business")
    deal = await call_ok(
        client, "create_deal", pipeline_id=pipeline["id"], name="Big", amount_minor=100, company_id=lose
    )
    await call_ok(
        client,
        "update_associations",
        action="add",
        kind="company_parent",
        company_id=lose,
        parent_company_id=parent,
    )
    await call_ok(
        client, "set_custom_property", action="define", entity="company", name="tier", value_type="text"
    )
    await call_ok(
        client, "set_custom_property", action="define", entity="company", name="region", value_type="text"
    )
    for record_id, name, value in [
        (keep, "tier", "gold"),
        (lose, "tier", "silver"),
        (lose, "region", "EMEA"),
    ]:
        await call_ok(
            client,
            "set_custom_property",
            action="set",
            entity="company",
            name=name,
            record_id=record_id,
            value=value,
        )
    with server.runtime.db.session(write=True) as session:
        session.add(SalesActivity(kind="call", company_id=lose, occurred_at=datetime.now(UTC)))
        session.add(SalesActivity(kind="note", company_id=keep, occurred_at=datetime.now(UTC)))
        session.add(SalesLead(name="Lee", converted_company_id=lose))
    return {"keep": keep, "lose": lose, "parent": parent, "other": other, "deal": deal["id"]}


async def test_merging_companies_moves_every_link_and_refuses_stale_replayed_and_foreign_plans(
    sales_server,
) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        ids = await _merge_setup(client, sales_server)
        args = {"entity": "company", "survivor_id": ids["keep"], "loser_id": ids["lose"]}
        itself = await call_error(
            client, "merge_records", entity="company", survivor_id=ids["keep"], loser_id=ids["keep"]
        )
        stale_plan = await call_ok(client, "merge_records", **args)
        await call_ok(client, "create_contact", email="d@acme.com", company_id=ids["lose"])
        stale = await call_error(client, "merge_records", **args, confirm=stale_plan["plan_id"])
        planned = await call_ok(client, "merge_records", **args)
        foreign = await call_error(
            client,
            "merge_records",
            entity="company",
            survivor_id=ids["keep"],
            loser_id=ids["other"],
            confirm=planned["plan_id"],
        )
        no_plan = await call_error(client, "merge_records", **args, confirm="pl_not_a_plan")
        live_after_refusals = count_rows(db, CoreCompany, col(CoreCompany.deleted_at).is_(None))
        on_loser_after_refusals = count_rows(db, CoreContact, CoreContact.company_id == ids["lose"])
        done = await call_ok(client, "merge_records", **args, confirm=planned["plan_id"])
        kept = await call_ok(client, "get_company", company_id=ids["keep"])
        gone = await call_error(client, "get_company", company_id=ids["lose"])
        await call_ok(client, "restore_records", entity="company", ids=[ids["lose"]])
        replay = await call_error(client, "merge_records", **args, confirm=planned["plan_id"])
    assert (itself["code"], itself["field"]) == ("validation_error", "loser_id")
    # 3 contacts + 1 deal + 1 activity + 1 lead + 1 parent link + 2 custom values, and the loser.
    assert planned["plan"]["affected_count"] == 10
    assert stale["code"] == "stale_plan"  # a contact was added to the loser after that plan
    assert foreign["code"] == "confirmation_required"
    assert (no_plan["code"], no_plan["field"]) == ("not_found", "confirm")
    assert (live_after_refusals, on_loser_after_refusals) == (4, 3)
    assert replay["code"] == "confirmation_required"  # a plan runs once, even with the loser restored
    moved = done["result"]["moved"]
    assert moved == {
        "core_contact.company_id": 3,
        "sales_activity.company_id": 1,
        "sales_association": 1,
        "sales_company_owner": 1,  # the survivor had no owner: it takes the loser's
        "sales_custom_value": 1,  # region moves; the survivor keeps its own tier
        "sales_deal.company_id": 1,
        "sales_lead.converted_company_id": 1,
    }
    assert [c["email"] for c in kept["contacts"]] == ["a@acme.com", "b@acme.com", "c@acme.com", "d@acme.com"]
    assert kept["open_deals"] == 1
    assert kept["owner"] == "Sam"
    assert kept["parent"] == {"id": ids["parent"], "name": "Group"}
    assert [(p["name"], p["value"]) for p in kept["properties"]] == [("region", "EMEA"), ("tier", "gold")]
    assert gone["code"] == "not_found"
    with db.session() as session:
        deal = session.get(SalesDeal, ids["deal"])
        activities = session.exec(select(SalesActivity.company_id)).all()
        merge = session.exec(select(SalesMerge)).one()
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "sales.merge_records")).all()
        loser_values = session.exec(
            select(SalesCustomValue).where(SalesCustomValue.record_id == ids["lose"])
        ).all()
    assert deal is not None
    assert deal.company_id == ids["keep"]
    assert sorted(activities) == [ids["keep"], ids["keep"]]
    assert (merge.survivor_id, merge.loser_id, json.loads(merge.moved)) == (ids["keep"], ids["lose"], moved)
    assert len(audit) == 1
    assert audit[0].target == f"core_company:{ids['keep']}"
    assert json.loads(audit[0].details)["merge_id"] == merge.id
    assert loser_values == []


async def test_merging_contacts_moves_deal_roles_without_duplicating_them(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        keep = (await call_ok(client, "create_contact", email="ana@acme.com"))["id"]
        lose = (await call_ok(client, "create_contact", email="ana.b@acme.com"))["id"]
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        shared = await call_ok(client, "create_deal", pipeline_id=pipeline["id"], name="A", amount_minor=1)
        only_loser = await call_ok(
            client, "create_deal", pipeline_id=pipeline["id"], name="B", amount_minor=1
        )
        for deal_id, contact_id, role in [
            (shared["id"], keep, "champion"),
            (shared["id"], lose, "user"),
            (only_loser["id"], lose, "decision_maker"),
        ]:
            await call_ok(
                client,
                "update_associations",
                action="add",
                kind="deal_contact",
                deal_id=deal_id,
                contact_id=contact_id,
                role=role,
            )
        _add(sales_server, SalesActivity(kind="email_sent", contact_id=lose, occurred_at=datetime.now(UTC)))
        planned = await call_ok(client, "merge_records", entity="contact", survivor_id=keep, loser_id=lose)
        done = await call_ok(
            client,
            "merge_records",
            entity="contact",
            survivor_id=keep,
            loser_id=lose,
            confirm=planned["plan_id"],
        )
        with db.session() as session:
            on_shared = associations.contacts_of_deal(session, "default", shared["id"])
            on_other = associations.contacts_of_deal(session, "default", only_loser["id"])
        found = await call_ok(client, "search_contacts", text="ana")
    assert planned["plan"]["affected_count"] == 4  # 2 deal links + 1 activity + the loser
    assert done["result"]["moved"] == {"sales_activity.contact_id": 1, "sales_association": 1}
    assert [(c.contact_id, c.role) for c in on_shared] == [(keep, "champion")]
    assert [(c.contact_id, c.role) for c in on_other] == [(keep, "decision_maker")]
    assert [c["id"] for c in found["items"]] == [keep]
    assert count_rows(db, SalesAssociation) == 2


async def test_merging_a_company_into_its_own_child_keeps_the_hierarchy(sales_server) -> None:
    async with connect(sales_server) as client:
        group, loser, survivor, sibling = [
            (await call_ok(client, "create_company", name=name))["id"] for name in ("G", "L", "S", "B")
        ]
        for child, parent in [(loser, group), (survivor, loser), (sibling, loser)]:
            await call_ok(
                client,
                "update_associations",
                action="add",
                kind="company_parent",
                company_id=child,
                parent_company_id=parent,
            )
        args = {"entity": "company", "survivor_id": survivor, "loser_id": loser}
        planned = await call_ok(client, "merge_records", **args)
        await call_ok(client, "merge_records", **args, confirm=planned["plan_id"])
        kept = await call_ok(client, "get_company", company_id=survivor)
        top = await call_ok(client, "get_company", company_id=group)
    # S's link to L became a self-link (dropped); S, now parentless, takes L's parent; B moves under S.
    assert kept["parent"] == {"id": group, "name": "G"}
    assert kept["children"] == [{"id": sibling, "name": "B"}]
    assert top["children"] == [{"id": survivor, "name": "S"}]
    assert count_rows(sales_server.runtime.db, SalesAssociation) == 2
