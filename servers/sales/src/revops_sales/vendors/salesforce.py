"""Salesforce REST client on `IntegrationClient`: SOQL queries, deleted records, sObject collections.

Auth, from the vault (provider `salesforce`), one of:
- OAuth 2.0 web-server flow: `revops vault set salesforce client_id=… client_secret=…` plus the grant
  `revops vault set salesforce --name oauth refresh_token=…`. The access token is refreshed through
  `revops_core.oauth.TokenManager` (once, under its in-process and cross-process locks).
- JWT bearer flow: `revops vault set salesforce client_id=… username=… private_key=<PEM>`: an RS256
  assertion signed with that key is exchanged for an access token (no refresh token exists).

Salesforce's token answers carry `instance_url` (the org's API host; every data call goes there) but no
lifetime: the session lasts the org's timeout. A token is therefore used until Salesforce answers 401
(INVALID_SESSION_ID), then renewed once — however many requests saw that 401 — and the request resent
once. The web-server grant is also renewed before `SESSION_SECONDS` (Salesforce's default session
timeout, 2 h) so a long sync rarely meets the 401 at all. `instance_url` is kept in the vault entry
`instance`, written after every token answer (for a grant stored by hand:
`revops vault set salesforce --name instance instance_url=https://…`, else the first call renews the
token to learn it).

API allowance: every answer's `Sforce-Limit-Info: api-usage=N/M` is read (`usage`); callers stop when
N/M reaches their ceiling (`USAGE_CEILING`).

Request shapes are checked in the tests against the Postman collection Salesforce published
(`shared/specs/salesforce_platform_apis_postman_v1.json`: method, path, required parameters) and,
where it is silent (query-more URLs, collection update without an sObject segment, bodies), against
the shapes of Salesforce's REST reference written down once in `tests/salesforce_fake.py` (SHAPES).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from revops_core.errors import IntegrationAuth, IntegrationUnavailable, NotFound, classify
from revops_core.resilience import RateLimit
from revops_core.secret_values import Secret
from revops_core.vendor_kit import SUITE_WIDE, VendorSpec, load_fields, text

if TYPE_CHECKING:
    from revops_core.oauth import TokenManager, TokenResponse
    from revops_core.server import Runtime

PROVIDER = "salesforce"
SPEC = VendorSpec(
    provider=PROVIDER,
    title="Salesforce",
    fields=("client_id", "client_secret"),
    placeholders={"client_id": "<connected app consumer key>", "client_secret": "<consumer secret>"},
)
JWT_SPEC = VendorSpec(
    provider=PROVIDER,
    title="Salesforce (JWT bearer)",
    fields=("client_id", "username", "private_key"),
    placeholders={
        "client_id": "<connected app consumer key>",
        "username": "<integration user>",
        "private_key": "<PEM private key of the app's certificate>",
    },
)
OAUTH_GRANT = "oauth"  # vault entry of the web-server grant (TokenManager)
INSTANCE = "instance"  # vault entry holding the last instance_url Salesforce returned
LOGIN_URL = "https://login.salesforce.com"
TOKEN_URL = f"{LOGIN_URL}/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_VERSION = "59.0"
DATA = f"/services/data/v{API_VERSION}"
SESSION_SECONDS = 7200.0
JWT_LIFETIME = 180  # Salesforce accepts assertions up to 3 minutes ahead
COLLECTION_SIZE = 200  # the most records one sObject collections request takes
USAGE_CEILING = 0.9  # stop a sync once this fraction of the 24 h API allowance is used
# Salesforce enforces a daily total, not a per-second rate; this only keeps bursts polite.
LIMIT = RateLimit(rate_per_second=10, burst=10)
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class WebServerApp:
    client_id: str
    client_secret: Secret
    grant_server: str  # vault scope holding the `oauth` grant


@dataclass(frozen=True)
class JwtApp:
    client_id: str
    username: str
    private_key: Secret


Credentials = WebServerApp | JwtApp


def _grant_server(runtime: Runtime) -> str | None:
    from revops_core.vault import Vault

    vault = Vault(runtime.db, runtime.settings)
    for server in dict.fromkeys((runtime.server_name, SUITE_WIDE)):
        try:
            values = vault.get(PROVIDER, OAUTH_GRANT, server=server)
        except NotFound:
            continue
        if values.get("refresh_token") is not None:
            return server
    return None


def require_credentials(runtime: Runtime) -> Credentials:
    """The JWT app, else the web-server app with its stored grant; else a configuration error."""
    jwt = load_fields(runtime, JWT_SPEC)
    if not isinstance(jwt, tuple):
        return JwtApp(text(jwt, "client_id"), text(jwt, "username"), jwt["private_key"])
    app = load_fields(runtime, SPEC)
    server = None if isinstance(app, tuple) else _grant_server(runtime)
    if isinstance(app, tuple) or server is None:
        error = SPEC.not_configured(SPEC.fields)
        error.hint = (
            f"For the web-server flow run `{SPEC.setup_command()}` and `revops vault set {PROVIDER} "
            f"--name {OAUTH_GRANT} refresh_token=<refresh token>`; for the JWT bearer flow "
            f"`{JWT_SPEC.setup_command()}`. Then call again."
        )
        raise error
    return WebServerApp(text(app, "client_id"), app["client_secret"], server)


# --------------------------------------------------------------------------- shapes


def parse_time(value: Any) -> datetime | None:
    """Salesforce dateTime (`2026-03-01T09:00:00.000+0000`) or date (`2026-04-30`) → aware UTC."""
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """A SOQL dateTime literal, UTC, whole seconds (SOQL takes no fraction; with `>=` the floor only
    reads the boundary second again)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_param(value: datetime) -> str:
    """A dateTime URL parameter as getDeleted documents it (`YYYY-MM-DDThh:mm:ss+hh:mm`)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def format_date(value: date) -> str:
    return value.isoformat()


def soql(sobject: str, fields: list[str], *, since: datetime | None) -> str:
    """Records modified at or after `since`, oldest first.

    `>=`, not `>`: records sharing the boundary millisecond are read again and skipped as unchanged,
    instead of being lost when a run stopped between them. Id breaks ties so pages are stable.
    """
    names = ", ".join(dict.fromkeys(["Id", *fields, "SystemModstamp"]))
    where = f" WHERE SystemModstamp >= {format_time(since)}" if since is not None else ""
    return f"SELECT {names} FROM {sobject}{where} ORDER BY SystemModstamp, Id"


def parse_usage(headers: httpx.Headers) -> tuple[int, int] | None:
    found = _USAGE.search(headers.get("sforce-limit-info", ""))
    return (int(found.group(1)), int(found.group(2))) if found else None


def _malformed(what: str, *, write: bool = False) -> IntegrationUnavailable:
    return IntegrationUnavailable(
        f"Salesforce's {what} does not have the documented shape.",
        outcome="unknown" if write else "failed",
        retryable=False,
        hint="The vendor's response format may have changed; report it with the provider name.",
    )


def _json(response: httpx.Response, what: str, *, write: bool = False) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise _malformed(what, write=write) from None


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_url: str | None  # `nextRecordsUrl`: the rest of this query


@dataclass(frozen=True)
class Deleted:
    ids: list[tuple[str, datetime | None]]  # record id, when it was deleted
    covered_until: datetime | None  # `latestDateCovered`: the next window starts here


# --------------------------------------------------------------------------- auth


class _Session:
    """The access token and instance URL; renewed at most once per rejected token."""

    def __init__(
        self,
        credentials: Credentials,
        runtime: Runtime,
        http: httpx.AsyncClient,
        clock: Callable[[], float],
    ) -> None:
        self._credentials = credentials
        self._runtime = runtime
        self._http = http
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: Secret | None = None  # JWT flow: the current access token
        self.instance_url: str | None = None
        self.generation = 0  # bumped on every renewal after a 401
        self._manager = self._new_manager() if isinstance(credentials, WebServerApp) else None

    def _vault(self) -> Any:
        from revops_core.vault import Vault

        return Vault(self._runtime.db, self._runtime.settings)

    def _new_manager(self) -> TokenManager:
        from revops_core.oauth import TokenManager

        assert isinstance(self._credentials, WebServerApp)
        return TokenManager(
            self._vault(),
            PROVIDER,
            self._refresh,
            name=OAUTH_GRANT,
            server=self._credentials.grant_server,
            clock=self._clock,
        )

    async def _post_token(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.post(TOKEN_URL, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise classify(exc, provider=PROVIDER, idempotent=False) from None
        if response.status_code in (400, 401):
            raise IntegrationAuth(
                f"Salesforce refused the token request (HTTP {response.status_code}).",
                outcome="failed",
                hint=f"Check the `revops vault set {PROVIDER} …` entries: {JWT_SPEC.setup_command()} "
                f"(JWT) or {SPEC.setup_command()} with --name {OAUTH_GRANT} refresh_token=… (web server).",
            )
        if response.status_code != 200:
            raise classify(response.status_code, provider=PROVIDER, headers=dict(response.headers))
        body = _json(response, "token answer", write=True)
        access = body.get("access_token") if isinstance(body, dict) else None
        instance = body.get("instance_url") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access or not isinstance(instance, str):
            raise _malformed("token answer", write=True)
        if not instance.startswith("https://"):
            raise _malformed("instance_url", write=True)
        self.instance_url = url = instance.rstrip("/")
        await anyio.to_thread.run_sync(
            lambda: self._vault().set(PROVIDER, INSTANCE, {"instance_url": url}, server=self._scope())
        )
        return dict(body)

    def _scope(self) -> str:
        if isinstance(self._credentials, WebServerApp):
            return self._credentials.grant_server
        return self._runtime.server_name

    async def _refresh(self, refresh_token: Secret) -> TokenResponse:
        from revops_core.oauth import TokenResponse

        assert isinstance(self._credentials, WebServerApp)
        body = await self._post_token(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token.reveal(),
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret.reveal(),
            }
        )
        rotated = body.get("refresh_token")
        return TokenResponse(
            Secret(body["access_token"]),
            SESSION_SECONDS,
            Secret(rotated) if isinstance(rotated, str) and rotated else None,
        )

    def assertion(self) -> str:
        """The RS256-signed JWT bearer assertion (RFC 7523) for the JWT app."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        assert isinstance(self._credentials, JwtApp)
        claims = {
            "iss": self._credentials.client_id,
            "sub": self._credentials.username,
            "aud": LOGIN_URL,
            "exp": int(self._clock()) + JWT_LIFETIME,
        }
        signing_input = f"{_b64({'alg': 'RS256'})}.{_b64(claims)}".encode()
        try:
            key = serialization.load_pem_private_key(
                self._credentials.private_key.reveal().encode(), password=None
            )
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise IntegrationAuth(
                "The stored Salesforce private_key is not an unencrypted RSA key in PEM form.",
                outcome="failed",
                hint=f"Run `{JWT_SPEC.setup_command(('private_key',))}`.",
            )
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64url(signature)}"

    async def _known_instance(self) -> None:
        if self.instance_url is not None:
            return
        scope = self._scope()

        def read() -> str | None:
            try:
                return text(self._vault().get(PROVIDER, INSTANCE, server=scope), "instance_url") or None
            except NotFound:
                return None

        self.instance_url = await anyio.to_thread.run_sync(read)

    async def headers(self) -> dict[str, str]:
        if self._manager is not None:
            token = await self._manager.access_token()
            await self._known_instance()
            if self.instance_url is None:  # a grant typed in by hand: its token says where
                await self.renew(self.generation)
                token = await self._manager.access_token()
            return {"Authorization": f"Bearer {token.reveal()}"}
        async with self._lock:
            if self._token is None:
                body = await self._post_token({"grant_type": JWT_GRANT, "assertion": self.assertion()})
                self._token = Secret(body["access_token"])
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    async def renew(self, seen: int) -> None:
        """Salesforce rejected the token of generation `seen`: get a new one, unless already done."""
        async with self._lock:
            if self.generation != seen:
                return  # another request renewed it meanwhile
            if self._manager is None:
                self._token = None
                self.generation += 1
                return
            assert isinstance(self._credentials, WebServerApp)
            server = self._credentials.grant_server
            # Marked expired in the vault, so the (new) manager refreshes it under its locks.
            await anyio.to_thread.run_sync(
                lambda: self._vault().set(PROVIDER, OAUTH_GRANT, {"expires_at": "0"}, server=server)
            )
            self._manager = self._new_manager()
            # Bumped last: a request that read the old generation was sent with the old token.
            self.generation += 1


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


