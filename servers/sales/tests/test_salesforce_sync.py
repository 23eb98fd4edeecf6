"""Salesforce sync through the protocol against the in-memory org (every request checked against the
Postman collection or the documented SHAPES, see salesforce_fake). Counts asserted here are computed
from the records each test put into the fake or the database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import respx
from salesforce_fake import INSTANCE, Failure, SalesforceFake
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.models import CoreCompany, CoreContact
from revops_core.testing import VENDOR_FAILURES, call_error, call_ok, connect, count_rows, override_vendor
from revops_core.vault import Vault
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesPipeline, SalesStage
from revops_sales.models.sync import SalesSyncCursor, SalesSyncLink, SalesSyncRun, SalesSyncSetting
from revops_sales.vendors import salesforce

pytestmark = pytest.mark.anyio
MAX_ATTEMPTS = 2
CLIENT_SECRET = "sf-consumer-5ecret"


@pytest.fixture
def settings(make_settings):
    return make_settings(http_max_attempts=MAX_ATTEMPTS, breaker_min_calls=100_000)


def web_server_grant(server: Any, settings: Any) -> None:
    vault = Vault(server.runtime.db, settings)
    vault.set("salesforce", "default", {"client_id": "app-1", "client_secret": CLIENT_SECRET})
    vault.set("salesforce", "oauth", {"refresh_token": "refresh-0"})


@pytest.fixture
def sf(sales_server, settings) -> dict[str, Any]:
    web_server_grant(sales_server, settings)
    clock = FakeClock()
    override_vendor(sales_server, "salesforce", clock=clock)
    return {
        "server": sales_server,
        "db": sales_server.runtime.db,
        "fake": SalesforceFake(page_size=2),
        "clock": clock,
    }


async def sync(env: dict[str, Any], ok: bool = True, tool: str = "sync_crm", **args: Any) -> dict[str, Any]:
    with respx.mock(assert_all_called=False) as mock:
        env["fake"].mount(mock)
        async with connect(env["server"]) as client:
            result = await (call_ok if ok else call_error)(client, tool, vendor="salesforce", **args)
    assert env["fake"].violations == []
    return result


def rows(db: Any, model: Any, *where: Any) -> list[Any]:
    with db.session() as s:
        return list(s.exec(select(model).where(*where)).all())


async def test_first_sync_brings_accounts_contacts_opportunities_stages_and_owners(sf):
    fake: SalesforceFake = sf["fake"]
    rep = fake.add("User", Name="Rita Rep", Email="rita@acme.test")
    acme = fake.add("Account", Name="Acme", Website="https://www.Acme.test/about", NumberOfEmployees=120)
    fake.add("Account", Name="Globex", Website=None, Industry="Energy")
    fake.add("Contact", Email="Ana@Acme.test", FirstName="Ana", LastName="Ant", Title="CFO", AccountId=acme)
    fake.add("Contact", Email=None, LastName="Nomail")
    fake.add(
        "Opportunity", Name="Acme renewal", Amount=1500.5, CloseDate="2026-04-30",
        StageName="Negotiation/Review", OwnerId=rep, AccountId=acme,
    )  # fmt: skip
    fake.add("Opportunity", Name="Odd stage", Amount=10, CloseDate="2026-05-01", StageName="Unknown")

    result = await sync(sf)

    nomail = next(r["Id"] for r in fake.objects["Contact"].values() if r["LastName"] == "Nomail")
    odd = next(r["Id"] for r in fake.objects["Opportunity"].values() if r["Name"] == "Odd stage")
    assert (result["created"], result["skipped"], result["status"]) == (4, 2, "ok")
    assert result["errors"] == [
        f"contacts {nomail}: no Email",
        f"deals {odd}: its pipeline stage is not synced",
    ]
    db = sf["db"]
    companies = {c.name: c for c in rows(db, CoreCompany)}
    assert (companies["Acme"].domain, companies["Acme"].employees) == ("acme.test", 120)
    assert (companies["Globex"].domain, companies["Globex"].industry) == (None, "Energy")
    [ana] = rows(db, CoreContact)
    assert (ana.email, ana.first_name, ana.title, ana.company_id) == (
        "ana@acme.test",
        "Ana",
        "CFO",
        companies["Acme"].id,
    )
    [deal] = rows(db, SalesDeal)
    assert (deal.name, deal.amount_minor, deal.currency, deal.close_date, deal.owner, deal.company_id) == (
        "Acme renewal", 150050, "USD", date(2026, 4, 30), "Rita Rep", companies["Acme"].id,
    )  # fmt: skip
    [pipeline] = rows(db, SalesPipeline)
    stages = rows(db, SalesStage, SalesStage.pipeline_id == pipeline.id)
    assert pipeline.name == "Salesforce"
    assert [(s.name, s.probability_pct, s.kind) for s in sorted(stages, key=lambda s: s.position)] == [
        ("Prospecting", 10, "open"), ("Negotiation/Review", 90, "open"),
        ("Closed Won", 100, "won"), ("Closed Lost", 0, "lost"),
    ]  # fmt: skip
    assert deal.stage_id == next(s.id for s in stages if s.name == "Negotiation/Review")
    # One refresh for the whole run; nothing local was new, so nothing was pushed.
    assert fake.grants == ["refresh_token"]
    assert fake.calls["create:Account"] == fake.calls["create:Contact"] == 0


async def test_a_sync_failing_on_page_3_resumes_at_its_cursor_without_duplicates(sf):
    fake: SalesforceFake = sf["fake"]
    for i in range(7):  # pages of 2, 2, 2, 1
        fake.add("Contact", Email=f"c{i}@acme.test", LastName=f"C{i}")
    fake.failures.append(Failure("query:Contact", first_call=3, status=500))

    failed = await sync(sf, ok=False, objects=["contacts"])

    db = sf["db"]
    assert failed["code"] == "integration_unavailable"
    assert count_rows(db, CoreContact) == 4
    [cursor] = rows(db, SalesSyncCursor, SalesSyncCursor.stream == "contacts")
    fourth = sorted(fake.objects["Contact"].values(), key=lambda r: r["SystemModstamp"])[3]
    assert (cursor.since, cursor.high_water, cursor.pages) == (
        None,
        salesforce.parse_time(fourth["SystemModstamp"]),
        2,
    )
    [run] = rows(db, SalesSyncRun)
    assert (run.vendor, run.status, run.error_code, run.created, run.pages) == (
        "salesforce", "failed", "integration_unavailable", 4, 2,
    )  # fmt: skip

    fake.failures.clear()
    resumed = await sync(sf, objects=["contacts"])

    # Restarted at the 4th record's instant: it is read again (unchanged), then the 3 new ones.
    assert (resumed["pulled"], resumed["unchanged"], resumed["created"]) == (4, 1, 3)
    assert sorted(c.email for c in rows(db, CoreContact)) == [f"c{i}@acme.test" for i in range(7)]
    assert count_rows(db, SalesSyncLink, SalesSyncLink.object == "contacts") == 7
    again = await sync(sf, objects=["contacts"])
    assert (again["created"], again["updated"], again["unchanged"], count_rows(db, CoreContact)) == (
        0,
        0,
        1,
        7,
    )


FAILURES = pytest.mark.parametrize(
    ("status", "code"), list(VENDOR_FAILURES.values()), ids=list(VENDOR_FAILURES)
)


@FAILURES
async def test_each_vendor_failure_on_page_2_keeps_page_1_and_its_cursor_only(sf, status, code):
    fake: SalesforceFake = sf["fake"]
    for i in range(3):
        fake.add("Contact", Email=f"c{i}@acme.test", LastName="X")
    fake.failures.append(Failure("query:Contact", first_call=2, status=status))

    failed = await sync(sf, ok=False, objects=["contacts"])

    db = sf["db"]
    assert failed["code"] == code
    assert CLIENT_SECRET not in str(failed)
    assert count_rows(db, CoreContact) == 2
    [cursor] = rows(db, SalesSyncCursor)
    assert (cursor.stream, cursor.pages, cursor.after is not None) == ("contacts", 1, True)
    assert [r.status for r in rows(db, SalesSyncRun)] == ["failed"]
    # A 401 renews the session once and resends once; nothing else touches the token endpoint.
    assert fake.grants == ["refresh_token"] * (2 if status == 401 else 1)


@pytest.mark.parametrize(
    "body",
    [{"records": 3, "done": True}, {"done": True}, {"records": [{"Name": "no id"}], "done": True},
     {"records": [], "done": False}],
    ids=["records-not-a-list", "no-records", "record-without-id", "not-done-without-next"],
)  # fmt: skip
async def test_a_wrong_json_shape_is_malformed_and_writes_nothing(sf, body):
    fake: SalesforceFake = sf["fake"]
    fake.add("Account", Name="Acme")
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{INSTANCE}/services/data/v{salesforce.API_VERSION}/query/").mock(
            return_value=httpx.Response(200, json=body)
        )
        fake.mount(mock)
        async with connect(sf["server"]) as client:
            failed = await call_error(client, "sync_crm", vendor="salesforce", objects=["companies"])
    assert failed["code"] == VENDOR_FAILURES["malformed"][1]
    assert count_rows(sf["db"], CoreCompany) == 0
    assert count_rows(sf["db"], SalesSyncCursor) == 0


async def test_429_retry_after_is_waited_out(sf):
    fake: SalesforceFake = sf["fake"]
    fake.add("Account", Name="Acme")
    fake.failures.append(Failure("query:Account", first_call=1, status=429, times=1, retry_after="7"))
    result = await sync(sf, objects=["companies"])
    assert result["created"] == 1
    assert 7.0 in sf["clock"].sleeps


async def test_a_session_expiring_mid_sync_is_renewed_exactly_once(sf):
    fake: SalesforceFake = sf["fake"]
    for i in range(5):
        fake.add("Contact", Email=f"c{i}@acme.test", LastName="X")

    def expire_before_page_2(kind: str, n: int) -> None:
        if kind == "query:Contact" and n == 2:
            fake.tokens.clear()  # Salesforce ended the session: the next call gets 401

    fake.on_request = expire_before_page_2
    result = await sync(sf, objects=["contacts"])

    assert (result["created"], count_rows(sf["db"], CoreContact)) == (5, 5)
    assert fake.grants == ["refresh_token", "refresh_token"]  # the first token, then one renewal
    stored = Vault(sf["db"], sf["server"].runtime.settings).get("salesforce", "oauth")
    assert stored["access_token"].reveal() == fake.tokens[-1]
    assert stored["refresh_token"].reveal() == "refresh-0"  # Salesforce did not rotate it: kept


async def test_a_grant_near_its_session_timeout_is_refreshed_once_before_a_401(sf):
    fake: SalesforceFake = sf["fake"]
    for i in range(4):
        fake.add("Contact", Email=f"c{i}@acme.test", LastName="X")

    def age_the_session(kind: str, n: int) -> None:
        if kind == "query:Contact" and n == 1:
            sf["clock"].advance(salesforce.SESSION_SECONDS - 10)  # inside the refresh margin

    fake.on_request = age_the_session
    result = await sync(sf, objects=["contacts"])

    assert (result["created"], fake.grants) == (4, ["refresh_token", "refresh_token"])
    assert fake.calls["query:Contact"] == 2  # no request was refused: the refresh came first


async def test_max_pages_stops_a_stream_early_as_partial_and_the_next_run_goes_on(sf):
    fake: SalesforceFake = sf["fake"]
    for i in range(5):
        fake.add("Contact", Email=f"c{i}@acme.test", LastName="X")

    first = await sync(sf, objects=["contacts"], max_pages=2)
    second = await sync(sf, objects=["contacts"])

    # Two query pages of 2, then the deletions window (one page of its own).
    assert (first["status"], first["created"], first["pages"]) == ("partial", 4, 3)
    # Restarts at the 4th record's instant: it again (unchanged), then the 5th.
    assert (second["status"], second["created"], second["unchanged"]) == ("ok", 1, 1)
    assert count_rows(sf["db"], CoreContact) == 5


async def test_without_credentials_the_error_names_the_vault_entries(sales_server):
    async with connect(sales_server) as client:
        failed = await call_error(client, "sync_crm", vendor="salesforce")
    assert failed["code"] == "configuration_error"
    assert (
        "revops vault set salesforce client_id=<connected app consumer key> client_secret=" in failed["hint"]
    )
    assert "revops vault set salesforce --name oauth refresh_token=<refresh token>" in failed["hint"]
    assert "username=<integration user> private_key=" in failed["hint"]
    assert count_rows(sales_server.runtime.db, SalesSyncRun) == 0


async def test_tasks_and_events_arrive_as_activities_on_their_deal_account_or_contact(sf):
    from revops_sales.models.activities import SalesActivity

    fake: SalesforceFake = sf["fake"]
    rep = fake.add("User", Name="Rita Rep")
    acme = fake.add("Account", Name="Acme")
    ana = fake.add("Contact", Email="ana@acme.test", LastName="Ant", AccountId=acme)
    opp = fake.add("Opportunity", Name="D", Amount=10, CloseDate="2026-05-01", StageName="Prospecting")
    demo = fake.add(
        "Event",
        Subject="Demo",
        StartDateTime="2026-03-05T15:00:00.000+0000",
        OwnerId=rep,
        WhatId=opp,
        WhoId=ana,
    )
    fake.add("Task", Subject="Called CFO", IsClosed=True, TaskSubtype="Call",
             CompletedDateTime="2026-03-04T10:30:00.000+0000", WhatId=acme)  # fmt: skip
    fake.add("Task", Subject="Send pricing", IsClosed=True, TaskSubtype="Email", WhoId=ana)
    fake.add("Task", Subject="Follow up", IsClosed=False, WhatId=opp)  # not a touch yet
    stray = fake.add("Task", Subject="Elsewhere", IsClosed=True, WhatId="001999999999999AAA")

    first = await sync(sf)
    fake.change("Event", demo, Subject="Demo (rescheduled)", StartDateTime="2026-03-06T15:00:00.000+0000")
    second = await sync(sf, objects=["tasks"])

    db = sf["db"]
    [deal] = rows(db, SalesDeal)
    [company] = rows(db, CoreCompany)
    [contact] = rows(db, CoreContact)
    pricing = next(r for r in fake.objects["Task"].values() if r["Subject"] == "Send pricing")
    got = {
        (a.kind, a.subject, a.owner, a.deal_id, a.company_id, a.contact_id, a.occurred_at.isoformat())
        for a in rows(db, SalesActivity)
    }
    assert got == {
        ("meeting", "Demo (rescheduled)", "Rita Rep", deal.id, None, contact.id, "2026-03-06T15:00:00+00:00"),
        ("call", "Called CFO", None, None, company.id, None, "2026-03-04T10:30:00+00:00"),
        ("email_sent", "Send pricing", None, None, None, contact.id,
         salesforce.parse_time(pricing["SystemModstamp"]).isoformat()),
    }  # fmt: skip
    assert first["errors"] == [f"Task {stray}: not on a synced opportunity, account or contact"]
    assert (second["created"], second["updated"], count_rows(db, SalesActivity)) == (0, 1, 3)


async def test_leads_arrive_with_their_status_and_owner_and_deletions_archive_them(sf):
    from revops_sales.models.leads import SalesLead

    fake: SalesforceFake = sf["fake"]
    rep = fake.add("User", Name="Rita Rep")
    new = fake.add("Lead", FirstName="Ana", LastName="Ant", Email="Ana@Acme.test", Company="Acme",
                   Website="https://www.acme.test", Status="Open - Not Contacted",
                   NumberOfEmployees=40)  # fmt: skip
    working = fake.add("Lead", LastName="Bo", Status="Working - Contacted", OwnerId=rep, LeadSource="Web")
    fake.add("Lead", LastName="Cy", Status="Closed - Converted", IsConverted=True)
    nameless = fake.add("Lead", Company="Nobody Inc", Status="Open - Not Contacted")

    first = await sync(sf, objects=["leads"])
    fake.change("Lead", working, Status="Closed - Not Converted")
    sf["clock"].advance(120)  # deletions are read by whole minutes
    fake.delete("Lead", new, at=datetime.fromtimestamp(sf["clock"].time(), UTC))
    second = await sync(sf, objects=["leads"])

    db = sf["db"]
    got = {
        (lead.name, lead.email, lead.company_name, lead.company_domain, lead.employees, lead.source,
         lead.owner, lead.status, lead.deleted_at is not None)
        for lead in rows(db, SalesLead)
    }  # fmt: skip
    assert got == {
        ("Ana Ant", "ana@acme.test", "Acme", "acme.test", 40, None, None, "new", True),
        ("Bo", None, None, None, None, "Web", "Rita Rep", "disqualified", False),
    }
    assert (first["created"], first["unchanged"], first["errors"]) == (2, 1, [f"leads {nameless}: no name"])
    assert (second["updated"], second["archived"], second["created"]) == (1, 1, 0)


async def test_notes_are_refused_for_salesforce_and_nothing_runs(sf):
    failed = await sync(sf, ok=False, objects=["contacts", "notes"])
    assert (failed["code"], failed["field"]) == ("validation_error", "objects")
    assert count_rows(sf["db"], SalesSyncRun) == 0
    assert sum(sf["fake"].calls.values()) == 0


async def test_records_deleted_in_salesforce_are_archived_here(sf):
    fake: SalesforceFake = sf["fake"]
    keep = fake.add("Contact", Email="keep@acme.test", LastName="K")
    gone = fake.add("Contact", Email="gone@acme.test", LastName="G")
    await sync(sf, objects=["contacts"])
    sf["clock"].advance(120)  # Salesforce reads deletions by whole minutes
    fake.delete("Contact", gone, at=datetime.fromtimestamp(sf["clock"].time(), UTC))

    result = await sync(sf, objects=["contacts"])

    db = sf["db"]
    assert result["archived"] == 1
    live = rows(db, CoreContact, CoreContact.deleted_at.is_(None))
    assert [c.email for c in live] == ["keep@acme.test"]
    links = {lnk.vendor_id: lnk.archived_at is not None for lnk in rows(db, SalesSyncLink)}
    assert links == {keep: False, gone: True}


async def test_local_changes_are_pushed_through_sobject_collections(sf):
    fake: SalesforceFake = sf["fake"]
    acme = fake.add("Account", Name="Acme", Website="acme.test")
    ana = fake.add("Contact", Email="ana@acme.test", LastName="Ant", AccountId=acme)
    await sync(sf, objects=["companies", "contacts"])
    db = sf["db"]
    [contact] = rows(db, CoreContact)
    async with connect(sf["server"]) as client:
        new = await call_ok(client, "create_company", name="Initech", domain="initech.test")
        await call_ok(client, "create_contact", email="cy@initech.test", company_id=new["id"], last_name="Cy")
        await call_ok(client, "create_contact", email="nolast@initech.test", first_name="No")
        await call_ok(client, "update_contact", contact_id=contact.id, title="CFO")

    result = await sync(sf, objects=["companies", "contacts"])

    assert (result["pushed_created"], result["pushed_updated"]) == (2, 1)
    assert fake.objects["Contact"][ana]["Title"] == "CFO"
    [initech] = [r for r in fake.objects["Account"].values() if r["Name"] == "Initech"]
    assert initech["Website"] == "initech.test"
    [cy] = [r for r in fake.objects["Contact"].values() if r["Email"] == "cy@initech.test"]
    assert cy["AccountId"] == initech["Id"]
    nolast = next(c.id for c in rows(db, CoreContact) if c.email == "nolast@initech.test")
    assert result["errors"] == [
        f"contacts {nolast}: Salesforce refused it "
        "(REQUIRED_FIELD_MISSING: Required fields are missing: ['LastName'])"
    ]
    assert count_rows(db, SalesSyncLink, SalesSyncLink.object == "contacts") == 2
    quiet = await sync(sf, objects=["companies", "contacts"])  # our pushes come back equal
    assert (quiet["created"], quiet["updated"], quiet["pushed_updated"]) == (0, 0, 0)
    assert (quiet["pushed_created"], len(quiet["errors"])) == (0, 1)  # the refused one, again


async def test_a_local_deal_is_pushed_with_stage_amount_close_date_owner_and_account(sf):
    fake: SalesforceFake = sf["fake"]
    rep = fake.add("User", Name="Rita Rep", Email="rita@acme.test")
    acme = fake.add("Account", Name="Acme")
    await sync(sf)
    db = sf["db"]
    [company] = rows(db, CoreCompany)
    [pipeline] = rows(db, SalesPipeline)
    stage = next(s for s in rows(db, SalesStage) if s.name == "Prospecting")
    async with connect(sf["server"]) as client:
        deal = await call_ok(
            client, "create_deal", pipeline_id=pipeline.id, name="Acme expansion", amount_minor=123450,
            currency="USD", stage_id=stage.id, owner="Rita Rep", close_date="2026-06-30",
            company_id=company.id,
        )  # fmt: skip
        created = await sync(sf, objects=["deals"])
        await call_ok(client, "update_deal", deal_id=deal["id"], amount_minor=200000)
        updated = await sync(sf, objects=["deals"])
    assert (created["pushed_created"], updated["pushed_updated"]) == (1, 1)
    [remote] = fake.objects["Opportunity"].values()
    assert {k: remote[k] for k in ("Name", "Amount", "CloseDate", "StageName", "OwnerId", "AccountId")} == {
        "Name": "Acme expansion", "Amount": 2000.0, "CloseDate": "2026-06-30", "StageName": "Prospecting",
        "OwnerId": rep, "AccountId": acme,
    }  # fmt: skip


async def test_api_usage_at_the_ceiling_stops_early_and_is_reported(sf):
    fake: SalesforceFake = sf["fake"]
    for i in range(5):
        fake.add("Contact", Email=f"c{i}@acme.test", LastName="X")
    fake.api_used = 13_499  # page 1 is call 13 500 of 15 000: exactly 90 %

    result = await sync(sf, objects=["contacts"])

    assert (result["status"], result["created"], result["pages"]) == ("partial", 2, 1)
    assert result["errors"] == [
        "Salesforce API usage is 13500/15000, at or above 90% of the 24 h allowance: "
        "stopped early; run again later."
    ]
    status = await sync(sf, tool="get_sync_status")
    assert (status["api_used"], status["api_limit"]) == (13_500, 15_000)
    assert (status["vendor"], status["last_run"]["status"]) == ("salesforce", "partial")
    assert status["links"] == [{"object": "contacts", "linked": 2, "archived": 0}]
    assert [s["field_map"]["email"] for s in status["settings"] if s["object"] == "contacts"] == ["Email"]
    async with connect(sf["server"]) as client:
        other = await call_ok(client, "get_sync_status")
    assert (other["vendor"], other["api_used"], other["last_run"]) == ("hubspot", None, None)


async def test_salesforce_field_mapping_is_per_vendor(sf):
    fake: SalesforceFake = sf["fake"]
    fake.add("Account", Name="Acme", Industry="Retail", Sector__c="Fintech")
    db = sf["db"]
    bad = await sync(
        sf,
        ok=False,
        tool="configure_sync",
        object="companies",
        fields=[{"field": "industry", "property": "bad-name"}],
    )
    assert (bad["code"], bad["field"], count_rows(db, SalesSyncSetting)) == (
        "validation_error",
        "field_map",
        0,
    )
    stored = await sync(
        sf, tool="configure_sync", object="companies", fields=[{"field": "industry", "property": "Sector__c"}]
    )
    assert (stored["vendor"], stored["field_map"]["industry"]) == ("salesforce", "Sector__c")
    await sync(sf, objects=["companies"])
    [company] = rows(db, CoreCompany)
    assert company.industry == "Fintech"
    [setting] = rows(db, SalesSyncSetting)
    assert setting.vendor == "salesforce"
