"""The Google clients: the Discovery validator itself, OAuth refresh through the core TokenManager,
and the shared failure matrix (`VENDOR_FAILURES`) on every Calendar and Gmail call."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google_fakes import (
    ACCESS,
    CALENDAR,
    EVENTS_URL,
    FREEBUSY_URL,
    GMAIL,
    SEND_URL,
    connect_google,
    fake_google,
)

from revops_core.clock import FakeClock
from revops_core.errors import RevOpsError
from revops_core.google_discovery import DiscoveryMismatch
from revops_core.secret_values import Secret
from revops_core.testing import VENDOR_FAILURES, call_error, call_ok, connect, count_rows
from revops_core.vault import Vault
from revops_sales.models.meetings import SalesMeeting
from revops_sales.vendors import gmail, google_auth, google_calendar

pytestmark = pytest.mark.anyio
MAX_ATTEMPTS = 2
FAILURES = pytest.mark.parametrize(
    ("kind", "code"), [(k, c) for k, (_, c) in VENDOR_FAILURES.items()], ids=list(VENDOR_FAILURES)
)


@pytest.fixture
def settings(make_settings):
    return make_settings(breaker_min_calls=100_000, http_max_attempts=MAX_ATTEMPTS)


# --------------------------------------------------------------------------- the validator


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_the_validator_accepts_documented_requests() -> None:
    assert GMAIL.validate(
        "POST", SEND_URL, json.dumps({"raw": _raw("Subject: x\n\nhi"), "threadId": "t"}).encode()
    ) == ("gmail.users.messages.send")
    body = {
        "id": "abc123",
        "start": {"dateTime": "2030-01-07T10:00:00Z"},
        "end": {"dateTime": "2030-01-07T11:00:00Z"},
    }
    assert CALENDAR.validate("POST", EVENTS_URL + "?sendUpdates=all", json.dumps(body).encode()) == (
        "calendar.events.insert"
    )
    assert GMAIL.validate("GET", "https://gmail.googleapis.com/gmail/v1/users/me/drafts?maxResults=5") == (
        "gmail.users.drafts.list"
    )


@pytest.mark.parametrize(
    ("doc", "method", "url", "body", "problem"),
    [
        (
            "gmail",
            "POST",
            "https://gmail.googleapis.com/gmail/v1/users/me/messages/sendit",
            {"raw": "eA"},
            "no method",
        ),
        ("gmail", "POST", SEND_URL + "?colour=red", {"raw": "eA"}, "undeclared query parameter colour"),
        ("gmail", "POST", SEND_URL, {"raw": "not base64!"}, "body.raw"),
        ("gmail", "POST", SEND_URL, {"raw": "eA", "thread": "t"}, "body.thread is not a property"),
        ("gmail", "POST", SEND_URL, {"raw": 5}, "body.raw"),
        (
            "gmail",
            "GET",
            "https://gmail.googleapis.com/gmail/v1/users/me/drafts?maxResults=x",
            None,
            "maxResults",
        ),
        (
            "gmail",
            "GET",
            "https://gmail.googleapis.com/gmail/v1/users/me/drafts",
            {"q": 1},
            "takes no request body",
        ),
        ("calendar", "POST", EVENTS_URL + "?sendUpdates=everyone", {"start": {}, "end": {}}, "sendUpdates"),
        (
            "calendar",
            "POST",
            EVENTS_URL,
            {"start": {"dateTime": "2030-01-07T10:00:00Z"}},
            "body.end is required",
        ),
        ("calendar", "POST", FREEBUSY_URL, {"items": {"id": "x"}}, "body.items must be an array"),
        ("calendar", "POST", FREEBUSY_URL, {"timeMin": "tomorrow"}, "body.timeMin"),
    ],
)
def test_the_validator_refuses_what_the_document_does_not_allow(doc, method, url, body, problem) -> None:
    content = json.dumps(body).encode() if body is not None else None
    with pytest.raises(DiscoveryMismatch, match=problem):
        (GMAIL if doc == "gmail" else CALENDAR).validate(method, url, content)


# --------------------------------------------------------------------------- OAuth


async def test_the_grant_is_refreshed_once_stored_and_reused(sales_server, settings) -> None:
    connect_google(sales_server, settings)
    vault = Vault(sales_server.runtime.db, settings)
    with fake_google() as google:
        async with connect(sales_server) as client:
            for _ in range(2):
                await call_ok(
                    client,
                    "propose_meeting_slots",
                    contact_ids=[_contact(sales_server)],
                    start=_monday().isoformat(),
                    end=_monday().isoformat(),
                )
    stored = vault.get("google", google_auth.GRANT)
    assert google.token_calls == 1
    assert stored["access_token"].reveal() == ACCESS
    assert stored["refresh_token"].reveal() == "refresh-5ecret"  # Google did not rotate it: kept
    assert float(stored["expires_at"].reveal()) > datetime.now(UTC).timestamp() + 3000


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (httpx.Response(400, json={"error": "invalid_grant"}), "reauth_required"),
        (httpx.Response(401, json={"error": "invalid_client"}), "integration_auth"),
        (httpx.Response(503), "integration_unavailable"),
    ],
    ids=["revoked", "bad-client", "down"],
)
async def test_a_failed_refresh_reaches_no_google_api_and_writes_nothing(
    sales_server, settings, answer, code
) -> None:
    connect_google(sales_server, settings)
    (contact,) = [_contact(sales_server)]
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    with fake_google() as google:
        google.mock.routes["token"].mock(return_value=answer)
        async with connect(sales_server) as client:
            err = await call_error(
                client,
                "book_meeting",
                title="X",
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(hours=1)).isoformat(),
                contact_ids=[contact],
            )
    assert err["code"] == code
    assert google.requests == []
    assert count_rows(sales_server.runtime.db, SalesMeeting) == 0
    if code == "reauth_required":
        assert "revops vault set google --name oauth refresh_token=" in err["hint"]


def _contact(server) -> int:
    from revops_core.models import CoreContact

    with server.runtime.db.session(write=True) as s:
        row = CoreContact(email=f"c{datetime.now(UTC).timestamp()}@acme.test")
        s.add(row)
        s.flush()
        return row.id


def _monday():
    day = datetime.now(UTC).date() + timedelta(days=7)
    return day + timedelta(days=-day.weekday() % 7)


# --------------------------------------------------------------------------- the failure matrix


def answer_with(status: int | None):
    def answer(request: httpx.Request) -> httpx.Response:
        if status is None:
            raise httpx.ReadTimeout("no answer", request=request)
        if status == 200:
            return httpx.Response(200, content=b"<html>", headers={"Content-Type": "application/json"})
        return httpx.Response(status, json={"error": {"code": status}}, headers={"Retry-After": "1"})

    return answer


@FAILURES
async def test_free_busy_through_the_tool(sales_server, settings, kind, code) -> None:
    connect_google(sales_server, settings)
    contact = _contact(sales_server)
    with fake_google() as google:
        route = google.mock.routes["freebusy"]
        route.mock(side_effect=answer_with(VENDOR_FAILURES[kind][0]))
        async with connect(sales_server) as client:
            err = await call_error(
                client,
                "propose_meeting_slots",
                contact_ids=[contact],
                start=_monday().isoformat(),
                end=_monday().isoformat(),
            )
    assert err["code"] == code
    assert 1 <= route.call_count <= MAX_ATTEMPTS  # a read may be retried, within the attempts
    assert "access-token" not in json.dumps(err)


CLIENT_CALLS = {
    "calendar.insert": ("insert", lambda c: c.insert_event({"id": "e1", "start": {}, "end": {}})),
    "calendar.busy": ("freebusy", lambda c: c.busy(["primary"], datetime.now(UTC), datetime.now(UTC))),
    "gmail.send": (
        "send",
        lambda c: c.send(
            gmail.build(to=["a@b.test"], subject="s", body="b", sent_at=datetime.now(UTC)), None
        ),
    ),
    "gmail.draft": (
        "draft",
        lambda c: c.create_draft(
            gmail.build(to=["a@b.test"], subject="s", body="b", sent_at=datetime.now(UTC)), "t"
        ),
    ),
}


@FAILURES
@pytest.mark.parametrize("call", list(CLIENT_CALLS))
async def test_every_client_call_maps_the_matrix(settings, kind, code, call) -> None:
    route_name, invoke = CLIENT_CALLS[call]
    status = VENDOR_FAILURES[kind][0]
    make = google_calendar.CalendarClient if call.startswith("calendar") else gmail.GmailClient
    with fake_google() as google:
        route = google.mock.routes[route_name]
        route.mock(side_effect=answer_with(status))
        async with make(Secret(ACCESS), settings, clock=FakeClock()) as client:
            with pytest.raises(RevOpsError) as failed:
                await invoke(client)
    assert failed.value.code == code
    write = call in ("calendar.insert", "gmail.send", "gmail.draft")
    if write and status in (None, 200):  # Google may have acted: unknown, and never resent
        assert (failed.value.outcome, route.call_count) == ("unknown", 1)
    if status == 500 and write:
        assert route.call_count == 1  # a POST that failed is not resent either