# --------------------------------------------------------------------------- client


class SalesforceClient:
    """Typed calls to the Salesforce REST endpoints the Sales sync uses."""

    def __init__(
        self,
        credentials: Credentials,
        runtime: Runtime,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **client_options: Any,
    ) -> None:
        from revops_core.integration import IntegrationClient

        clock = client_options.get("clock")
        self._time: Callable[[], float] = clock.time if clock is not None else time.time
        self._token_http = httpx.AsyncClient(
            transport=transport, timeout=runtime.settings.http_timeout_seconds
        )
        self._session = _Session(credentials, runtime, self._token_http, self._time)
        self.usage: tuple[int, int] | None = None  # the last `api-usage=N/M` Salesforce reported
        # URLs are absolute (the instance is known only once a token is): the base URL is unused.
        self._http = IntegrationClient(
            PROVIDER,
            LOGIN_URL,
            settings=runtime.settings,
            auth=self._session.headers,
            transport=transport,
            rate_limit=LIMIT,
            **client_options,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._token_http.aclose()

    def now(self) -> datetime:
        """The client's clock (the vendor seam's in tests): ends getDeleted windows."""
        return datetime.fromtimestamp(self._time(), UTC)

    async def __aenter__(self) -> SalesforceClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One call on the org's instance; a rejected token is renewed once and the call resent."""
        for attempt in (1, 2):
            seen = self._session.generation
            await self._session.headers()  # learns the instance URL with the token
            url = f"{self._session.instance_url}{path}"
            try:
                response = await self._http.request(method, url, **options)
            except IntegrationAuth:
                # A 401 means Salesforce did nothing: resending (even a create) is safe.
                if attempt == 2:
                    raise
                await self._session.renew(seen)
                continue
            self.usage = parse_usage(response.headers) or self.usage
            return response
        raise AssertionError("unreachable")

    # Reads -----------------------------------------------------------------------------------
    async def query(
        self, statement: str | None = None, *, next_url: str | None = None, keyed: bool = True
    ) -> Page:
        """The first page of a SOQL query, or the page at its `nextRecordsUrl` (reads: retried).

        `keyed`: every record must carry its `Id` (sObject rows; OpportunityStage rows have none)."""
        if next_url is not None:
            if not next_url.startswith(f"{DATA}/query/"):
                raise _malformed("nextRecordsUrl")
            response = await self._request("GET", next_url)
        else:
            response = await self._request("GET", f"{DATA}/query/", params={"q": statement})
        body = _json(response, "query page")
        records = body.get("records") if isinstance(body, dict) else None
        done = body.get("done") if isinstance(body, dict) else None
        following = body.get("nextRecordsUrl") if isinstance(body, dict) else None
        if not isinstance(records, list) or not isinstance(done, bool):
            raise _malformed("query page")
        if not all(isinstance(r, dict) and (not keyed or isinstance(r.get("Id"), str)) for r in records):
            raise _malformed("query page")
        if not done and not isinstance(following, str):
            raise _malformed("query page")
        return Page(records, None if done else following)

    async def query_all(self, statement: str, *, keyed: bool = True) -> list[dict[str, Any]]:
        """Every record of a small query (stages, users), all pages."""
        page = await self.query(statement, keyed=keyed)
        records = list(page.records)
        while page.next_url is not None:
            page = await self.query(next_url=page.next_url, keyed=keyed)
            records.extend(page.records)
        return records

    async def deleted(self, sobject: str, start: datetime, end: datetime) -> Deleted:
        """Records deleted in [start, end] (getDeleted; Salesforce keeps them about 15 days)."""
        response = await self._request(
            "GET",
            f"{DATA}/sobjects/{sobject}/deleted/",
            params={"start": format_param(start), "end": format_param(end)},
        )
        body = _json(response, "deleted records")
        rows = body.get("deletedRecords") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("id"), str) for r in rows
        ):
            raise _malformed("deleted records")
        try:
            ids = [(r["id"], parse_time(r.get("deletedDate"))) for r in rows]
            covered = parse_time(body.get("latestDateCovered"))
        except (ValueError, TypeError):
            raise _malformed("deleted records") from None
        return Deleted(ids, covered)

    # Writes ----------------------------------------------------------------------------------
    async def _collection(self, method: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = await self._request(
            method,
            f"{DATA}/composite/sobjects",
            json={"allOrNone": False, "records": records},
            idempotent=method == "PATCH",
        )
        results = _json(response, "collection answer", write=True)
        if not isinstance(results, list) or len(results) != len(records):
            raise _malformed("collection answer", write=True)
        if not all(isinstance(r, dict) and isinstance(r.get("success"), bool) for r in results):
            raise _malformed("collection answer", write=True)
        return results

    async def create(self, sobject: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create up to 200 records; one result per record, in order. Sent once (not idempotent)."""
        return await self._collection("POST", [{"attributes": {"type": sobject}, **r} for r in records])

    async def update(self, sobject: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Update up to 200 records (each with its `Id`); setting the same values twice is harmless."""
        return await self._collection("PATCH", [{"attributes": {"type": sobject}, **r} for r in records])
