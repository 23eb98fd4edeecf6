"""OAuth 2.0 token manager: refresh before expiry, exactly once across coroutines and processes.

Tokens live in the vault (provider, name) as the fields `access_token`, `refresh_token`,
`expires_at`, `issued_at`, `state` and `generation`. A refresh happens when the remaining lifetime
drops below max(60 s, 10 % of the lifetime) plus a small per-instance jitter, and it is
single-flight twice over: an asyncio lock inside the process, and a cross-process lock (Redis when
configured, else a PostgreSQL advisory lock or, on SQLite, a lock file beside the database). After
taking the lock the store is read again, so a process that waited uses the token another one just
fetched instead of spending the refresh token a second time.

Refresh tokens may be single-use (rotation), so the bookkeeping is fail-closed:
- `state=refreshing` is saved before the request is sent. A process that dies mid-request leaves it
  behind, and the next caller asks for re-authorisation rather than resending a maybe-spent token.
- The response (with any rotated refresh token) is saved before the new access token is handed out.
- `invalid_grant` marks the grant revoked: `ReauthRequired`, and no further request is made.
- A timeout marks the refresh token possibly consumed (`outcome="unknown"`): it is never resent.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import anyio
import httpx

from revops_core.db import Database
from revops_core.errors import (
    IntegrationAuth,
    IntegrationUnavailable,
    NotFound,
    ReauthRequired,
    RevOpsError,
    classify,
)
from revops_core.logs import get_logger
from revops_core.secret_values import Secret
from revops_core.settings import Settings
from revops_core.vault import Vault

MIN_REFRESH_MARGIN_SECONDS: Final = 60.0
REFRESH_MARGIN_FRACTION: Final = 0.10
MAX_JITTER_SECONDS: Final = 30.0
JITTER_FRACTION_OF_LIFETIME: Final = 0.05

TokenState = Literal["ok", "refreshing", "consumed", "revoked"]

log = get_logger(__name__)


@dataclass(frozen=True)
class TokenResponse:
    """What a token endpoint returned. `refresh_token` is None when the vendor did not rotate it."""

    access_token: Secret
    expires_in: float
    refresh_token: Secret | None = None


@dataclass(frozen=True)
class StoredTokens:
    """The vault's view of one grant."""

    access_token: Secret
    refresh_token: Secret | None
    expires_at: float
    issued_at: float
    state: TokenState
    generation: int

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.issued_at)


RefreshFn = Callable[[Secret], Awaitable[TokenResponse]]
"""Exchange a refresh token for new tokens; raise ReauthRequired on invalid_grant."""


# --------------------------------------------------------------------------- the token endpoint


