"""Apollo through `prospect_with_apollo` on both backends, faked only at the network edge (respx).

Apollo publishes no OpenAPI description: every request is checked against the shapes documented in
`revops_sales.vendors.apollo` (`REQUESTS`, the `x-api-key` header). Spending credits is plan →
confirm; enrichment is cached with its `as_of` and served stale when Apollo is down; the failure
matrix (401, 429, 500, timeout, malformed) gives its code and writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.db import utcnow
from revops_core.testing import VENDOR_FAILURES, call_error, call_ok, connect, count_rows, override_vendor
from revops_core.vault import Vault
from revops_sales.models.leads import SalesEnrichment
from revops_sales.vendors import apollo

pytestmark = pytest.mark.anyio
KEY = "apollo-5ecret-key"
API = apollo.BASE_URL
PERSON = {
    "id": "p1",
    "first_name": "Ana",
    "last_name": "Ruiz",
    "title": "VP Finance",
    "email": "ana@acme.com",
    "country": "Germany",
    "organization": {"name": "Acme GmbH", "primary_domain": "acme.com"},
}
ORG = {
    "id": "o1",
    "name": "Acme GmbH",
    "primary_domain": "acme.com",
    "industry": "Software",
    "estimated_num_employees": 250,
    "country": "DE",
}
PAGE = {"page": 1, "per_page": 2, "total_entries": 7, "total_pages": 4}


@pytest.fixture
def settings(make_settings, request):
    # Two attempts per retryable call, and a breaker that opens only in the test about it.
    opens = request.function.__name__ == "test_an_open_circuit_serves_the_cache_without_calling"
    return make_settings(http_max_attempts=2, breaker_min_calls=2 if opens else 100_000)


@pytest.fixture
def clock(sales_server, settings) -> FakeClock:
    Vault(sales_server.runtime.db, settings).set(apollo.SPEC.provider, "default", {"api_key": KEY})
    fake = FakeClock()
    override_vendor(sales_server, apollo.SPEC, clock=fake)
    return fake


def documented(request: httpx.Request) -> None:
    """Fail the test unless the request is one Apollo documents (see vendors/apollo.py)."""
    assert request.headers["x-api-key"] == KEY
    path = request.url.path.removeprefix("/api/v1")
    if request.method == "GET":
        assert path == "/organizations/enrich"
        assert set(request.url.params) == {"domain"}
        return
    shape = apollo.REQUESTS[path]
    body = json.loads(request.content)
    assert set(body) <= set(shape), set(body) - set(shape)
    for key, value in body.items():
        assert isinstance(value, shape[key]), (key, value)


def answer(body: Any) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        documented(request)
        return httpx.Response(200, json=body)

    return respond


async def _lead(client, **extra) -> int:
    fields = {"name": "Ana Ruiz", "email": "ana@acme.com", "company_domain": "acme.com", **extra}
    return (await call_ok(client, "save_lead", **fields))["id"]


async def test_without_a_key_the_error_names_the_vault_command(sales_server) -> None:
    async with connect(sales_server) as client:
        lead = await _lead(client)
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route(host="api.apollo.io")
            err = await call_error(client, "prospect_with_apollo", action="enrich_lead", lead_id=lead)
    assert err["code"] == "configuration_error"
    assert "revops vault set apollo api_key=<api key>" in err["hint"]
    assert route.call_count == 0


async def test_enrichment_plans_credits_then_fills_blanks_and_caches(sales_server, clock) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        lead = await _lead(client, title="CFO")
        with respx.mock() as mock:
            match = mock.post(f"{API}/people/match").mock(side_effect=answer({"person": PERSON}))
            enrich = mock.get(f"{API}/organizations/enrich").mock(side_effect=answer({"organization": ORG}))
            planned = await call_ok(client, "prospect_with_apollo", action="enrich_lead", lead_id=lead)
            assert (match.call_count, enrich.call_count) == (0, 0)  # a plan spends nothing
            assert count_rows(db, SalesEnrichment) == 0
            done = await call_ok(
                client, "prospect_with_apollo", action="enrich_lead", lead_id=lead, confirm=planned["plan_id"]
            )
            cached = await call_ok(client, "prospect_with_apollo", action="enrich_lead", lead_id=lead)
            assert (match.call_count, enrich.call_count) == (1, 1)  # the repeat was served from cache
        got = await call_ok(client, "get_lead", lead_id=lead)
    assert planned["status"] == "planned"
    assert planned["plan"]["summary"] == f"Enrich lead {lead} from Apollo: ~2 credit(s)."
    result = done["result"]["enrichment"]
    assert result["credits_estimated"] == 2
    assert [(r["kind"], r["served_from"], r["stale"]) for r in result["records"]] == [
        ("person", "apollo", False),
        ("organization", "apollo", False),
    ]
    assert result["records"][0]["data"]["title"] == "VP Finance"
    # Blanks only: the title was known (CFO); Apollo's "Germany" is no ISO code; the org's DE is.
    assert result["filled"] == ["company_name", "industry", "employees", "country"]
    assert (got["title"], got["company_name"], got["industry"], got["employees"], got["country"]) == (
        "CFO",
        "Acme GmbH",
        "Software",
        250,
        "DE",
    )
    assert cached["status"] == "done"
    assert cached["plan_id"] is None
    assert [r["served_from"] for r in cached["result"]["enrichment"]["records"]] == ["cache", "cache"]
    assert cached["result"]["enrichment"]["credits_estimated"] == 0
    assert count_rows(db, SalesEnrichment) == 2


@pytest.mark.parametrize("down", ["server_error", "timeout"])
async def test_apollo_down_serves_the_cached_answer_marked_stale(sales_server, clock, down) -> None:
    db = sales_server.runtime.db
    old = utcnow() - timedelta(days=45)
    with db.session(write=True) as s:
        s.add(
            SalesEnrichment(
                kind="person", lookup="ana@acme.com", payload=json.dumps({"title": "CFO"}), as_of=old
            )
        )
    async with connect(sales_server) as client:
        lead = await _lead(client, company_domain=None)
        with respx.mock() as mock:
            status = VENDOR_FAILURES[down][0]

            def fail(request: httpx.Request) -> httpx.Response:
                documented(request)
                if status is None:
                    raise httpx.ReadTimeout("no answer", request=request)
                return httpx.Response(status, json={"error": "x"})

            mock.post(f"{API}/people/match").mock(side_effect=fail)
            planned = await call_ok(client, "prospect_with_apollo", action="enrich_lead", lead_id=lead)
            done = await call_ok(
                client, "prospect_with_apollo", action="enrich_lead", lead_id=lead, confirm=planned["plan_id"]
            )
    record = done["result"]["enrichment"]["records"][0]
    assert (record["served_from"], record["stale"], record["data"]) == ("stale_cache", True, {"title": "CFO"})
    assert record["as_of"].startswith(old.date().isoformat())
    assert record["error"]
    assert done["result"]["enrichment"]["filled"] == ["title"]
    with db.session() as s:
        row = s.exec(select(SalesEnrichment)).one()
    assert row.as_of == old  # the stale answer was not re-dated


async def test_an_open_circuit_serves_the_cache_without_calling(sales_server, clock) -> None:
    old = utcnow() - timedelta(days=45)
    with sales_server.runtime.db.session(write=True) as s:
        s.add(
            SalesEnrichment(
                kind="person", lookup="ana@acme.com", payload=json.dumps({"title": "CFO"}), as_of=old
            )
        )
    async with connect(sales_server) as client:
        lead = await _lead(client, company_domain=None, title="CEO")
        records, sent = [], []
        with respx.mock() as mock:
            route = mock.post(f"{API}/people/match").respond(503, json={"error": "x"})
            for _ in range(3):
                planned = await call_ok(client, "prospect_with_apollo", action="enrich_lead", lead_id=lead)
                done = await call_ok(
                    client,
                    "prospect_with_apollo",
                    action="enrich_lead",
                    lead_id=lead,
                    confirm=planned["plan_id"],
                )
                records.append(done["result"]["enrichment"]["records"][0])
                sent.append(route.call_count)
    assert all(
        (r["served_from"], r["as_of"][:10]) == ("stale_cache", old.date().isoformat()) for r in records
    )
    assert sent[-1] == sent[-2]  # the breaker is open: the last call was not sent at all
    assert "paused" in records[-1]["error"]


FAILURES = pytest.mark.parametrize(
    ("status", "code"), list(VENDOR_FAILURES.values()), ids=list(VENDOR_FAILURES)
)


@FAILURES
async def test_failure_matrix_with_nothing_cached_writes_nothing(sales_server, clock, status, code) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        lead = await _lead(client)
        with respx.mock() as mock:

            def fail(request: httpx.Request) -> httpx.Response:
                documented(request)
                if status is None:
                    raise httpx.ReadTimeout("no answer", request=request)
                if status == 200:
                    return httpx.Response(
                        200, content=b"<html>", headers={"Content-Type": "application/json"}
                    )
                headers = {"Retry-After": "7"} if status == 429 else {}
                return httpx.Response(status, json={"error": "x"}, headers=headers)

            person = mock.post(f"{API}/people/match").mock(side_effect=answer({"person": PERSON}))
            route = mock.get(f"{API}/organizations/enrich").mock(side_effect=fail)
            planned = await call_ok(client, "prospect_with_apollo", action="enrich_lead", lead_id=lead)
            err = await call_error(
                client, "prospect_with_apollo", action="enrich_lead", lead_id=lead, confirm=planned["plan_id"]
            )
        got = await call_ok(client, "get_lead", lead_id=lead)
    assert err["code"] == code, err
    assert KEY not in json.dumps(err)
    assert 1 <= route.call_count <= 2
    if status == 429:
        assert err["retry_after"] == 7
    assert person.call_count == 1
    assert count_rows(db, SalesEnrichment) == 0  # the person answered, yet nothing half-written
    assert got["company_name"] is None
    assert got["industry"] is None


async def test_rate_limit_retry_after_is_waited_out(sales_server, clock) -> None:
    async with connect(sales_server) as client:
        lead = await _lead(client, company_domain=None)
        with respx.mock() as mock:
            mock.post(f"{API}/people/match").mock(
                side_effect=[
                    httpx.Response(429, headers={"Retry-After": "5"}),
                    httpx.Response(200, json={"person": None}),
                ]
            )
            planned = await call_ok(client, "prospect_with_apollo", action="enrich_lead", lead_id=lead)
            done = await call_ok(
                client, "prospect_with_apollo", action="enrich_lead", lead_id=lead, confirm=planned["plan_id"]
            )
    assert 5.0 in clock.sleeps
    record = done["result"]["enrichment"]["records"][0]
    assert (record["found"], record["data"], record["served_from"]) == (False, None, "apollo")


async def test_searches_are_planned_documented_and_shaped(sales_server, clock) -> None:
    masked = {**PERSON, "id": "p2", "email": "email_not_unlocked@domain.com", "name": "Bo Li"}
    async with connect(sales_server) as client:
        with respx.mock() as mock:
            people = mock.post(f"{API}/mixed_people/search").mock(
                side_effect=answer({"people": [PERSON, masked], "pagination": PAGE})
            )
            orgs = mock.post(f"{API}/mixed_companies/search").mock(
                side_effect=answer({"organizations": [ORG], "pagination": {**PAGE, "total_entries": 1}})
            )
            args = {
                "action": "find_people",
                "titles": ["VP Finance"],
                "locations": ["Germany"],
                "per_page": 2,
            }
            planned = await call_ok(client, "prospect_with_apollo", **args)
            assert people.call_count == 0
            found = await call_ok(client, "prospect_with_apollo", **args, confirm=planned["plan_id"])
            org_args = {"action": "find_organizations", "employee_ranges": ["50,500"], "name": "acme"}
            org_plan = await call_ok(client, "prospect_with_apollo", **org_args)
            org_found = await call_ok(client, "prospect_with_apollo", **org_args, confirm=org_plan["plan_id"])
            mock.post(f"{API}/mixed_people/search").respond(200, json={"people": 5})
            again = await call_ok(client, "prospect_with_apollo", **args)
            wrong = await call_error(client, "prospect_with_apollo", **args, confirm=again["plan_id"])
    body = json.loads(people.calls[0].request.content)
    assert body == {
        "person_titles": ["VP Finance"],
        "person_locations": ["Germany"],
        "page": 1,
        "per_page": 2,
    }
    search = found["result"]["search"]
    assert (search["kind"], search["total_entries"], search["per_page"]) == ("people", 7, 2)
    assert [(p["name"], p["email"], p["company_domain"]) for p in search["items"]] == [
        ("Ana Ruiz", "ana@acme.com", "acme.com"),
        ("Bo Li", None, "acme.com"),  # Apollo's masked address is no address
    ]
    assert json.loads(orgs.calls[0].request.content)["organization_num_employees_ranges"] == ["50,500"]
    assert org_found["result"]["search"]["items"][0]["employees"] == 250
    assert wrong["code"] == "integration_unavailable"
