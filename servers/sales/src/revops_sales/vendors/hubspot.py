"""HubSpot CRM v3 client on `IntegrationClient`: search, batch writes, associations v4, pipelines, owners.

Auth, from the vault (provider `hubspot`):
- a private app: `revops vault set hubspot access_token=…` (sent as a bearer token); or
- OAuth 2.0: `revops vault set hubspot client_id=… client_secret=…` plus the grant in the entry named
  `oauth` (`revops vault set hubspot --name oauth refresh_token=…`). The access token is refreshed by
  `revops_core.oauth.TokenManager`: once, under an in-process and a cross-process lock, however many
  requests are in flight when it expires.

Rate limits (HubSpot: 100 requests per 10 s for a private app, searches 5 per second): two token
buckets keep under both at once — general calls 5/s with a burst of 5 (≤ 55 per rolling 10 s) and
searches 4/s with a burst of 4 (≤ 44), 99 together. They live in Redis when REDIS_URL is set, so
every process shares them. A 429's `Retry-After` is waited out by IntegrationClient.

Every request shape here is validated in the tests against the OpenAPI document derived from
HubSpot's SDK (`shared/specs/hubspot_crm_v3_derived_from_sdk_12.0.0.json`). Property names inside
`properties` are account-specific and cannot be checked from any spec (see SOURCES.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx

from revops_core.errors import IntegrationUnavailable, NotFound
from revops_core.resilience import RateLimit
from revops_core.secret_values import Secret
from revops_core.vendor_kit import SUITE_WIDE, VendorSpec, load_fields, text

if TYPE_CHECKING:
    from revops_core.server import Runtime

SPEC = VendorSpec(
    provider="hubspot",
    title="HubSpot",
    fields=("access_token",),
    placeholders={"access_token": "<private app access token>"},
)
OAUTH_SPEC = VendorSpec(
    provider="hubspot",
    title="HubSpot (OAuth)",
    fields=("client_id", "client_secret"),
    placeholders={"client_id": "<oauth client id>", "client_secret": "<oauth client secret>"},
)
OAUTH_GRANT = "oauth"  # vault entry name of the OAuth grant managed by TokenManager
BASE_URL = "https://api.hubapi.com"
TOKEN_URL = f"{BASE_URL}/oauth/v1/token"
GENERAL_LIMIT = RateLimit(rate_per_second=5, burst=5)
SEARCH_LIMIT = RateLimit(rate_per_second=4, burst=4)
PAGE_SIZE = 100  # the most HubSpot's search and batch endpoints take per request
SEARCH_WINDOW = 10_000  # a search query pages through at most this many results

ObjectType = Literal["companies", "contacts", "deals"]
OBJECT_TYPES: tuple[ObjectType, ...] = ("companies", "contacts", "deals")
# The property holding the last-modified time differs between contacts and the other objects.
MODIFIED_PROPERTY: dict[str, str] = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "notes": "hs_lastmodifieddate",
    "tasks": "hs_lastmodifieddate",
}
# HUBSPOT_DEFINED association type ids (primary): deal → company 5, contact → company 1.
ASSOCIATION_TYPE: dict[str, int] = {"deals": 5, "contacts": 1}


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class PrivateApp:
    access_token: Secret


@dataclass(frozen=True)
class OAuthApp:
    client_id: str
    client_secret: Secret
    grant_server: str  # the vault scope holding the `oauth` grant (this server's, else suite-wide)


Credentials = PrivateApp | OAuthApp


def setup_command() -> str:
    return SPEC.setup_command()


def _grant_server(runtime: Runtime) -> str | None:
    from revops_core.vault import Vault

    vault = Vault(runtime.db, runtime.settings)
    for server in dict.fromkeys((runtime.server_name, SUITE_WIDE)):
        try:
            values = vault.get(SPEC.provider, OAUTH_GRANT, server=server)
        except NotFound:
            continue
        if values.get("refresh_token") is not None or values.get("access_token") is not None:
            return server
    return None


def load_credentials(runtime: Runtime) -> Credentials | None:
    """The private-app token, else the OAuth app whose grant is stored; None when neither is set."""
    found = load_fields(runtime, SPEC)
    if not isinstance(found, tuple):
        return PrivateApp(found["access_token"])
    oauth = load_fields(runtime, OAUTH_SPEC)
    if isinstance(oauth, tuple):
        return None
    server = _grant_server(runtime)
    if server is None:
        return None
    return OAuthApp(text(oauth, "client_id"), oauth["client_secret"], server)


def require_credentials(runtime: Runtime) -> Credentials:
    """Credentials, or a configuration error naming the exact `revops vault set` command."""
    found = load_credentials(runtime)
    if found is None:
        error = SPEC.not_configured(SPEC.fields)
        error.hint = (
            f"Run `{SPEC.setup_command()}` (a private app), or for OAuth "
            f"`{OAUTH_SPEC.setup_command()}` and `revops vault set {SPEC.provider} --name {OAUTH_GRANT} "
            "refresh_token=<refresh token>`; then call again."
        )
        raise error
    return found


# --------------------------------------------------------------------------- shapes


def parse_time(value: Any) -> datetime | None:
    """HubSpot time: ISO-8601 (`2026-03-02T10:00:00.000Z`) or epoch milliseconds → aware UTC."""
    if value is None or value == "":
        return None
    raw = str(value).strip()
    if raw.isdigit():
        return datetime.fromtimestamp(int(raw) / 1000, UTC)
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """Aware datetime → HubSpot ISO-8601 with milliseconds, UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_date(value: date) -> str:
    """A date property (e.g. closedate) as midnight UTC, the way HubSpot stores dates."""
    return f"{value.isoformat()}T00:00:00.000Z"


