"""The shared vendor failure matrix (`revops_core.testing.VENDOR_FAILURES`) against every CS vendor client.

Each vendor is faked only at the network edge (respx); retries run on a `FakeClock` with two attempts, so
every (vendor × failure) case is fast and deterministic. Where a tool makes exactly the one read call and
writes only after it returned (Zendesk ticket sync, Intercom conversation import, Mixpanel usage import),
the case goes through the real tool over the protocol: the client must get an isError result with the
matrix code and no local row may be written. SendGrid is tested on its client (see `test_sendgrid_client`).
"Malformed" is a body that is not JSON; the `*_wrong_shape_*` tests add valid JSON of the wrong shape.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from comm_helpers import steady_settings
from factories import add_client, add_contact

from revops_core.clock import FakeClock
from revops_core.errors import RevOpsError
from revops_core.secret_values import Secret
from revops_core.testing import VENDOR_FAILURES, connect, count_rows, error_of, override_vendor
from revops_core.vault import Vault
from revops_cs.models.support import CsSyncCursor, CsTicket
from revops_cs.models.usage import CsUsageEvent
from revops_cs.models.vendors import CsExternalRef
from revops_cs.vendors import intercom, mixpanel, sendgrid, zendesk

pytestmark = pytest.mark.anyio
MAX_ATTEMPTS = 2  # a retried failure is retried once, in fake time
SECRET = "vendor-5ecret-value"
FAILURES = pytest.mark.parametrize(
    ("status", "code"), list(VENDOR_FAILURES.values()), ids=list(VENDOR_FAILURES)
)


@pytest.fixture
def settings(make_settings):
    return steady_settings(lambda **kw: make_settings(http_max_attempts=MAX_ATTEMPTS, **kw))


def failing(status: int | None) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect answering every attempt with one matrix failure (a fresh response each time)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if status is None:
            raise httpx.ReadTimeout("no answer", request=request)
        if status == 200:  # malformed: a 2xx whose body is not what the API documents
            return httpx.Response(
                200, content=b"<html>oops</html>", headers={"Content-Type": "application/json"}
            )
        return httpx.Response(status, json={"error": "x"})

    return answer


async def call_tool(server: Any, tool: str, **args: Any) -> Any:
    async with connect(server) as client:
        return await client.call_tool(tool, args)


def assert_failed_with(result: Any, code: str) -> None:
    err = error_of(result)
    assert err["code"] == code, err
    assert SECRET not in result.content[0].text


def assert_attempts(route: Any) -> None:
    assert 1 <= route.call_count <= MAX_ATTEMPTS


MALFORMED = VENDOR_FAILURES["malformed"][1]


def json_200(body: Any) -> httpx.Response:
    """The other kind of malformed 2xx: valid JSON that is not the documented shape."""
    return httpx.Response(200, json=body)


# --------------------------------------------------------------------------- Zendesk: sync_zendesk_tickets


@pytest.fixture
def zd(cs_server, settings) -> dict[str, Any]:
    sub = f"acme{uuid.uuid4().hex[:8]}"  # a host of its own per test
    Vault(cs_server.runtime.db, settings).set(
        zendesk.SPEC.provider, "default", {"subdomain": sub, "email": "agent@acme.test", "api_token": SECRET}
    )
    override_vendor(cs_server, zendesk.SPEC, clock=FakeClock())
    with cs_server.runtime.db.session(write=True) as s:
        add_client(
            s, "Acme", external_ids=json.dumps({"zendesk": 501})
        )  # a ticket of org 501 would be stored
    return {
        "server": cs_server,
        "export": f"https://{sub}.zendesk.com/api/v2/incremental/tickets/cursor.json",
    }


ZENDESK_PAGE = {
    "tickets": [
        {
            "id": 1,
            "subject": "Export fails",
            "status": "open",
            "priority": "high",
            "organization_id": 501,
            "created_at": "2026-03-02T09:00:00Z",
            "updated_at": "2026-03-02T10:00:00Z",
        }
    ],
    "after_cursor": "c1",
    "end_of_stream": True,
}


async def test_zendesk_control_a_good_page_is_stored(zd):
    with respx.mock() as mock:
        mock.get(zd["export"]).respond(200, json=ZENDESK_PAGE)
        result = await call_tool(zd["server"], "sync_zendesk_tickets")
    assert not result.is_error, result.content
    assert count_rows(zd["server"].runtime.db, CsTicket) == 1  # so "0 rows" below means something


@FAILURES
async def test_zendesk_sync(zd, status, code):
    with respx.mock() as mock:
        route = mock.get(zd["export"]).mock(side_effect=failing(status))
        result = await call_tool(zd["server"], "sync_zendesk_tickets")
    assert_failed_with(result, code)
    assert_attempts(route)
    db = zd["server"].runtime.db
    assert count_rows(db, CsTicket) == 0
    assert count_rows(db, CsSyncCursor) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"tickets": 5},
        {"tickets": [], "metric_sets": 7},
        {"unexpected": True},
        {"tickets": [], "after_cursor": 9},
    ],
    ids=["tickets-not-a-list", "metric-sets-not-a-list", "no-tickets", "cursor-not-text"],
)
async def test_zendesk_sync_wrong_shape_is_malformed_too(zd, body):
    with respx.mock() as mock:
        route = mock.get(zd["export"]).mock(return_value=json_200(body))
        result = await call_tool(zd["server"], "sync_zendesk_tickets")
    assert_failed_with(result, MALFORMED)
    assert route.call_count == 1  # not retried, and not re-read page after page
    assert count_rows(zd["server"].runtime.db, CsTicket) == 0
    assert count_rows(zd["server"].runtime.db, CsSyncCursor) == 0


# --------------------------------------------------------------------------- Intercom: import_conversations

INTERCOM_CONVERSATIONS = f"{intercom.BASE_URL}/conversations"


@pytest.fixture
def ic(cs_server, settings) -> Any:
    Vault(cs_server.runtime.db, settings).set(intercom.SPEC.provider, "default", {"access_token": SECRET})
    override_vendor(cs_server, intercom.SPEC, clock=FakeClock())
    with cs_server.runtime.db.session(write=True) as s:
        contact = add_contact(s, add_client(s, "Acme"), "bob@acme.test")
        # Bob is known at Intercom: a conversation he started would become a ticket.
        s.add(CsExternalRef(vendor="intercom", kind="contact", local_id=contact.id, external_id="6002"))
    return cs_server


INTERCOM_PAGE = {
    "type": "conversation.list",
    "conversations": [
        {
            "type": "conversation",
            "id": "101",
            "created_at": 1_780_000_000,
            "updated_at": 1_780_003_600,
            "state": "open",
            "source": {"subject": "Export broken", "body": "<p>CSV export fails</p>"},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "6002"}]},
        }
    ],
    "pages": {"type": "pages"},
}


async def test_intercom_control_a_good_page_is_stored(ic):
    with respx.mock() as mock:
        mock.get(INTERCOM_CONVERSATIONS).respond(200, json=INTERCOM_PAGE)
        result = await call_tool(ic, "sync_intercom", action="import_conversations")
    assert not result.is_error, result.content
    assert count_rows(ic.runtime.db, CsTicket) == 1


@FAILURES
async def test_intercom_import_conversations(ic, status, code):
    with respx.mock() as mock:
        route = mock.get(INTERCOM_CONVERSATIONS).mock(side_effect=failing(status))
        result = await call_tool(ic, "sync_intercom", action="import_conversations")
    assert_failed_with(result, code)
    assert_attempts(route)
    assert count_rows(ic.runtime.db, CsTicket) == 0
    assert count_rows(ic.runtime.db, CsExternalRef) == 1  # only the mapping the fixture stored


@pytest.mark.parametrize(
    "body",
    [
        {"type": "conversation.list"},
        {"conversations": 3},
        {"conversations": [{"id": "1", "contacts": {"contacts": ["6002"]}}]},
        # Issue 7: a missing created_at was once stored as 1970-01-01; it is the vendor's broken shape.
        {"conversations": [{"id": "2", "contacts": {"contacts": [{"type": "contact", "id": "6002"}]}}]},
    ],
    ids=["no-list", "list-not-a-list", "contact-not-an-object", "no-created-at"],
)
async def test_intercom_import_wrong_shape_is_malformed_too(ic, body):
    with respx.mock() as mock:
        mock.get(INTERCOM_CONVERSATIONS).mock(return_value=json_200(body))
        result = await call_tool(ic, "sync_intercom", action="import_conversations")
    assert_failed_with(result, MALFORMED)
    assert count_rows(ic.runtime.db, CsTicket) == 0


# --------------------------------------------------------------------------- Mixpanel: import_mixpanel_usage

MIXPANEL_EXPORT = f"{mixpanel.EXPORT_URL}/export"
DAYS = {"from_date": "2026-05-01", "to_date": "2026-05-02"}


@pytest.fixture
def mp(cs_server, settings) -> Any:
    Vault(cs_server.runtime.db, settings).set(
        mixpanel.SPEC.provider,
        "default",
        {"service_account_username": "sa.user", "service_account_secret": SECRET, "project_id": "31337"},
    )
    override_vendor(cs_server, mixpanel.SPEC, clock=FakeClock())
    with cs_server.runtime.db.session(write=True) as s:
        add_client(s, "Acme", external_ids=json.dumps({"mixpanel": "acme-co"}))
    return cs_server


async def test_mixpanel_control_a_good_export_is_stored(mp):
    event = {
        "event": "login",
        "properties": {"time": 1_780_000_000, "distinct_id": "u-1", "client_id": "acme-co"},
    }
    with respx.mock() as mock:
        mock.get(MIXPANEL_EXPORT).respond(200, content=(json.dumps(event) + "\n").encode())
        result = await call_tool(mp, "import_mixpanel_usage", **DAYS)
    assert not result.is_error, result.content
    assert count_rows(mp.runtime.db, CsUsageEvent) == 1


@FAILURES
async def test_mixpanel_import_usage(mp, status, code):
    # The client only streams lines; a malformed body is caught where the lines are decoded
    # (`mixpanel.parse_line`, in the vendor module) — which the tool exercises and the bare client would not.
    with respx.mock() as mock:
        route = mock.get(MIXPANEL_EXPORT).mock(side_effect=failing(status))
        result = await call_tool(mp, "import_mixpanel_usage", **DAYS)
    assert_failed_with(result, code)
    assert_attempts(route)
    assert count_rows(mp.runtime.db, CsUsageEvent) == 0


@pytest.mark.parametrize("body", [{"error": "x"}, [1, 2], {"event": "login", "properties": {"time": "noon"}}])
async def test_mixpanel_import_wrong_shape_is_malformed_too(mp, body):
    with respx.mock() as mock:
        mock.get(MIXPANEL_EXPORT).mock(return_value=json_200(body))
        result = await call_tool(mp, "import_mixpanel_usage", **DAYS)
    assert_failed_with(result, MALFORMED)
    assert count_rows(mp.runtime.db, CsUsageEvent) == 0


# --------------------------------------------------------------------------- SendGrid: the client itself

SENDGRID_SEND = f"{sendgrid.BASE_URL}/v3/mail/send"


async def test_sendgrid_control_an_accepted_send_returns_the_message_id(settings):
    creds = sendgrid.SendgridCredentials(Secret(SECRET), "cs@vendor.test")
    with respx.mock() as mock:
        mock.post(SENDGRID_SEND).respond(202, headers={"X-Message-Id": "m-1"})
        async with sendgrid.SendgridClient(creds, settings, clock=FakeClock()) as client:
            assert await client.send(_mail()) == "m-1"


@FAILURES
async def test_sendgrid_client(settings, status, code):
    # SendGrid's client has no read call: its one call is the mail send (a POST). Through the tool,
    # a timeout or an unidentifiable 2xx is by design recorded as an `unknown` message row and the
    # call succeeds (so a retry never double-sends) — "isError and no rows" cannot hold there. The
    # tool's 401/500 paths are covered in test_sendgrid.py; here the whole matrix meets the client.
    creds = sendgrid.SendgridCredentials(Secret(SECRET), "cs@vendor.test")
    with respx.mock() as mock:
        route = mock.post(SENDGRID_SEND).mock(side_effect=failing(status))
        async with sendgrid.SendgridClient(creds, settings, clock=FakeClock()) as client:
            with pytest.raises(RevOpsError) as raised:
                await client.send(_mail())
    assert raised.value.code == code
    assert SECRET not in raised.value.message
    assert_attempts(route)


def _mail() -> dict[str, Any]:
    return sendgrid.mail_body(
        sender="cs@vendor.test",
        to_email="ann@acme.test",
        to_name="Ann",
        subject="s",
        text="b",
        message_ref="r1",
    )
