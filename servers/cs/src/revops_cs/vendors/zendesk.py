"""Zendesk Support API v2 client on `IntegrationClient`, plus the mapping to our tables.

Auth is an API token: HTTP basic with `{email}/token:{api_token}`; the account lives at
`https://{subdomain}.zendesk.com`. The three values come from the vault (`revops vault set zendesk
subdomain=… email=… api_token=…`). Retries, 429/Retry-After, the circuit breaker and error mapping
belong to IntegrationClient; this module only knows Zendesk's paths and shapes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from revops_core.errors import ConfigurationError, IntegrationUnavailable, ValidationFailed
from revops_core.secret_values import Secret
from revops_core.vendor_kit import VendorSpec, load_fields, text

if TYPE_CHECKING:
    from revops_core.server import Runtime

SPEC = VendorSpec(
    provider="zendesk",
    title="Zendesk",
    fields=("subdomain", "email", "api_token"),
    placeholders={"subdomain": "<subdomain>", "email": "<agent email>", "api_token": "<api token>"},
)
_SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ZENDESK_PRIORITIES = ("urgent", "high", "normal", "low")
ZENDESK_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")


@dataclass(frozen=True)
class ZendeskCredentials:
    subdomain: str
    email: str
    api_token: Secret

    @property
    def base_url(self) -> str:
        return f"https://{self.subdomain}.zendesk.com"

    def auth_header(self) -> dict[str, str]:
        raw = f"{self.email}/token:{self.api_token.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def setup_command(missing: tuple[str, ...] | None = None) -> str:
    """The exact CLI command that stores the missing Zendesk fields (all of them by default)."""
    return SPEC.setup_command(missing)


def credentials_from_fields(fields: Mapping[str, Any] | None) -> ZendeskCredentials | tuple[str, ...]:
    """Credentials from vault fields, or the tuple of fields still missing."""
    values = fields or {}  # plain strings (tests, the wizard) or the vault's Secrets
    missing = tuple(name for name in SPEC.fields if not text(values, name))
    if missing:
        return missing
    subdomain = text(values, "subdomain").lower().removesuffix(".zendesk.com")
    if not _SUBDOMAIN.match(subdomain):
        raise ConfigurationError(
            "The stored Zendesk subdomain is not a valid subdomain.",
            hint=setup_command(("subdomain",)) + " (just the name before .zendesk.com).",
        )
    return ZendeskCredentials(subdomain, text(values, "email"), Secret(text(values, "api_token")))


def load_credentials(runtime: Runtime) -> ZendeskCredentials | tuple[str, ...]:
    """Zendesk credentials from the vault (this server's entry, else the suite-wide one), or the
    fields that are missing. Each read is audited by the vault as `vault.decrypt`."""
    found = load_fields(runtime, SPEC)
    return found if isinstance(found, tuple) else credentials_from_fields(found)


def not_configured_reason(missing: tuple[str, ...]) -> str:
    return SPEC.not_configured_reason(missing)


def require_credentials(runtime: Runtime) -> ZendeskCredentials:
    """Credentials, or a configuration error naming the exact `revops vault set` to run."""
    found = load_credentials(runtime)
    if isinstance(found, tuple):
        raise SPEC.not_configured(found)
    return found


# --------------------------------------------------------------------------- request shapes


def ticket_body(
    *,
    subject: str | None = None,
    comment: str | None = None,
    public: bool = True,
    priority: str | None = None,
    status: str | None = None,
    tags: list[str] | None = None,
    external_id: str | None = None,
    assignee_email: str | None = None,
) -> dict[str, Any]:
    """`{"ticket": {...}}` for POST/PUT /api/v2/tickets — only the fields that are set."""
    ticket: dict[str, Any] = {}
    if subject is not None:
        ticket["subject"] = subject
    if comment is not None:
        ticket["comment"] = {"body": comment, "public": public}
    if priority is not None:
        ticket["priority"] = priority
    if status is not None:
        ticket["status"] = status
    if tags is not None:
        ticket["tags"] = tags
    if external_id is not None:
        ticket["external_id"] = external_id
    if assignee_email is not None:
        ticket["assignee_email"] = assignee_email
    return {"ticket": ticket}


# --------------------------------------------------------------------------- mapping back


def parse_time(value: Any) -> datetime | None:
    """Zendesk ISO-8601 (`2026-11-01T10:00:00Z`) → aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local_fields(ticket: Mapping[str, Any], metric: Mapping[str, Any] | None) -> dict[str, Any]:
    """CsTicket column values from an exported Zendesk ticket (and its metric set, if sideloaded).

    First response comes from the metric set's calendar reply time: the export carries no comments.
    """
    created = parse_time(ticket.get("created_at"))
    if created is None:
        raise ValueError("ticket without created_at")
    priority = ticket.get("priority") if ticket.get("priority") in ZENDESK_PRIORITIES else "normal"
    status = ticket.get("status") if ticket.get("status") in ZENDESK_STATUSES else "open"
    tags = [str(t) for t in ticket.get("tags") or []]
    first_response_at = solved_at = None
    if metric:
        reply = (metric.get("reply_time_in_minutes") or {}).get("calendar")
        if isinstance(reply, int | float):
            first_response_at = created + timedelta(minutes=float(reply))
        solved_at = parse_time(metric.get("solved_at"))
    return {
        "subject": str(ticket.get("subject") or "(no subject)")[:300],
        "description": str(ticket.get("description") or ""),
        "priority": priority,
        "status": status,
        "channel": str((ticket.get("via") or {}).get("channel") or "zendesk")[:20],
        "tags": json.dumps(tags),
        "created_at": created,
        "updated_at": parse_time(ticket.get("updated_at")) or created,
        "first_response_at": first_response_at,
        "solved_at": solved_at,
    }


# --------------------------------------------------------------------------- client


def _json_body(response: Any, *, write: bool) -> dict[str, Any]:
    """The decoded JSON object of a 2xx response; a garbled body is a clear integration error.

    After a write we cannot tell what Zendesk did, so the outcome is `unknown`; after a read, `failed`.
    """
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrationUnavailable(
            "Zendesk answered with a body that is not valid JSON.",
            outcome="unknown" if write else "failed",
            retryable=False,
            hint="Check Zendesk's status page; verify in Zendesk whether the change was applied.",
        ) from exc
    if not isinstance(body, dict):
        raise IntegrationUnavailable(
            "Zendesk answered with an unexpected JSON shape.", outcome="unknown" if write else "failed"
        )
    return body


def _section(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise IntegrationUnavailable(
            f"Zendesk's answer has no '{key}' object.", outcome="unknown", retryable=False
        )
    return value


class ZendeskClient:
    """Typed calls to the Zendesk Support API v2 endpoints the CS server uses."""

    def __init__(self, credentials: ZendeskCredentials, settings: Any, **client_options: Any) -> None:
        from revops_core.integration import IntegrationClient

        async def auth() -> dict[str, str]:
            return credentials.auth_header()

        self._http = IntegrationClient(
            SPEC.provider, credentials.base_url, settings=settings, auth=auth, **client_options
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ZendeskClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, *, write: bool = False, **kwargs: Any) -> dict[str, Any]:
        # `write` requests are never resent after a timeout: a POST create or a PUT that adds a comment
        # would be applied twice (PUT is idempotent by RFC, not when it carries a new comment).
        if write:
            kwargs["idempotent"] = False
        return _json_body(await self._http.request(method, path, **kwargs), write=write)

    async def create_ticket(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/v2/tickets.json → the created ticket (sent once: a timeout's outcome is unknown)."""
        answer = await self._call("POST", "/api/v2/tickets.json", json=body, write=True)
        return _section(answer, "ticket")

    async def update_ticket(self, ticket_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /api/v2/tickets/{id}.json (a `comment` in the body adds a comment) → the ticket."""
        if not ticket_id.isdigit():
            raise ValidationFailed("A Zendesk ticket id is numeric.", field="ticket_id")
        answer = await self._call("PUT", f"/api/v2/tickets/{ticket_id}.json", json=body, write=True)
        return _section(answer, "ticket")

    async def list_comments(self, ticket_id: str) -> list[dict[str, Any]]:
        """GET /api/v2/tickets/{id}/comments.json (first page)."""
        answer = await self._call("GET", f"/api/v2/tickets/{ticket_id}/comments.json")
        return list(answer.get("comments") or [])

    async def search(self, query: str) -> list[dict[str, Any]]:
        """GET /api/v2/search.json?query=… (first page of results)."""
        answer = await self._call("GET", "/api/v2/search.json", params={"query": query})
        return list(answer.get("results") or [])

    async def get_user(self, user_id: str) -> dict[str, Any]:
        """GET /api/v2/users/{id}.json."""
        return _section(await self._call("GET", f"/api/v2/users/{user_id}.json"), "user")

    async def create_or_update_user(self, user: dict[str, Any]) -> dict[str, Any]:
        """POST /api/v2/users/create_or_update.json with `{"user": {...}}` (matched by email)."""
        answer = await self._call(
            "POST", "/api/v2/users/create_or_update.json", json={"user": user}, idempotent=True
        )
        return _section(answer, "user")

    async def export_tickets(
        self, *, start_time: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of the cursor-based incremental ticket export, with metric sets sideloaded."""
        params: dict[str, Any] = {"include": "metric_sets"}
        if cursor:
            params["cursor"] = cursor
        else:
            params["start_time"] = start_time or 0
        page = await self._call("GET", "/api/v2/incremental/tickets/cursor.json", params=params)
        # A page without its documented lists (or with a cursor that is not text) is a malformed
        # answer: report it as the vendor's fault, not as a crash of the caller reading the page.
        cursor_value = page.get("after_cursor")
        if (
            not isinstance(page.get("tickets"), list)
            or not isinstance(page.get("metric_sets") or [], list)
            or not (cursor_value is None or isinstance(cursor_value, str))
        ):
            raise IntegrationUnavailable(
                "Zendesk's ticket export page does not have the documented shape.",
                outcome="failed",
                retryable=False,
                hint="The vendor's response format may have changed; report it with the provider name.",
            )
        return page