def search_body(
    object_type: str, *, since: datetime | None, after: str | None, properties: list[str]
) -> dict[str, Any]:
    """POST /crm/v3/objects/{type}/search: modified at or after `since`, oldest first.

    GTE, not GT: records sharing the boundary millisecond are read again and skipped as unchanged,
    instead of being lost when a page ended between them.
    """
    modified = MODIFIED_PROPERTY[object_type]
    body: dict[str, Any] = {
        "sorts": [modified],
        "properties": sorted({*properties, modified}),
        "limit": PAGE_SIZE,
    }
    if since is not None:
        value = str(int(since.timestamp() * 1000))
        body["filterGroups"] = [{"filters": [{"propertyName": modified, "operator": "GTE", "value": value}]}]
    if after:
        body["after"] = after
    return body


def _malformed(what: str, *, write: bool = False) -> IntegrationUnavailable:
    return IntegrationUnavailable(
        f"HubSpot's {what} does not have the documented shape.",
        outcome="unknown" if write else "failed",
        retryable=False,
        hint="The vendor's response format may have changed; report it with the provider name.",
    )


def _json(response: httpx.Response, what: str, *, write: bool = False) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        raise _malformed(what, write=write) from None
    if not isinstance(body, dict):
        raise _malformed(what, write=write)
    return body


def _records(body: dict[str, Any], what: str, *, write: bool = False) -> list[dict[str, Any]]:
    """The `results` of a page or batch answer, each with a string id and a properties object."""
    results = body.get("results")
    if not isinstance(results, list):
        raise _malformed(what, write=write)
    for item in results:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("id"), str | int)
            or not isinstance(item.get("properties", {}), dict)
        ):
            raise _malformed(what, write=write)
    return results


def next_after(body: dict[str, Any], what: str) -> str | None:
    paging = body.get("paging")
    if paging is None:
        return None
    after = (paging.get("next") or {}).get("after") if isinstance(paging, dict) else None
    if after is not None and not isinstance(after, str):
        raise _malformed(what)
    return after or None


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    after: str | None


# --------------------------------------------------------------------------- client


