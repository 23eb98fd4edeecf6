"""`IntegrationClient`: the only way any server talks to a vendor.

One `httpx.AsyncClient` wrapped in the suite's resilience rules, so every vendor call behaves alike:

- per-attempt timeout (`http_timeout_seconds`) inside an overall deadline (`http_deadline_seconds`);
- retries (tenacity) with capped, jittered exponential backoff — only for requests that are safe to
  repeat: idempotent methods, requests carrying an idempotency key, or failures where the vendor
  cannot have acted (connection refused, HTTP 429). A non-idempotent request that timed out is sent
  once and reported with `outcome="unknown"`;
- `Retry-After` (seconds or HTTP date) and vendor quota headers (`X-RateLimit-Remaining/Reset`,
  `RateLimit-Remaining/Reset`) are waited out, within the deadline — a wait that cannot fit fails
  at once with `rate_limited` and `retry_after`;
- a circuit breaker per (provider, host) and an optional client-side token bucket, shared through
  Redis when configured;
- one structured log line per attempt (provider, method, path without query, status, attempt,
  elapsed) — never headers, query strings or bodies, which carry credentials and personal data.

Only 2xx responses are returned; everything else raises a `revops_core.errors` class.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from revops_core.clock import SYSTEM_CLOCK, Clock
from revops_core.errors import (
    CircuitOpen,
    ConfigurationError,
    IntegrationUnavailable,
    RateLimited,
    RevOpsError,
    classify,
    parse_retry_after,
)
from revops_core.logs import get_logger
from revops_core.resilience import (
    LOCAL_STORE,
    Backoff,
    BreakerPolicy,
    CircuitBreaker,
    MemoryStore,
    Permit,
    RateLimit,
    RedisStore,
    TokenBucket,
    vendor_quota_spent,
    vendor_reset_seconds,
    wait_for_hold,
)

if TYPE_CHECKING:
    import redis as redis_lib

    from revops_core.settings import Settings

__all__ = ["IDEMPOTENT_METHODS", "IntegrationClient", "RateLimit"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
"""Methods RFC 9110 defines as idempotent: safe to resend after a timeout."""

AuthProvider = Callable[[], Awaitable[dict[str, str]]]
ItemsSpec = str | Callable[[Any], list[Any]]
CursorSpec = str | Callable[[httpx.Response, Any], str | None] | None

_log = get_logger("revops.http")
# httpx logs every request's full URL at INFO — query strings included, where vendors such as
# Mixpanel or Google take API keys. Our own attempt line replaces it.
logging.getLogger("httpx").setLevel(logging.WARNING)


class IntegrationClient:
    """Resilient async HTTP client for one vendor API.

    `auth` is awaited before every attempt and returns headers (e.g. a fresh bearer token from the
    OAuth token manager), so a retry after a token refresh uses the new token.
    Use as `async with IntegrationClient(...) as client:` or call `aclose()`.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        settings: Settings,
        auth: AuthProvider | None = None,
        default_headers: dict[str, str] | None = None,
        rate_limit: RateLimit | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        redis: redis_lib.Redis | Any | None = None,
        idempotency_header: str = "Idempotency-Key",
        backoff: Backoff | None = None,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.rate_limit = rate_limit
        self.idempotency_header = idempotency_header
        self.backoff = backoff or Backoff()
        self._auth = auth
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=default_headers,
            transport=transport,
            timeout=settings.http_timeout_seconds,
            # No redirects: httpx would drop Authorization on a cross-origin hop, but not API-key
            # headers such as X-Api-Key. A 3xx is reported, never followed.
            follow_redirects=False,
        )
        self._owned_redis: Any = None
        if redis is None and settings.redis_url:
            import redis.asyncio as redis_asyncio

            redis = self._owned_redis = redis_asyncio.Redis.from_url(settings.redis_url)
        self.store: RedisStore | MemoryStore = RedisStore(redis) if redis is not None else LOCAL_STORE
        self._policy = BreakerPolicy.from_settings(settings)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._buckets: dict[str, TokenBucket] = {}

    # Lifecycle -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close connections (and the Redis client this object created, if any)."""
        await self._http.aclose()
        if self._owned_redis is not None:
            await self._owned_redis.aclose()

    async def __aenter__(self) -> IntegrationClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # Resilience parts, one per host ----------------------------------------------------------
    def _key(self, url: httpx.URL) -> str:
        host = url.host if url.port is None else f"{url.host}:{url.port}"
        # The tenant keeps two suites sharing one Redis (or tests sharing one process) apart.
        return f"{self.settings.tenant}:{self.provider}:{host}"

    def _resolve(self, path: str | httpx.URL) -> httpx.URL:
        """The absolute URL for `path`, joined to the base URL's path like httpx does."""
        url = httpx.URL(path)
        if not url.is_relative_url:
            return url
        base = self._http.base_url
        return base.copy_with(raw_path=base.raw_path + url.raw_path.lstrip(b"/"))

    def breaker_for(self, url: str | httpx.URL | None = None) -> CircuitBreaker:
        """The breaker guarding `url`'s host (default: the base URL's host)."""
        key = self._key(self._http.base_url if url is None else self._resolve(url))
        if key not in self._breakers:
            self._breakers[key] = CircuitBreaker(
                self.provider, key, policy=self._policy, store=self.store, clock=self.clock
            )
        return self._breakers[key]

    def _bucket_for(self, key: str) -> TokenBucket | None:
        if self.rate_limit is None:
            return None
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(
                self.provider, key, self.rate_limit, store=self.store, clock=self.clock
            )
        return self._buckets[key]

    # Requests --------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one logical request (with retries); return a 2xx response or raise a RevOpsError.

        `idempotent` overrides the method's default (e.g. `True` for a POST search endpoint);
        an `idempotency_key` (sent as the `Idempotency-Key` header) always makes retries safe.
        """
        outgoing = self._outgoing(method, path, params, json, content, headers, idempotency_key, idempotent)
        return await self._send(outgoing, stream=False)

    async def get_json(
        self, path: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET and decode the JSON body (None for an empty body)."""
        response = await self.request("GET", path, params=params, headers=headers)
        return self._decode(response, safe=True)

    async def post_json(
        self,
        path: str,
        json: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """POST a JSON body and decode the JSON answer (None for an empty body)."""
        response = await self.request(
            "POST",
            path,
            params=params,
            json=json,
            headers=headers,
            idempotency_key=idempotency_key,
            idempotent=idempotent,
        )
        return self._decode(response, safe=bool(idempotent or idempotency_key))

    async def stream_lines(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> AsyncIterator[str]:
        """Yield the non-empty lines of a streamed body (NDJSON exports such as Mixpanel's).

        Connecting and the status check are retried like `request()`; once lines flow, a broken
        stream raises `IntegrationUnavailable` (the caller decides whether to restart the export).
        To stop early, iterate inside `contextlib.aclosing(...)` so the connection is released at once.
        """
        outgoing = self._outgoing(method, path, params, json, None, headers, None, idempotent)
        response = await self._send(outgoing, stream=True)
        try:
            async for line in response.aiter_lines():
                if line.strip():
                    yield line
        except httpx.HTTPError:
            raise IntegrationUnavailable(
                f"The {self.provider} stream broke off before it ended.", outcome="failed"
            ) from None  # httpx errors carry the URL, query secrets included
        finally:
            await response.aclose()

    # Pagination ------------------------------------------------------------------------------
    async def paginate_cursor(
        self,
        path: str,
        *,
        items: ItemsSpec = "results",
        next_cursor: CursorSpec = None,
        cursor_param: str | None = "cursor",
        params: Mapping[str, Any] | None = None,
        method: Literal["GET", "POST"] = "GET",
        json: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int | None = None,
    ) -> AsyncIterator[Any]:
        """Yield every item of a cursor-paginated list.

        - `items`: dotted path to the page's list in the body (`"results"`, `"data.items"`) or a
          function of the body.
        - `next_cursor`: dotted path to the next cursor in the body (`"paging.next.after"`), a
          function `(response, body) -> cursor | None`, or None to follow the `Link: rel="next"`
          header.
        - `cursor_param`: query parameter (or, for `method="POST"`, JSON field) carrying the
          cursor; None when the cursor is itself a URL or path to fetch (Link headers, Zendesk
          `next_page`, Salesforce `nextRecordsUrl`).
        - `max_pages`: stop after this many pages (None: until the vendor says there are no more).
        Pagination is a read, so every page may be retried even when sent as POST.
        A vendor that hands back a cursor it already gave is an error, not an endless loop.
        """
        query = dict(params or {})
        body = dict(json) if json is not None else None
        url = path
        seen: set[str] = set()
        pages = 0
        while True:
            response = await self.request(
                method, url, params=query, json=body, headers=headers, idempotent=True
            )
            data = self._decode(response, safe=True)
            for item in self._items(data, items):
                yield item
            pages += 1
            cursor = self._next_cursor(response, data, next_cursor)
            if cursor is None or cursor == "" or (max_pages is not None and pages >= max_pages):
                return
            if cursor in seen:
                raise IntegrationUnavailable(
                    f"{self.provider} returned the same page cursor twice; pagination stopped.",
                    outcome="failed",
                    retryable=False,
                )
            seen.add(cursor)
            if cursor_param is None:
                self._check_same_host(cursor)
                url, query = cursor, {}  # the cursor carries its own query string
            elif method == "POST":
                body = {**(body or {}), cursor_param: cursor}
            else:
                query = {**query, cursor_param: cursor}

    async def paginate_pages(
        self,
        path: str,
        *,
        items: ItemsSpec = "results",
        page_param: str = "page",
        first_page: int = 1,
        page_size: int | None = None,
        size_param: str | None = None,
        has_more: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int | None = None,
    ) -> AsyncIterator[Any]:
        """Yield every item of a page-numbered list (`?page=1,2,…`).

        Stops at an empty page, at a page shorter than `page_size`, when the body's `has_more`
        (dotted path) is false, or after `max_pages` pages.
        """
        query = dict(params or {})
        if size_param is not None and page_size is not None:
            query[size_param] = page_size
        page = first_page
        while True:
            data = await self.get_json(path, params={**query, page_param: page}, headers=headers)
            batch = self._items(data, items)
            for item in batch:
                yield item
            pages = page - first_page + 1
            if not batch or (page_size is not None and len(batch) < page_size):
                return
            if has_more is not None and not _dig(data, has_more):
                return
            if max_pages is not None and pages >= max_pages:
                return
            page += 1

    def _check_same_host(self, link: str) -> None:
        """Refuse a next-page link to another host: our credentials would go along with it."""
        if self._resolve(link).host != self._http.base_url.host:
            raise IntegrationUnavailable(
                f"{self.provider} pointed pagination at another host; not followed.",
                outcome="failed",
                retryable=False,
                hint="Report this to your administrator; the vendor response looks tampered with.",
            )

    def _items(self, data: Any, spec: ItemsSpec) -> list[Any]:
        found = spec(data) if callable(spec) else _dig(data, spec)
        if not isinstance(found, list):
            where = spec if isinstance(spec, str) else "items"
            raise IntegrationUnavailable(
                f"{self.provider} answered without the expected list ({where}).",
                outcome="failed",
                retryable=False,
                hint="The vendor's response format may have changed; report it with the provider name.",
            )
        return found

    @staticmethod
    def _next_cursor(response: httpx.Response, data: Any, spec: CursorSpec) -> str | None:
        if spec is None:
            return response.links.get("next", {}).get("url")
        value = spec(response, data) if callable(spec) else _dig(data, spec)
        return None if value is None else str(value)

    def _decode(self, response: httpx.Response, *, safe: bool) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise IntegrationUnavailable(
                f"{self.provider} answered with a body that is not JSON.",
                # The vendor accepted the request; for a write we cannot tell what it did.
                outcome="failed" if safe else "unknown",
                retryable=False,
            ) from None

    # The engine ------------------------------------------------------------------------------
    def _outgoing(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | str | None,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        idempotent: bool | None,
    ) -> _Outgoing:
        method = method.upper()
        safe = idempotency_key is not None or (
            idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        )
        extra = dict(headers or {})
        if idempotency_key is not None:
            extra[self.idempotency_header] = idempotency_key
        return _Outgoing(method, path, params or None, json, content, extra, safe)

    async def _send(self, outgoing: _Outgoing, *, stream: bool) -> httpx.Response:
        deadline = self.clock.monotonic() + self.settings.http_deadline_seconds
        attempts = 0
        last_error: RevOpsError | None = None

        async def attempt() -> httpx.Response:
            nonlocal attempts, last_error
            attempts += 1
            try:
                return await self._attempt(outgoing, deadline=deadline, attempt=attempts, stream=stream)
            except CircuitOpen as exc:
                if last_error is not None:
                    # Our own failures opened the breaker mid-retry: an earlier attempt did reach
                    # the vendor, so "not_sent" would be a lie about the side effect.
                    exc.outcome = last_error.outcome
                    exc.details["last_error"] = last_error.code
                raise
            except RevOpsError as exc:
                last_error = exc
                raise

        retrying = AsyncRetrying(
            sleep=self.clock.sleep,
            retry=retry_if_exception(lambda exc: _may_retry(exc, safe=outgoing.safe)),
            wait=self._wait,
            stop=lambda rs: self._stop(rs, deadline),
            reraise=True,
        )
        return await retrying(attempt)

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return self.backoff.delay(retry_state.attempt_number)

    def _stop(self, retry_state: RetryCallState, deadline: float) -> bool:
        if retry_state.attempt_number >= self.settings.http_max_attempts:
            return True
        # A wait that would end past the deadline is not started: the caller gets the error now.
        return retry_state.upcoming_sleep > deadline - self.clock.monotonic()

    async def _attempt(
        self, outgoing: _Outgoing, *, deadline: float, attempt: int, stream: bool
    ) -> httpx.Response:
        url = self._resolve(outgoing.path)
        key = self._key(url)
        try:
            permit = await self.breaker_for(url).admit()
        except CircuitOpen:
            _log.info(
                "http.refused",
                provider=self.provider,
                method=outgoing.method,
                path=url.path,
                attempt=attempt,
                error=CircuitOpen.code,
            )
            raise
        try:
            await wait_for_hold(self.store, key, self.clock, deadline, self.provider)
            bucket = self._bucket_for(key)
            if bucket is not None:
                await bucket.acquire(deadline)
            send_headers = dict(outgoing.headers)
            if self._auth is not None:
                send_headers.update(await self._auth())
        except BaseException:
            await permit.release()
            raise
        remaining = max(0.001, deadline - self.clock.monotonic())
        request = self._http.build_request(
            outgoing.method,
            url,
            params=outgoing.params,
            json=outgoing.json,
            content=outgoing.content,
            headers=send_headers,
            timeout=httpx.Timeout(min(self.settings.http_timeout_seconds, remaining)),
        )
        started = self.clock.monotonic()
        try:
            response = await self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            await self._bookkeep(permit, ok=False)
            error = classify(exc, provider=self.provider, sent=True, idempotent=outgoing.safe)
            self._log(request, attempt, started, status=None, error=error)
            raise error from None  # httpx errors carry the URL, query secrets included
        except BaseException:
            await permit.release()  # cancelled mid-flight: free a probe lease for the next caller
            raise

        status = response.status_code
        if 200 <= status < 300:
            await self._bookkeep(permit, ok=True, key=key, hold=self._quota_reset(response.headers))
            self._log(request, attempt, started, status=status, error=None)
            return response
        await response.aclose()
        error = classify(
            status, provider=self.provider, headers=dict(response.headers), idempotent=outgoing.safe
        )
        wait = self._retry_after(response.headers)
        if wait is not None and isinstance(error, RateLimited | IntegrationUnavailable):
            error.retry_after = wait
        # 4xx other than 429 means the vendor is up and judged our request: not a breaker failure.
        # After a 429 every caller of this vendor waits, not just this one.
        await self._bookkeep(
            permit,
            ok=not (status == 429 or status >= 500),
            key=key,
            hold=wait if status == 429 else self._quota_reset(response.headers),
        )
        self._log(request, attempt, started, status=status, error=error)
        raise error

    async def _bookkeep(
        self, permit: Permit, *, ok: bool, key: str | None = None, hold: float | None = None
    ) -> None:
        """Record the outcome in the breaker and any vendor-requested pause.

        Runs after the request reached the vendor, so a failing shared store must not replace
        the vendor's answer (a POST that succeeded must be reported as done): it is logged instead.
        """
        try:
            await (permit.success() if ok else permit.failure())
            if key is not None and hold:
                await self.store.hold(key, self.clock.time(), hold)
        except ConfigurationError as exc:
            _log.warning("http.bookkeeping_failed", provider=self.provider, error=exc.message)

    def _quota_reset(self, headers: httpx.Headers) -> float | None:
        """Seconds to pause when the vendor says the quota is spent, else None."""
        if not vendor_quota_spent(headers):
            return None
        return vendor_reset_seconds(headers, self.clock.time())

    def _retry_after(self, headers: httpx.Headers) -> float | None:
        now = self.clock.time()
        value = parse_retry_after(headers.get("retry-after"), now=datetime.fromtimestamp(now, UTC))
        return value if value is not None else vendor_reset_seconds(headers, now)

    def _log(
        self,
        request: httpx.Request,
        attempt: int,
        started: float,
        *,
        status: int | None,
        error: RevOpsError | None,
    ) -> None:
        _log.info(
            "http.attempt",
            provider=self.provider,
            method=request.method,
            path=request.url.path,  # never the query string: vendors put api keys there
            status=status,
            attempt=attempt,
            elapsed_ms=round((self.clock.monotonic() - started) * 1000, 1),
            error=error.code if error else None,
            outcome=error.outcome if error else None,
        )


@dataclass(frozen=True)
class _Outgoing:
    """One logical request, as every attempt sends it (auth headers are added per attempt)."""

    method: str
    path: str
    params: Mapping[str, Any] | None  # None, never {}: an empty mapping wipes a query in the URL
    json: Any
    content: bytes | str | None
    headers: dict[str, str]
    safe: bool  # may be resent: idempotent method or flag, or an idempotency key


def _may_retry(exc: BaseException, *, safe: bool) -> bool:
    """Whether resending cannot do harm and might help."""
    if not isinstance(exc, RevOpsError) or isinstance(exc, CircuitOpen):
        return False
    if isinstance(exc, RateLimited):
        return True  # the vendor (or our own limiter) refused before acting
    if not exc.retryable:
        return False
    return safe or exc.outcome == "not_sent"


def _dig(data: Any, path: str) -> Any:
    """Follow a dotted path (`"paging.next.after"`) through nested dicts; None where it ends."""
    current = data
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current