class OAuthRefresher:
    """RFC 6749 §6 refresh against a token endpoint, through an injected `httpx.AsyncClient`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token_url: str,
        *,
        client_id: str,
        client_secret: Secret | None = None,
        provider: str = "oauth",
    ) -> None:
        self.client = client
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.provider = provider

    async def __call__(self, refresh_token: Secret) -> TokenResponse:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.reveal(),
            "client_id": self.client_id,
        }
        if self.client_secret is not None:
            form["client_secret"] = self.client_secret.reveal()
        try:
            response = await self.client.post(
                self.token_url, data=form, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            # Not idempotent: a refresh that may have arrived may have rotated the token.
            raise classify(exc, provider=self.provider, idempotent=False) from None
        if response.status_code in (400, 401):
            if _oauth_error(response) == "invalid_grant":
                raise ReauthRequired(
                    f"{self.provider} rejected the refresh token (invalid_grant).", outcome="failed"
                )
            raise IntegrationAuth(
                f"{self.provider} refused the token refresh (HTTP {response.status_code}).",
                outcome="failed",
                hint="Check the OAuth client id and secret stored for this provider.",
            )
        if response.status_code != 200:
            raise classify(response.status_code, provider=self.provider, headers=dict(response.headers))
        return _parse_token_response(response, provider=self.provider)


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def _parse_token_response(response: httpx.Response, *, provider: str) -> TokenResponse:
    try:
        body = response.json()
        access = body["access_token"]
        expires_in = float(body["expires_in"])
        refresh = body.get("refresh_token")
        if not isinstance(access, str) or not access or expires_in <= 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        # The endpoint answered 200, so it may already have rotated the refresh token: outcome unknown.
        raise IntegrationUnavailable(
            f"{provider} answered the token refresh without a usable access_token/expires_in.",
            outcome="unknown",
            retryable=False,
        ) from None
    return TokenResponse(
        access_token=Secret(access),
        expires_in=expires_in,
        refresh_token=Secret(refresh) if isinstance(refresh, str) and refresh else None,
    )


# --------------------------------------------------------------------------- cross-process locks


class ProcessLock(Protocol):
    """A lock held across processes while one of them refreshes a grant."""

    def hold(self) -> Any:  # an async context manager
        ...


class FileLock:
    """SQLite deployments: `flock` on a file beside the database, released by the OS if we die.

    Not `BEGIN IMMEDIATE`: holding SQLite's single write lock across an HTTP call would stall
    every other writer, including the save of the refreshed tokens themselves.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a")
        try:
            await anyio.to_thread.run_sync(fcntl.flock, fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        finally:
            fh.close()


class AdvisoryLock:
    """PostgreSQL: a session-level advisory lock on its own connection, released if we die."""

    def __init__(self, db: Database, key: int) -> None:
        self.db = db
        self.key = key

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        from sqlalchemy import text

        conn = await anyio.to_thread.run_sync(
            lambda: self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        )
        try:
            await anyio.to_thread.run_sync(
                lambda: conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
            )
            try:
                yield
            finally:
                await anyio.to_thread.run_sync(
                    lambda: conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                )
        finally:
            await anyio.to_thread.run_sync(conn.close)


_REDIS_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class RedisLock:
    """Redis: SET NX with a lease (so a dead holder cannot block forever), released by compare-and-delete."""

    def __init__(self, url: str, key: str, *, lease_seconds: float, poll_seconds: float = 0.05) -> None:
        self.url = url
        self.key = key
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        import redis.asyncio as redis

        client = redis.Redis.from_url(self.url)
        token = uuid.uuid4().hex
        try:
            # Bounded wait: a live holder finishes within one lease, a dead one's lease expires.
            deadline = time.monotonic() + 2 * self.lease_seconds
            while not await client.set(self.key, token, nx=True, px=int(self.lease_seconds * 1000)):
                if time.monotonic() > deadline:
                    raise IntegrationUnavailable(
                        "Timed out waiting for another process's token refresh.", outcome="not_sent"
                    )
                await asyncio.sleep(self.poll_seconds)
            try:
                yield
            finally:
                await client.eval(_REDIS_RELEASE, 1, self.key, token)
        finally:
            await client.aclose()


def process_lock(db: Database, settings: Settings, lock_name: str) -> ProcessLock:
    """The right cross-process lock for this deployment."""
    digest = hashlib.sha256(f"revops-oauth:{lock_name}".encode()).digest()
    if settings.redis_url:
        lease = 2 * settings.http_timeout_seconds + 10
        return RedisLock(settings.redis_url, f"revops:oauth-lock:{digest.hex()[:32]}", lease_seconds=lease)
    if db.dialect == "postgresql":
        return AdvisoryLock(db, int.from_bytes(digest[:8], "big", signed=True))
    database = db.engine.url.database
    folder = Path(database).parent if database and database != ":memory:" else settings.data_dir
    return FileLock(folder / f".oauth-{digest.hex()[:24]}.lock")


# --------------------------------------------------------------------------- the manager


def _fingerprint(token: Secret) -> str:
    return hashlib.sha256(b"revops-oauth-ref:" + token.reveal().encode()).hexdigest()[:32]


class TokenManager:
    """Hands out a valid access token for one OAuth grant stored in the vault."""

    def __init__(
        self,
        vault: Vault,
        provider: str,
        refresh: RefreshFn,
        *,
        name: str = "oauth",
        server: str = "*",
        clock: Callable[[], float] = time.time,
        jitter_fraction: float | None = None,
        lock: ProcessLock | None = None,
    ) -> None:
        self.vault = vault
        self.provider = provider
        self.name = name
        self.server = server
        self._refresh_fn = refresh
        self._clock = clock
        # Drawn once per instance so many processes do not all decide to refresh at the same instant.
        self._jitter_fraction = random.random() if jitter_fraction is None else jitter_fraction
        self._lock = lock or process_lock(
            vault.db, vault.settings, f"{vault.tenant}/{server}/{provider}/{name}"
        )
        self._local = asyncio.Lock()
        self._cached: StoredTokens | None = None

    # ---------------------------------------------------------------- policy

    def refresh_margin(self, lifetime: float) -> float:
        """Seconds before expiry at which a token counts as due: max(60 s, 10 %) plus jitter."""
        jitter = self._jitter_fraction * min(MAX_JITTER_SECONDS, JITTER_FRACTION_OF_LIFETIME * lifetime)
        return max(MIN_REFRESH_MARGIN_SECONDS, REFRESH_MARGIN_FRACTION * lifetime) + jitter

    def is_due(self, tokens: StoredTokens) -> bool:
        return tokens.expires_at - self._clock() < self.refresh_margin(tokens.lifetime)

    # ---------------------------------------------------------------- storage

    def store(self, tokens: TokenResponse) -> StoredTokens:
        """Save a fresh grant (e.g. after the authorisation-code exchange); resets any failed state."""
        try:
            generation = self._load().generation + 1
        except NotFound:
            generation = 1
        return self._save(tokens, generation=generation, previous_refresh=None)

    def load(self) -> StoredTokens:
        """The stored grant, as the vault has it now (one audited decrypt)."""
        return self._load()

    def _load(self) -> StoredTokens:
        values = self.vault.get(self.provider, self.name, server=self.server)
        refresh = values.get("refresh_token")
        state = values["state"].reveal() if "state" in values else "ok"
        if (
            "state_ref" in values
            and refresh is not None
            and values["state_ref"].reveal() != _fingerprint(refresh)
        ):
            # Someone stored a new refresh token (`revops vault set …`): the failure was about the old one.
            state = "ok"
        if state not in ("ok", "refreshing", "consumed", "revoked"):
            raise ReauthRequired(
                f"The stored OAuth grant for {self.provider} is damaged.", hint=self._reconnect_hint()
            )
        try:
            # Missing times (tokens typed in by hand) make the grant due at once, so it is refreshed.
            expires_at = float(values["expires_at"].reveal()) if "expires_at" in values else 0.0
            issued_at = float(values["issued_at"].reveal()) if "issued_at" in values else 0.0
            generation = int(values["generation"].reveal()) if "generation" in values else 0
        except ValueError:
            raise ReauthRequired(
                f"The stored OAuth grant for {self.provider} is damaged.", hint=self._reconnect_hint()
            ) from None
        return StoredTokens(
            access_token=values.get("access_token", Secret("")),
            refresh_token=refresh,
            expires_at=expires_at,
            issued_at=issued_at,
            # Checked against TokenState's values above; `in` does not narrow a str to the Literal.
            state=state,  # type: ignore[arg-type]
            generation=generation,
        )

    def _save(
        self, tokens: TokenResponse, *, generation: int, previous_refresh: Secret | None
    ) -> StoredTokens:
        now = self._clock()
        refresh = tokens.refresh_token or previous_refresh
        fields = {
            "access_token": tokens.access_token.reveal(),
            "expires_at": repr(now + tokens.expires_in),
            "issued_at": repr(now),
            "state": "ok",
            "generation": str(generation),
        }
        if refresh is not None:
            fields["refresh_token"] = refresh.reveal()
            fields["state_ref"] = _fingerprint(refresh)
        self.vault.set(self.provider, self.name, fields, server=self.server, replace=True)
        return StoredTokens(tokens.access_token, refresh, now + tokens.expires_in, now, "ok", generation)

    def _set_state(self, state: TokenState, refresh: Secret) -> None:
        # state_ref ties the state to one refresh token, so storing a new token clears it.
        self.vault.set(
            self.provider, self.name, {"state": state, "state_ref": _fingerprint(refresh)}, server=self.server
        )

    # ---------------------------------------------------------------- the public call

    async def access_token(self) -> Secret:
        """A valid access token, refreshing it first when due (one refresh across all processes)."""
        cached = self._cached
        if cached is not None and not self.is_due(cached):
            return cached.access_token
        async with self._local:
            cached = self._cached
            if cached is not None and not self.is_due(cached):
                return cached.access_token  # another coroutine refreshed while we waited
            async with self._lock.hold():
                current = await anyio.to_thread.run_sync(self._load)
                self._raise_for_state(current)
                refreshed_elsewhere = cached is not None and current.generation != cached.generation
                if refreshed_elsewhere or not self.is_due(current):
                    self._cached = current
                    return current.access_token
                fresh = await self._refresh(current)
                self._cached = fresh
                return fresh.access_token

    def _raise_for_state(self, tokens: StoredTokens) -> None:
        if tokens.state == "revoked":
            raise ReauthRequired(
                f"{self.provider} revoked this grant (invalid_grant).",
                outcome="failed",
                hint=self._reconnect_hint(),
            )
        if tokens.state in ("refreshing", "consumed"):
            raise ReauthRequired(
                f"An earlier token refresh for {self.provider} did not complete; its refresh token may "
                "already be spent, so it is not sent again.",
                outcome="unknown",
                hint=self._reconnect_hint(),
            )

    async def _refresh(self, current: StoredTokens) -> StoredTokens:
        if current.refresh_token is None:
            raise ReauthRequired(
                f"No refresh token is stored for {self.provider}.", hint=self._reconnect_hint()
            )
        # Saved before sending: if we die mid-request, nobody resends a refresh token that may be spent.
        await anyio.to_thread.run_sync(self._set_state, "refreshing", current.refresh_token)
        log.info(
            "oauth.refresh_started", provider=self.provider, name=self.name, generation=current.generation
        )
        try:
            response = await self._refresh_fn(current.refresh_token)
        except Exception as exc:
            error = classify(exc, provider=self.provider, idempotent=False)
            await self._record_failure(error, current.refresh_token)
            raise self._as_client_error(error) from None
        # Saved before use: the rotated refresh token is durable before the access token leaves here.
        fresh = await anyio.to_thread.run_sync(
            lambda: self._save(
                response, generation=current.generation + 1, previous_refresh=current.refresh_token
            )
        )
        log.info("oauth.refreshed", provider=self.provider, name=self.name, generation=fresh.generation)
        return fresh

    async def _record_failure(self, error: RevOpsError, refresh: Secret) -> None:
        if isinstance(error, ReauthRequired) and error.outcome != "unknown":
            state: TokenState = "revoked"
        elif error.outcome == "unknown":
            state = "consumed"
        else:
            state = "ok"  # never sent, or plainly refused: the refresh token is still unspent
        await anyio.to_thread.run_sync(self._set_state, state, refresh)
        log.warning(
            "oauth.refresh_failed", provider=self.provider, name=self.name, code=error.code, state=state
        )

    def _as_client_error(self, error: RevOpsError) -> RevOpsError:
        if error.outcome == "unknown" and not isinstance(error, ReauthRequired):
            return ReauthRequired(
                f"The token refresh for {self.provider} got no clear answer; the refresh token may be "
                "spent, so it will not be sent again.",
                outcome="unknown",
                hint=self._reconnect_hint(),
            )
        if isinstance(error, ReauthRequired):
            error.hint = self._reconnect_hint()
        return error

    def _reconnect_hint(self) -> str:
        name_opt = "" if self.name == "default" else f" --name {self.name}"
        return (
            f"Reconnect {self.provider}: authorise again, then store the new refresh token with "
            f"`revops vault set {self.provider}{name_opt} refresh_token=…` (it is used at the next call)."
        )
