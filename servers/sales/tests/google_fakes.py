"""Fake Google at the network edge (respx) for the Calendar and Gmail tests.

Every request to a Google API is checked against its Discovery document (`../shared/specs/*_discovery
.json`) with `revops_core.google_discovery` and must carry the bearer token the fake token endpoint
issued. The token endpoint is not in a Discovery document: it is RFC 6749 §6 (form
`grant_type=refresh_token`, `refresh_token`, `client_id`, `client_secret` → `access_token`,
`expires_in`), which `token_endpoint` checks.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

from revops_core import google_discovery
from revops_core.clock import FakeClock
from revops_core.testing import override_vendor
from revops_core.vault import Vault
from revops_sales.vendors import google_auth

SPECS = Path(
    os.environ.get("REVOPS_SPECS_DIR") or Path(__file__).resolve().parents[3].parent / "shared" / "specs"
)
CALENDAR = google_discovery.load(SPECS / "calendar_v3_discovery.json")
GMAIL = google_discovery.load(SPECS / "gmail_v1_discovery.json")
FREEBUSY_URL = "https://www.googleapis.com/calendar/v3/freeBusy"
EVENTS_URL = "https://www.googleapis.com/calendar/v3/calendars/primary/events"
SEND_URL = "https://gmail.googleapis.com/gmail/v1/users/me/messages/send"
DRAFTS_URL = "https://gmail.googleapis.com/gmail/v1/users/me/drafts"
CLIENT_SECRET = "google-client-5ecret"
REFRESH = "refresh-5ecret"
ACCESS = "access-token-1"


def connect_google(server: Any, settings: Any, *, grant: bool = True) -> None:
    """Store the OAuth client and (unless `grant=False`) a refresh token; fake time for retries."""
    vault = Vault(server.runtime.db, settings)
    vault.set("google", "default", {"client_id": "cid.apps", "client_secret": CLIENT_SECRET})
    if grant:
        vault.set("google", google_auth.GRANT, {"refresh_token": REFRESH})
    override_vendor(server, google_auth.SPEC, clock=FakeClock(), jitter_fraction=0.0)


def failure(kind: str) -> Callable[[httpx.Request], httpx.Response]:
    """A side effect answering with one VENDOR_FAILURES case (None: timeout; 200: not JSON)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if kind == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        if kind == "malformed":
            return httpx.Response(200, content=b"<html>", headers={"Content-Type": "application/json"})
        headers = {"Retry-After": "1"} if kind == "429" else {}
        return httpx.Response(int(kind), json={"error": {"code": int(kind)}}, headers=headers)

    return answer


@dataclass
class Sent:
    """One message Gmail received through the fake: the decoded RFC 2822 message and its ids."""

    kind: str
    thread_id: str
    gmail_id: str
    message: email.message.EmailMessage


@dataclass
class FakeGoogle:
    mock: respx.MockRouter
    requests: list[str] = field(default_factory=list)  # Discovery method ids, in order
    token_calls: int = 0
    busy: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def checked(self, doc: google_discovery.DiscoveryDoc, request: httpx.Request) -> dict[str, Any]:
        assert request.headers.get("authorization") == f"Bearer {ACCESS}", "no valid bearer token"
        self.requests.append(doc.validate(request.method, str(request.url), request.content))
        return json.loads(request.content or b"{}")

    def token_endpoint(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert form == {
            "grant_type": "refresh_token",
            "refresh_token": REFRESH,
            "client_id": "cid.apps",
            "client_secret": CLIENT_SECRET,
        }
        self.token_calls += 1
        return httpx.Response(200, json={"access_token": ACCESS, "expires_in": 3600, "token_type": "Bearer"})

    def freebusy(self, request: httpx.Request) -> httpx.Response:
        body = self.checked(CALENDAR, request)
        calendars = {item["id"]: self.busy.get(item["id"], {"busy": []}) for item in body["items"]}
        return httpx.Response(200, json={"kind": "calendar#freeBusy", "calendars": calendars})

    def insert(self, request: httpx.Request) -> httpx.Response:
        body = self.checked(CALENDAR, request)
        self.events.append(body)
        return httpx.Response(200, json={**body, "htmlLink": f"https://calendar.test/{body['id']}"})

    def _message(self, kind: str, message: dict[str, Any]) -> Sent:
        raw = message["raw"]
        parsed = email.message_from_bytes(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), policy=email.policy.default
        )
        n = len(self.sent) + 1
        assert isinstance(parsed, email.message.EmailMessage)
        sent = Sent(kind, message.get("threadId") or f"thread-{n}", f"{kind}-{n}", parsed)
        self.sent.append(sent)
        return sent

    def send(self, request: httpx.Request) -> httpx.Response:
        sent = self._message("msg", self.checked(GMAIL, request))
        return httpx.Response(
            200, json={"id": sent.gmail_id, "threadId": sent.thread_id, "labelIds": ["SENT"]}
        )

    def draft(self, request: httpx.Request) -> httpx.Response:
        sent = self._message("draft", self.checked(GMAIL, request)["message"])
        message = {"id": f"m-{sent.gmail_id}", "threadId": sent.thread_id}
        return httpx.Response(200, json={"id": sent.gmail_id, "message": message})


@contextmanager
def fake_google() -> Iterator[FakeGoogle]:
    """respx routes for the token endpoint, Calendar and Gmail (override one with `.mock(...)`)."""
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeGoogle(mock)
        mock.post(google_auth.TOKEN_URL, name="token").mock(side_effect=fake.token_endpoint)
        mock.post(FREEBUSY_URL, name="freebusy").mock(side_effect=fake.freebusy)
        mock.post(url__startswith=EVENTS_URL, name="insert").mock(side_effect=fake.insert)
        mock.post(SEND_URL, name="send").mock(side_effect=fake.send)
        mock.post(DRAFTS_URL, name="draft").mock(side_effect=fake.draft)
        yield fake