class HubSpotClient:
    """Typed calls to the HubSpot endpoints the Sales sync uses."""

    def __init__(
        self,
        credentials: Credentials,
        runtime: Runtime,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **client_options: Any,
    ) -> None:
        from revops_core.integration import IntegrationClient

        self._token_http: httpx.AsyncClient | None = None
        self._auth = self._auth_for(credentials, runtime, transport, client_options.get("clock"))
        common: dict[str, Any] = {"settings": runtime.settings, "auth": self._auth, "transport": transport}
        self._http = IntegrationClient(
            SPEC.provider, BASE_URL, rate_limit=GENERAL_LIMIT, **common, **client_options
        )
        # Searches have their own, stricter limit: their own bucket (and breaker) key.
        self._search = IntegrationClient(
            f"{SPEC.provider}_search", BASE_URL, rate_limit=SEARCH_LIMIT, **common, **client_options
        )

    def _auth_for(self, credentials: Credentials, runtime: Runtime, transport: Any, clock: Any) -> Any:
        if isinstance(credentials, PrivateApp):
            header = {"Authorization": f"Bearer {credentials.access_token.reveal()}"}

            async def private() -> dict[str, str]:
                return header

            return private
        from revops_core.oauth import OAuthRefresher, TokenManager
        from revops_core.vault import Vault

        self._token_http = httpx.AsyncClient(
            transport=transport, timeout=runtime.settings.http_timeout_seconds
        )
        refresher = OAuthRefresher(
            self._token_http,
            TOKEN_URL,
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            provider=SPEC.provider,
        )
        manager = TokenManager(
            Vault(runtime.db, runtime.settings),
            SPEC.provider,
            refresher,
            name=OAUTH_GRANT,
            server=credentials.grant_server,
            **({"clock": clock.time} if clock is not None else {}),
        )

        async def oauth() -> dict[str, str]:
            return {"Authorization": f"Bearer {(await manager.access_token()).reveal()}"}

        return oauth

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._search.aclose()
        if self._token_http is not None:
            await self._token_http.aclose()

    async def __aenter__(self) -> HubSpotClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # Reads -----------------------------------------------------------------------------------
    async def search(
        self, object_type: str, *, since: datetime | None, after: str | None, properties: list[str]
    ) -> Page:
        """One page of records modified since `since`, oldest first (a search is a read: retried)."""
        body = search_body(object_type, since=since, after=after, properties=properties)
        response = await self._search.request(
            "POST", f"/crm/v3/objects/{object_type}/search", json=body, idempotent=True
        )
        data = _json(response, f"{object_type} search page")
        return Page(_records(data, f"{object_type} search page"), next_after(data, "search page"))

    async def archived(self, object_type: str, *, after: str | None) -> Page:
        """One page of archived (deleted) records: the search endpoint never returns them."""
        params: dict[str, Any] = {"archived": "true", "limit": PAGE_SIZE}
        if after:
            params["after"] = after
        response = await self._http.request("GET", f"/crm/v3/objects/{object_type}", params=params)
        data = _json(response, f"archived {object_type} page")
        return Page(_records(data, f"archived {object_type} page"), next_after(data, "archived page"))

    async def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """Associated record ids per `from` id (associations v4 batch read; a read, so retried)."""
        if not ids:
            return {}
        response = await self._http.request(
            "POST",
            f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
            json={"inputs": [{"id": i} for i in ids]},
            idempotent=True,
        )
        data = _json(response, "association batch")
        results = data.get("results")
        if not isinstance(results, list):
            raise _malformed("association batch")
        out: dict[str, list[str]] = {}
        for item in results:
            origin = item.get("from") if isinstance(item, dict) else None
            targets = item.get("to") if isinstance(item, dict) else None
            if not isinstance(origin, dict) or not isinstance(targets, list):
                raise _malformed("association batch")
            out[str(origin.get("id"))] = [
                str(t["toObjectId"]) for t in targets if isinstance(t, dict) and "toObjectId" in t
            ]
        return out

    async def pipelines(self, object_type: str = "deals") -> list[dict[str, Any]]:
        """Every pipeline of an object type with its stages."""
        response = await self._http.request("GET", f"/crm/v3/pipelines/{object_type}")
        data = _json(response, "pipeline list")
        results = data.get("results")
        if not isinstance(results, list) or not all(
            isinstance(p, dict) and isinstance(p.get("stages"), list) and "id" in p for p in results
        ):
            raise _malformed("pipeline list")
        return results

    async def owners(self) -> list[dict[str, Any]]:
        """Every owner (user), all pages."""
        owners: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        while True:
            data = _json(await self._http.request("GET", "/crm/v3/owners/", params=params), "owner list")
            owners.extend(_records(data, "owner list"))
            after = next_after(data, "owner list")
            if after is None:
                return owners
            params = {"limit": PAGE_SIZE, "after": after}

    # Writes ----------------------------------------------------------------------------------
    async def associate(self, from_type: str, to_type: str, pairs: list[tuple[str, str]]) -> None:
        """Give each record its default (primary) association to another (associations v4).

        Associating twice changes nothing, so this may be retried.
        """
        await self._http.request(
            "POST",
            f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default",
            json={"inputs": [{"from": {"id": a}, "to": {"id": b}} for a, b in pairs]},
            idempotent=True,
        )

    async def dissociate(self, from_type: str, to_type: str, pairs: list[tuple[str, str]]) -> None:
        """Remove associations (associations v4 batch archive; removing twice changes nothing)."""
        await self._http.request(
            "POST",
            f"/crm/v4/associations/{from_type}/{to_type}/batch/archive",
            json={"inputs": [{"from": {"id": a}, "to": [{"id": b}]} for a, b in pairs]},
            idempotent=True,
        )

    async def batch_create(self, object_type: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create up to 100 records. Sent once: after a timeout the outcome is unknown."""
        response = await self._http.request(
            "POST", f"/crm/v3/objects/{object_type}/batch/create", json={"inputs": inputs}, idempotent=False
        )
        return _records(_json(response, "batch create answer", write=True), "batch create answer", write=True)

    async def batch_update(self, object_type: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Update up to 100 records (setting the same values twice is harmless: retried)."""
        response = await self._http.request(
            "POST", f"/crm/v3/objects/{object_type}/batch/update", json={"inputs": inputs}, idempotent=True
        )
        return _records(_json(response, "batch update answer", write=True), "batch update answer", write=True)

    async def batch_archive(self, object_type: str, ids: list[str]) -> None:
        """Archive up to 100 records (archiving twice is harmless: retried). HubSpot answers 204."""
        await self._http.request(
            "POST",
            f"/crm/v3/objects/{object_type}/batch/archive",
            json={"inputs": [{"id": i} for i in ids]},
            idempotent=True,
        )


def properties_of(record: Mapping[str, Any]) -> dict[str, Any]:
    value = record.get("properties")
    return dict(value) if isinstance(value, dict) else {}
