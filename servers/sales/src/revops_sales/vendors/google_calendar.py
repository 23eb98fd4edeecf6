"""Google Calendar API v3 client on `IntegrationClient`: free/busy and event creation.

Requests follow `calendar_v3_discovery.json` (`calendar.freebusy.query`, `calendar.events.insert`);
tests check each one against that document (`revops_core.google_discovery`). Auth is the Google
OAuth grant (`vendors.google_auth`). An insert carries an event id we chose, so an insert whose
answer was lost (timeout) can still be found in the calendar under that id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from revops_core.errors import IntegrationUnavailable
from revops_core.secret_values import Secret
from revops_sales.vendors import google_auth

PROVIDER = "google_calendar"
TITLE = "Google Calendar"
BASE_URL = "https://www.googleapis.com/calendar/v3/"
MAX_FREEBUSY_CALENDARS = 50  # FreeBusyRequest.calendarExpansionMax's documented maximum


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime:
    """An RFC 3339 time from an answer; anything else is a malformed answer."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _malformed("a time that is not RFC 3339") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def new_event_id() -> str:
    """An event id in Calendar's alphabet (base32hex: a–v, 0–9)."""
    return uuid.uuid4().hex  # hex digits are a subset of base32hex


def event_body(
    *,
    event_id: str,
    summary: str,
    start: datetime,
    end: datetime,
    attendees: list[tuple[str, str | None]],
    description: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "summary": summary,
        "start": {"dateTime": rfc3339(start)},
        "end": {"dateTime": rfc3339(end)},
        "attendees": [
            {"email": email, **({"displayName": name} if name else {})} for email, name in attendees
        ],
    }
    if description:
        body["description"] = description
    return body


def _malformed(what: str) -> IntegrationUnavailable:
    return IntegrationUnavailable(
        f"{TITLE} answered with {what}.",
        outcome="failed",
        retryable=False,
        hint="The vendor's response format may have changed; report it with the provider name.",
    )


class CalendarClient:
    """Typed calls to the Calendar endpoints the Sales server uses."""

    def __init__(self, token: Secret, settings: Any, **client_options: Any) -> None:
        from revops_core.integration import IntegrationClient

        self._http = IntegrationClient(
            PROVIDER, BASE_URL, settings=settings, auth=google_auth.bearer(token), **client_options
        )

    async def __aenter__(self) -> CalendarClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def busy(
        self, calendars: list[str], start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, datetime]]]:
        """freeBusy.query → busy intervals per calendar (a POST that only reads: safe to retry).

        A calendar Google could not read (its `errors`, or missing from the answer) is left out of
        the result, so the caller can say whose availability is unknown."""
        body = {
            "timeMin": rfc3339(start),
            "timeMax": rfc3339(end),
            "items": [{"id": c} for c in calendars],
        }
        response = await self._http.request("POST", "freeBusy", json=body, idempotent=True)
        answer = google_auth.decode(response, TITLE, write=False)
        found = answer.get("calendars")
        if not isinstance(found, dict):
            raise _malformed("a free/busy answer without calendars")
        out: dict[str, list[tuple[datetime, datetime]]] = {}
        for cal in calendars:
            entry = found.get(cal)
            if not isinstance(entry, dict) or entry.get("errors"):
                continue
            periods = entry.get("busy") or []
            if not isinstance(periods, list) or not all(isinstance(p, dict) for p in periods):
                raise _malformed("busy periods that are not a list of objects")
            out[cal] = [(parse_time(p.get("start")), parse_time(p.get("end"))) for p in periods]
        return out

    async def insert_event(self, body: dict[str, Any]) -> dict[str, Any]:
        """events.insert on the primary calendar, inviting the attendees. Sent once: after a
        timeout the outcome is `unknown` (the event may exist under `body["id"]`)."""
        response = await self._http.request(
            "POST", "calendars/primary/events", params={"sendUpdates": "all"}, json=body, idempotent=False
        )
        return google_auth.decode(response, TITLE, write=True)
