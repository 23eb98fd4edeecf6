"""The HubSpot client: OAuth refresh exactly once, rate limits, push failures, deal shapes.

HubSpot is faked at the network edge (`hubspot_fake`, respx); every request the client sends is
validated against the OpenAPI document derived from HubSpot's SDK 12.0.0 (see shared/specs/SOURCES.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx
from hubspot_fake import PRIVATE_TOKEN, Failure, HubSpotFake
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.errors import RevOpsError
from revops_core.models import CoreCompany
from revops_core.testing import VENDOR_FAILURES, call_error, call_ok, connect, count_rows, override_vendor
from revops_core.vault import Vault
from revops_sales.models.deals import SalesDeal
from revops_sales.models.sync import SalesSyncLink
from revops_sales.vendors import hubspot

pytestmark = pytest.mark.anyio
MAX_ATTEMPTS = 2
CLIENT_SECRET = "oauth-client-5ecret"


@pytest.fixture
def settings(make_settings):
    return make_settings(http_max_attempts=MAX_ATTEMPTS, breaker_min_calls=100_000)


def oauth_grant(server: Any, settings: Any, clock: FakeClock, *, expires_in: float) -> None:
    vault = Vault(server.runtime.db, settings)
    vault.set("hubspot", "default", {"client_id": "app-1", "client_secret": CLIENT_SECRET})
    now = clock.time()
    vault.set(
        "hubspot",
        "oauth",
        {
            "access_token": "oauth-access-0",
            "refresh_token": "refresh-0",
            "issued_at": repr(now),
            "expires_at": repr(now + expires_in),
        },
    )


async def test_the_fake_refuses_a_request_the_spec_does_not_document():
    fake = HubSpotFake()
    bad = httpx.Request(
        "POST",
        "https://api.hubapi.com/crm/v3/objects/contacts/search",
        json={"filterGroups": [{"filters": [{"propertyName": "x", "operator": "ROUGHLY"}]}]},
    )
    assert fake.handle(bad).status_code == 400
    assert len(fake.violations) == 1  # so `violations == []` elsewhere means every request was checked


async def test_an_oauth_token_expiring_mid_sync_is_refreshed_exactly_once(sales_server, settings):
    clock = FakeClock()
    oauth_grant(sales_server, settings, clock, expires_in=1000)
    override_vendor(sales_server, "hubspot", clock=clock)
    fake = HubSpotFake(page_size=1, tokens=["oauth-access-0"])
    for i in range(4):
        fake.add("contacts", {"email": f"c{i}@acme.test"})

    def expire_after_page_2(kind: str, n: int) -> None:
        if kind == "search:contacts" and n == 2:
            clock.advance(990)  # 10 s left: inside the refresh margin (≥ 60 s)

    fake.on_request = expire_after_page_2
    with respx.mock() as mock:
        fake.mount(mock)
        async with connect(sales_server) as client:
            result = await call_ok(client, "sync_crm", objects=["contacts"])
    assert fake.violations == []
    assert result["created"] == 4
    assert fake.refresh_tokens == ["refresh-0"]  # one refresh, with the stored refresh token
    assert CLIENT_SECRET not in str(result)
    stored = Vault(sales_server.runtime.db, settings).get("hubspot", "oauth")
    assert stored["access_token"].reveal() == "oauth-access-1"
    assert stored["refresh_token"].reveal() == "rotated-refresh"  # the rotated token is kept


async def test_concurrent_requests_on_an_expired_token_share_one_refresh(sales_server, settings):
    clock = FakeClock()
    oauth_grant(sales_server, settings, clock, expires_in=-5)
    fake = HubSpotFake(tokens=[])
    credentials = hubspot.require_credentials(sales_server.runtime)
    assert isinstance(credentials, hubspot.OAuthApp)
    with respx.mock() as mock:
        fake.mount(mock)
        async with hubspot.HubSpotClient(credentials, sales_server.runtime, clock=clock) as client:
            answers = await asyncio.gather(*(client.pipelines() for _ in range(6)))
    assert [len(a) for a in answers] == [1] * 6
    assert fake.calls["token"] == 1
    assert fake.calls["pipelines"] == 6
    assert fake.violations == []


async def test_searches_are_held_to_the_search_rate_limit(sales_server, settings):
    Vault(sales_server.runtime.db, settings).set("hubspot", "default", {"access_token": PRIVATE_TOKEN})
    clock = FakeClock()
    fake = HubSpotFake(page_size=1)
    for i in range(10):
        fake.add("contacts", {"email": f"c{i}@acme.test"})
    credentials = hubspot.require_credentials(sales_server.runtime)
    with respx.mock() as mock:
        fake.mount(mock)
        async with hubspot.HubSpotClient(credentials, sales_server.runtime, clock=clock) as client:
            after = None
            for _ in range(10):
                page = await client.search("contacts", since=None, after=after, properties=["email"])
                after = page.after
    # 10 searches at 4/s with a burst of 4: the clock (moved only by waits) ran ≥ 6 × 0.25 s.
    assert fake.calls["search:contacts"] == 10
    assert sum(clock.sleeps) >= (10 - hubspot.SEARCH_LIMIT.burst) / hubspot.SEARCH_LIMIT.rate_per_second


@pytest.mark.redis
async def test_with_redis_the_rate_buckets_are_shared_through_it(sales_server, make_settings):
    import uuid

    import redis

    from revops_core.testing import redis_url

    tenant = f"t{uuid.uuid4().hex[:10]}"  # keys of their own in the shared Redis
    shared = make_settings(redis_url=redis_url(), tenant=tenant, breaker_min_calls=100_000)
    sales_server.runtime.settings = shared
    Vault(sales_server.runtime.db, shared).set("hubspot", "default", {"access_token": PRIVATE_TOKEN})
    fake = HubSpotFake()
    credentials = hubspot.require_credentials(sales_server.runtime)
    with respx.mock() as mock:
        fake.mount(mock)
        async with hubspot.HubSpotClient(credentials, sales_server.runtime, clock=FakeClock()) as client:
            await client.search("contacts", since=None, after=None, properties=["email"])
            await client.pipelines()
    store = redis.Redis.from_url(redis_url())
    try:
        assert store.exists(f"revops:bucket:{{{tenant}:hubspot_search:api.hubapi.com}}") == 1
        assert store.exists(f"revops:bucket:{{{tenant}:hubspot:api.hubapi.com}}") == 1
    finally:
        store.close()


FAILURES = pytest.mark.parametrize(
    ("status", "code"), list(VENDOR_FAILURES.values()), ids=list(VENDOR_FAILURES)
)


@FAILURES
async def test_a_failed_push_links_nothing(sales_server, settings, status, code):
    Vault(sales_server.runtime.db, settings).set("hubspot", "default", {"access_token": PRIVATE_TOKEN})
    override_vendor(sales_server, "hubspot", clock=FakeClock())
    fake = HubSpotFake()
    fake.failures.append(Failure("batch_create:companies", first_call=1, status=status))
    db = sales_server.runtime.db
    with respx.mock() as mock:
        fake.mount(mock)
        async with connect(sales_server) as client:
            await call_ok(client, "create_company", name="Initech", domain="initech.test")
            failed = await call_error(client, "sync_crm", objects=["companies"])
    assert failed["code"] == code
    assert PRIVATE_TOKEN not in str(failed)
    # A create is not idempotent: only a 429 (refused before acting) is resent; after a timeout or a
    # 500 HubSpot may have created the records, so the create is never sent twice.
    assert fake.calls["batch_create:companies"] == (MAX_ATTEMPTS if status == 429 else 1)
    assert count_rows(db, SalesSyncLink) == 0
    assert count_rows(db, CoreCompany) == 1
    assert fake.violations == []


async def test_a_local_deal_is_pushed_with_its_stage_company_amount_and_owner(sales_server, settings):
    Vault(sales_server.runtime.db, settings).set("hubspot", "default", {"access_token": PRIVATE_TOKEN})
    override_vendor(sales_server, "hubspot", clock=FakeClock())
    fake = HubSpotFake()
    fake.add_owner("77", "rep@acme.test")
    acme = fake.add("companies", {"name": "Acme", "domain": "acme.test"})
    db = sales_server.runtime.db
    with respx.mock() as mock:
        fake.mount(mock)
        async with connect(sales_server) as client:
            await call_ok(client, "sync_crm")
            with db.session() as s:
                company = s.exec(select(CoreCompany)).one()
            [pipeline] = (await call_ok(client, "list_pipelines"))["result"]
            stage = pipeline["stages"][1]
            deal = await call_ok(
                client,
                "create_deal",
                pipeline_id=pipeline["id"],
                name="Acme expansion",
                amount_minor=123450,
                currency="EUR",
                stage_id=stage["id"],
                owner="rep@acme.test",
                close_date="2026-06-30",
                company_id=company.id,
            )
            result = await call_ok(client, "sync_crm", objects=["deals"])
            await call_ok(client, "update_deal", deal_id=deal["id"], amount_minor=200000)
            second = await call_ok(client, "sync_crm", objects=["deals"])
    assert fake.violations == []
    assert result["pushed_created"] == 1
    assert second["pushed_updated"] == 1
    [remote] = fake.live("deals")
    assert remote["properties"] == {
        "dealname": "Acme expansion",
        "amount": "2000.00",
        "deal_currency_code": "EUR",
        "closedate": "2026-06-30T00:00:00.000Z",
        "hubspot_owner_id": "77",
        "pipeline": "default",
        "dealstage": "contractsent",
    }
    assert fake.associations[("deals", "companies")][remote["id"]] == [acme]
    with db.session() as s:
        [row] = s.exec(select(SalesDeal)).all()
        [link] = s.exec(select(SalesSyncLink).where(SalesSyncLink.object == "deals")).all()
    assert (link.local_id, link.vendor_id, row.amount_minor) == (row.id, remote["id"], 200000)


async def test_client_errors_keep_secrets_out(sales_server, settings):
    Vault(sales_server.runtime.db, settings).set("hubspot", "default", {"access_token": PRIVATE_TOKEN})
    credentials = hubspot.require_credentials(sales_server.runtime)
    with respx.mock() as mock:
        mock.get("https://api.hubapi.com/crm/v3/pipelines/deals").respond(401, json={"status": "error"})
        async with hubspot.HubSpotClient(credentials, sales_server.runtime, clock=FakeClock()) as client:
            with pytest.raises(RevOpsError) as raised:
                await client.pipelines()
    assert raised.value.code == "integration_auth"
    assert PRIVATE_TOKEN not in raised.value.message
