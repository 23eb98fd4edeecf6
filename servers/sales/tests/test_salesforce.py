"""The Salesforce client: JWT bearer and web-server auth, one renewal for many requests, push failures,
limit info. Salesforce is faked at the network edge (`salesforce_fake`, respx); every request is checked
against the Postman collection or the documented SHAPES."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from salesforce_fake import INSTANCE, Failure, SalesforceFake

from revops_core.clock import FakeClock
from revops_core.errors import RevOpsError
from revops_core.models import CoreCompany
from revops_core.testing import VENDOR_FAILURES, call_error, call_ok, connect, count_rows, override_vendor
from revops_core.vault import Vault
from revops_sales.models.sync import SalesSyncLink
from revops_sales.vendors import salesforce

pytestmark = pytest.mark.anyio
MAX_ATTEMPTS = 2
CLIENT_SECRET = "sf-consumer-5ecret"


@pytest.fixture
def settings(make_settings):
    return make_settings(http_max_attempts=MAX_ATTEMPTS, breaker_min_calls=100_000)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def jwt_app(server: Any, settings: Any, key: rsa.RSAPrivateKey) -> None:
    Vault(server.runtime.db, settings).set(
        "salesforce", "default", {"client_id": "app-1", "username": "sync@acme.test", "private_key": pem(key)}
    )


def web_server_app(server: Any, settings: Any) -> None:
    vault = Vault(server.runtime.db, settings)
    vault.set("salesforce", "default", {"client_id": "app-1", "client_secret": CLIENT_SECRET})
    vault.set("salesforce", "oauth", {"refresh_token": "refresh-0"})


async def test_the_fake_refuses_a_request_neither_the_collection_nor_shapes_describe():
    fake = SalesforceFake()
    undocumented = httpx.Request(
        "DELETE", f"{INSTANCE}/services/data/v59.0/query/", headers={"Authorization": "Bearer x"}
    )
    no_q = httpx.Request(
        "GET", f"{INSTANCE}/services/data/v59.0/query/", headers={"Authorization": "Bearer x"}
    )
    no_end = httpx.Request(
        "GET", f"{INSTANCE}/services/data/v59.0/sobjects/Account/deleted/",
        params={"start": "2026-03-01T00:00:00Z"}, headers={"Authorization": "Bearer x"},
    )  # fmt: skip
    refresh_without_secret = httpx.Request(
        "POST", "https://login.salesforce.com/services/oauth2/token",
        data={"grant_type": "refresh_token", "client_id": "a", "refresh_token": "r"},
    )  # fmt: skip
    update_without_id = httpx.Request(
        "PATCH", f"{INSTANCE}/services/data/v59.0/composite/sobjects", headers={"Authorization": "Bearer x"},
        json={"allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": "x"}]},
    )  # fmt: skip
    for request in (undocumented, no_q, no_end, refresh_without_secret, update_without_id):
        assert fake.handle(request).status_code == 400
    assert [v.split(": ", 1)[1] for v in fake.violations] == [
        "DELETE /services/data/v59.0/query/: described neither by the collection nor by SHAPES",
        "query parameter q missing", "bad SOQL ''",
        "query parameter end missing", "end is not an ISO dateTime",
        "form field client_secret missing",
        "update needs Id: {'attributes': {'type': 'Account'}, 'Name': 'x'}",
    ]  # fmt: skip


async def test_the_jwt_bearer_flow_signs_an_rs256_assertion(sales_server, settings, key):
    jwt_app(sales_server, settings, key)
    clock = FakeClock()
    override_vendor(sales_server, "salesforce", clock=clock)
    fake = SalesforceFake(jwt_public_key=key.public_key())
    fake.add("Account", Name="Acme")
    with respx.mock(assert_all_called=False) as mock:
        fake.mount(mock)
        async with connect(sales_server) as client:
            result = await call_ok(client, "sync_crm", vendor="salesforce", objects=["companies"])
    assert fake.violations == []
    assert result["created"] == 1
    assert fake.grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert fake.jwt_claims == {
        "iss": "app-1", "sub": "sync@acme.test", "aud": "https://login.salesforce.com",
        "exp": int(clock.time()) + salesforce.JWT_LIFETIME,
    }  # fmt: skip


async def test_a_jwt_signed_with_another_key_is_refused_with_the_vault_entries_named(
    sales_server, settings, key
):
    jwt_app(sales_server, settings, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    override_vendor(sales_server, "salesforce", clock=FakeClock())
    fake = SalesforceFake(jwt_public_key=key.public_key())
    with respx.mock(assert_all_called=False) as mock:
        fake.mount(mock)
        async with connect(sales_server) as client:
            failed = await call_error(client, "sync_crm", vendor="salesforce", objects=["companies"])
    assert failed["code"] == "integration_auth"
    assert "revops vault set salesforce client_id=<connected app consumer key> username=" in failed["hint"]
    assert "BEGIN PRIVATE KEY" not in str(failed)
    assert count_rows(sales_server.runtime.db, CoreCompany) == 0


@pytest.mark.parametrize("flow", ["jwt", "web_server"])
async def test_concurrent_requests_on_an_ended_session_share_one_renewal(sales_server, settings, key, flow):
    if flow == "jwt":
        jwt_app(sales_server, settings, key)
    else:
        web_server_app(sales_server, settings)
    fake = SalesforceFake(jwt_public_key=key.public_key())
    fake.add("Account", Name="Acme")
    credentials = salesforce.require_credentials(sales_server.runtime)
    with respx.mock(assert_all_called=False) as mock:
        fake.mount(mock)
        async with salesforce.SalesforceClient(
            credentials, sales_server.runtime, clock=FakeClock()
        ) as client:
            await client.query("SELECT Id FROM Account")
            fake.tokens.clear()  # the session ended: every request in flight gets 401
            pages = await asyncio.gather(*(client.query("SELECT Id FROM Account") for _ in range(6)))
    assert [len(p.records) for p in pages] == [1] * 6
    assert fake.calls["token"] == 2  # the first token, then ONE renewal for all six
    assert fake.violations == []


FAILURES = pytest.mark.parametrize(
    ("status", "code"), list(VENDOR_FAILURES.values()), ids=list(VENDOR_FAILURES)
)


@FAILURES
async def test_a_failed_push_links_nothing(sales_server, settings, status, code):
    web_server_app(sales_server, settings)
    override_vendor(sales_server, "salesforce", clock=FakeClock())
    fake = SalesforceFake()
    fake.failures.append(Failure("create:Account", first_call=1, status=status))
    db = sales_server.runtime.db
    with respx.mock(assert_all_called=False) as mock:
        fake.mount(mock)
        async with connect(sales_server) as client:
            await call_ok(client, "create_company", name="Initech", domain="initech.test")
            failed = await call_error(client, "sync_crm", vendor="salesforce", objects=["companies"])
    assert failed["code"] == code
    assert CLIENT_SECRET not in str(failed)
    # A create is sent once unless refused before acting (429) or for its token (401: renewed, resent once).
    assert fake.calls["create:Account"] == (MAX_ATTEMPTS if status in (429, 401) else 1)
    assert count_rows(db, SalesSyncLink) == 0
    assert count_rows(db, CoreCompany) == 1
    assert fake.violations == []


async def test_a_token_answer_without_instance_url_is_malformed(sales_server, settings):
    web_server_app(sales_server, settings)
    credentials = salesforce.require_credentials(sales_server.runtime)
    with respx.mock() as mock:
        mock.post(salesforce.TOKEN_URL).respond(200, json={"access_token": "x"})
        async with salesforce.SalesforceClient(
            credentials, sales_server.runtime, clock=FakeClock()
        ) as client:
            with pytest.raises(RevOpsError) as raised:
                await client.query("SELECT Id FROM Account")
    assert (raised.value.code, raised.value.outcome) == ("reauth_required", "unknown")


def test_limit_info_is_read_from_the_header():
    assert salesforce.parse_usage(httpx.Headers({"Sforce-Limit-Info": "api-usage=25/15000"})) == (25, 15000)
    assert salesforce.parse_usage(httpx.Headers({})) is None


def test_soql_reads_changes_at_or_after_the_cursor_oldest_first():
    from datetime import UTC, datetime

    since = datetime(2026, 3, 1, 9, 0, 1, 500000, tzinfo=UTC)
    assert salesforce.soql("Contact", ["Email", "Id"], since=since) == (
        "SELECT Id, Email, SystemModstamp FROM Contact WHERE SystemModstamp >= 2026-03-01T09:00:01Z "
        "ORDER BY SystemModstamp, Id"
    )
