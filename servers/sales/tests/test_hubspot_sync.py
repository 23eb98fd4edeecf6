"""HubSpot sync through the protocol against the in-memory fake (every request spec-validated).

Counts asserted here are computed from the records each test put into the fake or the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import respx
from hubspot_fake import PRIVATE_TOKEN, Failure, HubSpotFake, bench_sync
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import VENDOR_FAILURES, call_error, call_ok, connect, count_rows, override_vendor
from revops_core.vault import Vault
from revops_sales.models.deals import SalesDeal
from revops_sales.models.sync import SalesSyncCursor, SalesSyncLink, SalesSyncRun, SalesSyncSetting

pytestmark = pytest.mark.anyio
MAX_ATTEMPTS = 2


@pytest.fixture
def settings(make_settings):
    # One process-wide breaker store: a high floor keeps one test's failures from refusing the next's calls.
    return make_settings(http_max_attempts=MAX_ATTEMPTS, breaker_min_calls=100_000)


@pytest.fixture
def hs(sales_server, settings) -> dict[str, Any]:
    Vault(sales_server.runtime.db, settings).set("hubspot", "default", {"access_token": PRIVATE_TOKEN})
    clock = FakeClock()
    override_vendor(sales_server, "hubspot", clock=clock)
    return {
        "server": sales_server,
        "db": sales_server.runtime.db,
        "fake": HubSpotFake(page_size=2),
        "clock": clock,
    }


async def sync(env: dict[str, Any], ok: bool = True, **args: Any) -> dict[str, Any]:
    with respx.mock() as mock:
        env["fake"].mount(mock)
        async with connect(env["server"]) as client:
            result = await (call_ok if ok else call_error)(client, "sync_crm", **args)
    assert env["fake"].violations == []
    return result


def rows(db: Any, model: Any, *where: Any) -> list[Any]:
    with db.session() as s:
        return list(s.exec(select(model).where(*where)).all())


async def test_first_sync_brings_companies_contacts_deals_pipelines_and_owners(hs):
    fake: HubSpotFake = hs["fake"]
    fake.add_owner("77", "rep@acme.test")
    acme = fake.add("companies", {"name": "Acme", "domain": "acme.test", "numberofemployees": "120"})
    fake.add("companies", {"name": "Globex", "domain": "www.globex.test"})
    fake.add("contacts", {"email": "Ana@Acme.test", "firstname": "Ana", "jobtitle": "CFO"}, companies=[acme])
    fake.add(
        "deals",
        {"dealname": "Acme renewal", "amount": "1500.50", "deal_currency_code": "EUR",
         "closedate": "2026-04-30T00:00:00.000Z",
         "hubspot_owner_id": "77", "pipeline": "default", "dealstage": "contractsent"},
        companies=[acme],
    )  # fmt: skip
    fake.add("deals", {"dealname": "No amount", "pipeline": "default", "dealstage": "contractsent"})

    result = await sync(hs)

    assert (result["created"], result["skipped"], result["status"]) == (4, 1, "ok")
    assert result["errors"] == [f"deals {max(fake.objects['deals'])}: the deal has no amount"]
    db = hs["db"]
    companies = {c.name: c for c in rows(db, CoreCompany)}
    assert (companies["Acme"].domain, companies["Acme"].employees) == ("acme.test", 120)
    assert companies["Globex"].domain == "globex.test"
    [ana] = rows(db, CoreContact)
    assert (ana.email, ana.first_name, ana.title, ana.company_id) == (
        "ana@acme.test",
        "Ana",
        "CFO",
        companies["Acme"].id,
    )
    [deal] = rows(db, SalesDeal)
    assert (deal.name, deal.amount_minor, deal.currency, str(deal.close_date)) == (
        "Acme renewal",
        150050,
        "EUR",
        "2026-04-30",
    )
    assert (deal.owner, deal.company_id) == ("rep@acme.test", companies["Acme"].id)
    async with connect(hs["server"]) as client:
        pipelines = await call_ok(client, "list_pipelines")
    [pipeline] = pipelines["result"]
    assert pipeline["name"] == "Sales Pipeline"
    assert [(s["name"], s["probability_pct"], s["kind"]) for s in pipeline["stages"]] == [
        ("Appointment Scheduled", 20, "open"), ("Contract Sent", 80, "open"),
        ("Closed Won", 100, "won"), ("Closed Lost", 0, "lost"),
    ]  # fmt: skip
    assert deal.stage_id == pipeline["stages"][1]["id"]
    # Pushing found nothing new: every local row came from HubSpot.
    assert fake.calls["batch_create:companies"] == fake.calls["batch_create:contacts"] == 0


async def test_a_sync_failing_on_page_3_resumes_at_its_cursor_without_duplicates(hs):
    fake: HubSpotFake = hs["fake"]
    for i in range(7):  # 2 per page: pages of 2, 2, 2, 1
        fake.add("contacts", {"email": f"c{i}@acme.test", "firstname": f"C{i}"})
    fake.failures.append(Failure("search:contacts", first_call=3, status=500))

    failed = await sync(hs, ok=False, objects=["contacts"])

    db = hs["db"]
    assert failed["code"] == "integration_unavailable"
    assert count_rows(db, CoreContact) == 4  # pages 1 and 2 committed, page 3 not
    [cursor] = rows(db, SalesSyncCursor, SalesSyncCursor.stream == "contacts")
    assert (cursor.after, cursor.since, cursor.pages) == ("4", None, 2)
    [run] = rows(db, SalesSyncRun)
    assert (run.status, run.error_code, run.created, run.pages) == ("failed", "integration_unavailable", 4, 2)

    fake.failures.clear()
    searches_before = fake.calls["search:contacts"]
    resumed = await sync(hs, objects=["contacts"])

    assert (resumed["created"], resumed["pulled"]) == (3, 3)  # only pages 3 and 4
    assert fake.calls["search:contacts"] - searches_before == 2
    assert count_rows(db, CoreContact) == 7
    assert sorted(c.email for c in rows(db, CoreContact)) == [f"c{i}@acme.test" for i in range(7)]
    assert count_rows(db, SalesSyncLink, SalesSyncLink.object == "contacts") == 7

    again = await sync(
        hs, objects=["contacts"]
    )  # nothing changed: the boundary record is read, not re-applied
    assert (again["created"], again["updated"], count_rows(db, CoreContact)) == (0, 0, 7)


FAILURES = pytest.mark.parametrize(
    ("status", "code"), list(VENDOR_FAILURES.values()), ids=list(VENDOR_FAILURES)
)


@FAILURES
async def test_each_vendor_failure_on_page_2_keeps_page_1_and_its_cursor_only(hs, status, code):
    fake: HubSpotFake = hs["fake"]
    for i in range(3):
        fake.add("contacts", {"email": f"c{i}@acme.test"})
    fake.failures.append(Failure("search:contacts", first_call=2, status=status))

    failed = await sync(hs, ok=False, objects=["contacts"])

    db = hs["db"]
    assert failed["code"] == code
    assert PRIVATE_TOKEN not in str(failed)
    assert 2 <= fake.calls["search:contacts"] <= 1 + MAX_ATTEMPTS
    assert count_rows(db, CoreContact) == 2
    [cursor] = rows(db, SalesSyncCursor)
    assert (cursor.after, cursor.pages) == ("2", 1)
    assert [r.status for r in rows(db, SalesSyncRun)] == ["failed"]


@pytest.mark.parametrize(
    "body",
    [
        {"results": 3}, {"total": 1}, {"results": [{"id": "1", "properties": 7}]},
        {"results": [], "paging": {"next": {"after": 9}}},
    ],
    ids=["results-not-a-list", "no-results", "properties-not-an-object", "after-not-text"],
)  # fmt: skip
async def test_a_wrong_json_shape_is_malformed_and_writes_nothing(hs, body):
    import httpx

    fake: HubSpotFake = hs["fake"]
    fake.add("contacts", {"email": "a@acme.test"})
    with respx.mock() as mock:
        mock.post("https://api.hubapi.com/crm/v3/objects/contacts/search").mock(
            return_value=httpx.Response(200, json=body)
        )
        async with connect(hs["server"]) as client:
            failed = await call_error(client, "sync_crm", objects=["contacts"])
    assert failed["code"] == VENDOR_FAILURES["malformed"][1]
    assert count_rows(hs["db"], CoreContact) == 0
    assert count_rows(hs["db"], SalesSyncCursor) == 0


async def test_429_retry_after_is_waited_out(hs):
    fake: HubSpotFake = hs["fake"]
    fake.add("contacts", {"email": "a@acme.test"})
    fake.failures.append(Failure("search:contacts", first_call=1, status=429, times=1, retry_after="7"))
    result = await sync(hs, objects=["contacts"])
    assert result["created"] == 1
    assert 7.0 in hs["clock"].sleeps


async def test_without_credentials_the_error_names_the_vault_command(sales_server):
    async with connect(sales_server) as client:
        failed = await call_error(client, "sync_crm")
    assert failed["code"] == "configuration_error"
    assert "revops vault set hubspot access_token=<private app access token>" in failed["hint"]
    assert count_rows(sales_server.runtime.db, SalesSyncRun) == 0


async def test_local_changes_are_pushed_and_archives_go_both_ways(hs):
    fake: HubSpotFake = hs["fake"]
    acme = fake.add("companies", {"name": "Acme", "domain": "acme.test"})
    ana = fake.add("contacts", {"email": "ana@acme.test", "firstname": "Ana"}, companies=[acme])
    bob = fake.add("contacts", {"email": "bob@acme.test", "firstname": "Bob"})
    await sync(hs, objects=["companies", "contacts"])
    db = hs["db"]
    local = {c.email: c.id for c in rows(db, CoreContact)}
    async with connect(hs["server"]) as client:
        new = await call_ok(client, "create_company", name="Initech", domain="initech.test")
        await call_ok(
            client, "create_contact", email="cy@initech.test", company_id=new["id"], first_name="Cy"
        )
        await call_ok(client, "update_contact", contact_id=local["ana@acme.test"], title="CFO")
        plan = await call_ok(client, "archive_records", entity="contact", ids=[local["bob@acme.test"]])
        await call_ok(
            client, "archive_records", entity="contact", ids=[local["bob@acme.test"]], confirm=plan["plan_id"]
        )
    fake.archive("companies", acme)  # archived at HubSpot meanwhile

    result = await sync(hs, objects=["companies", "contacts"])

    assert (
        result["pushed_created"],
        result["pushed_updated"],
        result["pushed_archived"],
        result["archived"],
    ) == (2, 1, 1, 1)
    assert fake.objects["contacts"][ana]["properties"]["jobtitle"] == "CFO"
    assert fake.objects["contacts"][bob]["archived"] is True
    [initech] = [c for c in fake.live("companies") if c["properties"]["name"] == "Initech"]
    [cy] = [c for c in fake.live("contacts") if c["properties"]["email"] == "cy@initech.test"]
    assert fake.associations[("contacts", "companies")][cy["id"]] == [initech["id"]]
    assert [c.name for c in rows(db, CoreCompany, CoreCompany.deleted_at.is_(None))] == ["Initech"]

    quiet = await sync(hs, objects=["companies", "contacts"])  # our own pushes come back unchanged
    assert (quiet["created"], quiet["updated"], quiet["pushed_created"], quiet["pushed_updated"]) == (
        0,
        0,
        0,
        0,
    )


async def test_a_local_company_change_moves_the_association_at_hubspot(hs):
    fake: HubSpotFake = hs["fake"]
    acme = fake.add("companies", {"name": "Acme", "domain": "acme.test"})
    globex = fake.add("companies", {"name": "Globex", "domain": "globex.test"})
    ana = fake.add("contacts", {"email": "ana@acme.test"}, companies=[acme])
    await sync(hs, objects=["companies", "contacts"])
    db = hs["db"]
    local = {c.name: c.id for c in rows(db, CoreCompany)}
    [contact] = rows(db, CoreContact)
    async with connect(hs["server"]) as client:
        await call_ok(client, "update_contact", contact_id=contact.id, company_id=local["Globex"])

    moved = await sync(hs, objects=["companies", "contacts"])
    quiet = await sync(hs, objects=["companies", "contacts"])

    assert fake.associations[("contacts", "companies")][ana] == [globex]
    assert (moved["pushed_updated"], quiet["pushed_updated"], quiet["updated"]) == (1, 0, 0)
    [after] = rows(db, CoreContact)
    assert after.company_id == local["Globex"]


async def _conflict(hs: dict[str, Any], **configure: Any) -> tuple[dict[str, Any], Any]:
    fake: HubSpotFake = hs["fake"]
    rid = fake.add("companies", {"name": "Acme", "industry": "Retail"})
    await sync(hs, objects=["companies"])
    [company] = rows(hs["db"], CoreCompany)
    async with connect(hs["server"]) as client:
        if configure:
            await call_ok(client, "configure_sync", object="companies", **configure)
        await call_ok(client, "update_company", company_id=company.id, industry="Banking")
    fake.change("companies", rid, industry="Media")
    result = await sync(hs, objects=["companies"])
    [after] = rows(hs["db"], CoreCompany)
    return result, (after.industry, fake.objects["companies"][rid]["properties"]["industry"])


async def test_conflict_vendor_wins_by_default(hs):
    result, sides = await _conflict(hs)
    assert (result["conflicts"], sides) == (1, ("Media", "Media"))


async def test_conflict_local_wins_per_field_pushes_ours(hs):
    result, sides = await _conflict(hs, fields=[{"field": "industry", "policy": "local_wins"}])
    assert (result["conflicts"], result["pushed_updated"], sides) == (1, 1, ("Banking", "Banking"))


async def test_conflict_newest_wins_takes_the_later_change(hs):
    # The fake's clock is in March 2026; the local edit happens now (later): ours is newest.
    result, sides = await _conflict(hs, conflict_policy="newest_wins")
    assert (result["conflicts"], sides) == (1, ("Banking", "Banking"))


async def test_field_mapping_is_validated_and_applied(hs):
    fake: HubSpotFake = hs["fake"]
    fake.add("companies", {"name": "Acme", "industry": "Retail", "custom_sector": "Fintech"})
    db = hs["db"]
    async with connect(hs["server"]) as client:
        bad = await call_error(
            client, "configure_sync", object="companies", fields=[{"field": "name", "property": None}]
        )
        bad_prop = await call_error(
            client,
            "configure_sync",
            object="companies",
            fields=[{"field": "industry", "property": "Bad-Name"}],
        )
        unknown = await call_error(
            client,
            "configure_sync",
            object="contacts",
            fields=[{"field": "industry", "policy": "local_wins"}],
        )
        assert count_rows(db, SalesSyncSetting) == 0  # refused changes store nothing
        stored = await call_ok(
            client, "configure_sync", object="companies",
            fields=[
                {"field": "industry", "property": "custom_sector"},
                {"field": "employees", "property": None},
            ],
        )  # fmt: skip
    assert (bad["code"], bad["field"], bad_prop["field"]) == ("validation_error", "field_map", "field_map")
    assert (unknown["code"], unknown["field"]) == ("validation_error", "field_policies")
    assert stored["field_map"]["industry"] == "custom_sector"
    assert stored["field_map"]["employees"] is None
    await sync(hs, objects=["companies"])
    [company] = rows(db, CoreCompany)
    assert company.industry == "Fintech"


async def test_status_reports_cursors_runs_and_links(hs):
    fake: HubSpotFake = hs["fake"]
    for i in range(3):
        fake.add("contacts", {"email": f"c{i}@acme.test"})
    fake.failures.append(Failure("search:contacts", first_call=2, status=500))
    await sync(hs, ok=False, objects=["contacts"])
    fake.failures.clear()
    await sync(hs, objects=["contacts"])
    async with connect(hs["server"]) as client:
        status = await call_ok(client, "get_sync_status")
    assert status["last_run"]["status"] == "ok"
    assert status["last_run"]["created"] == 1
    assert status["last_error"]["error_code"] == "integration_unavailable"
    assert status["last_success_at"] == status["last_run"]["finished_at"]
    assert {c["stream"]: c["after"] for c in status["cursors"]} == {
        "contacts": None,
        "contacts:archived": None,
    }
    assert status["links"] == [{"object": "contacts", "linked": 3, "archived": 0}]
    assert [s["object"] for s in status["settings"]] == ["companies", "contacts", "deals"]


async def test_notes_arrive_on_their_deal_or_contact_as_plain_text(hs):
    from revops_sales.models.deal_work import SalesNote

    fake: HubSpotFake = hs["fake"]
    fake.add_owner("77", "rep@acme.test")
    ana = fake.add("contacts", {"email": "ana@acme.test"})
    deal = fake.add(
        "deals", {"dealname": "D", "amount": "10", "pipeline": "default", "dealstage": "contractsent"}
    )
    on_deal = fake.add(
        "notes",
        {"hs_note_body": "<p>Call went <b>well</b></p><p>Next: pricing &amp; terms</p>",
         "hs_timestamp": "2026-03-02T10:00:00.000Z", "hubspot_owner_id": "77"},
        to={"deals": [deal], "contacts": [ana]},
    )  # fmt: skip
    fake.add(
        "notes", {"hs_note_body": "Intro", "hs_timestamp": "2026-03-03T10:00:00.000Z"}, to={"contacts": [ana]}
    )
    fake.add("notes", {"hs_note_body": "Orphan", "hs_timestamp": "2026-03-03T10:00:00.000Z"})

    first = await sync(hs)
    fake.change("notes", on_deal, hs_note_body="Call went well")
    second = await sync(hs, objects=["notes"])

    db = hs["db"]
    [local_deal] = rows(db, SalesDeal)
    [local_ana] = rows(db, CoreContact)
    got = {(n.deal_id, n.contact_id, n.body, n.author, n.created_at.isoformat()) for n in rows(db, SalesNote)}
    assert got == {
        (local_deal.id, None, "Call went well", "rep@acme.test", "2026-03-02T10:00:00+00:00"),
        (None, local_ana.id, "Intro", "hubspot", "2026-03-03T10:00:00+00:00"),
    }
    assert first["errors"] == [
        f"notes {max(fake.objects['notes'])}: not on a synced deal, contact or company"
    ]
    assert (second["created"], second["updated"]) == (0, 1)


async def test_tasks_arrive_on_their_deal_and_complete_when_hubspot_completes_them(hs):
    from revops_sales.models.deal_work import SalesTask

    fake: HubSpotFake = hs["fake"]
    fake.add_owner("77", "rep@acme.test")
    deal = fake.add(
        "deals", {"dealname": "D", "amount": "10", "pipeline": "default", "dealstage": "contractsent"}
    )
    call = fake.add(
        "tasks",
        {"hs_task_subject": "Call CFO", "hs_timestamp": "2026-03-10T15:00:00.000Z",
         "hs_task_status": "NOT_STARTED", "hubspot_owner_id": "77"},
        to={"deals": [deal]},
    )  # fmt: skip
    fake.add("tasks", {"hs_task_subject": "Loose end", "hs_task_status": "NOT_STARTED"})

    first = await sync(hs)
    fake.change("tasks", call, hs_task_status="COMPLETED", hs_task_subject="Call CFO again")
    second = await sync(hs, objects=["tasks"])

    [local_deal] = rows(hs["db"], SalesDeal)
    [task] = rows(hs["db"], SalesTask)
    assert (task.deal_id, task.title, str(task.due_date), task.owner) == (
        local_deal.id, "Call CFO again", "2026-03-10", "rep@acme.test",
    )  # fmt: skip
    assert task.done_at == datetime.fromisoformat(
        fake.objects["tasks"][call]["updatedAt"].replace("Z", "+00:00")
    )
    assert first["errors"] == [f"tasks {max(fake.objects['tasks'])}: not on a synced deal"]
    assert (second["created"], second["updated"]) == (0, 1)


async def test_bench_helper_reports_records_per_second():
    rate = await bench_sync(5)
    assert rate > 0
