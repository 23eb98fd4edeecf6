"""IntegrationClient against a respx-faked vendor, in fake time, with local and Redis-backed state.

Every test uses a fresh tenant, so breaker and bucket state (in-process or in Redis) never leaks
between tests.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import respx

from revops_core.clock import FakeClock
from revops_core.errors import (
    CircuitOpen,
    ConfigurationError,
    IntegrationUnavailable,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from revops_core.integration import IntegrationClient
from revops_core.settings import Settings
from revops_core.testing import redis_url

pytestmark = pytest.mark.anyio

BASE = "https://api.vendor.test/v1"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """None for the in-process store, or a real Redis client for the shared store."""
    if request.param == "memory":
        yield None
        return
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url())
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=BASE, assert_all_called=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(
    tmp_path: Path, router: respx.MockRouter, clock: FakeClock, store: Any
) -> Callable[..., IntegrationClient]:
    tenant = f"t{uuid.uuid4().hex[:10]}"

    def build(**overrides: Any) -> IntegrationClient:
        client_kwargs = {
            k: overrides.pop(k) for k in ("rate_limit", "auth", "default_headers") if k in overrides
        }
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": None,
            "redis_url": None,
            "tenant": tenant,
            "http_max_attempts": 4,
            "http_deadline_seconds": 60,
            "breaker_min_calls": 4,
            "breaker_failure_rate": 0.5,
            "breaker_open_seconds": 30,
            "breaker_probe_lease_seconds": 15,
            "breaker_window_seconds": 60,
        }
        values.update(overrides)
        return IntegrationClient(
            "acme",
            BASE,
            settings=Settings(**values),
            transport=httpx.MockTransport(router.async_handler),
            clock=clock,
            redis=store,
            **client_kwargs,
        )

    return build


async def _open_breaker(client: IntegrationClient, router: respx.MockRouter) -> respx.Route:
    """Four 503s with retries off: the breaker (min 4 calls, 50 %) opens."""
    route = router.get("/fail").mock(return_value=httpx.Response(503))
    for _ in range(4):
        with pytest.raises(IntegrationUnavailable):
            await client.request("GET", "/fail")
    assert (await client.breaker_for().snapshot()).state == "open"
    return route


# --- breaker ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"), [(400, ValidationFailed), (401, None), (404, NotFound), (422, None)]
)
async def test_4xx_never_opens_the_breaker(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, status: int, error: Any
) -> None:
    client = make_client(http_max_attempts=1)
    route = router.get("/thing").mock(return_value=httpx.Response(status))
    for _ in range(20):
        with pytest.raises(error or Exception) as caught:
            await client.request("GET", "/thing")
        assert caught.value.outcome == "failed"
    snapshot = await client.breaker_for().snapshot()
    assert route.call_count == 20  # every call reached the vendor: nothing failed fast
    assert snapshot.state == "closed"
    assert snapshot.failures_in_window == 0
    await client.aclose()


async def test_5xx_and_timeouts_open_the_breaker_then_fail_fast(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client(http_max_attempts=1)
    router.get("/ok").mock(return_value=httpx.Response(200, json={}))
    route = router.get("/flaky").mock(side_effect=[httpx.Response(500), httpx.ReadTimeout("slow")] * 2)
    for _ in range(3):  # 3 successes + 2 failures: 40 % < 50 %, stays closed
        await client.request("GET", "/ok")
    for _ in range(2):
        with pytest.raises(IntegrationUnavailable):
            await client.request("GET", "/flaky")
    assert (await client.breaker_for().snapshot()).state == "closed"
    with pytest.raises(IntegrationUnavailable):  # 3 failures of 6 calls: 50 % → open
        await client.request("GET", "/flaky")
    assert route.call_count == 3
    with pytest.raises(CircuitOpen) as caught:
        await client.request("GET", "/flaky")
    assert route.call_count == 3  # failed fast, nothing sent
    assert caught.value.retry_after == pytest.approx(30)
    assert caught.value.outcome == "not_sent"
    clock.advance(10)
    with pytest.raises(CircuitOpen) as caught:
        await client.request("GET", "/ok")
    assert caught.value.retry_after == pytest.approx(20)
    await client.aclose()


async def test_fifty_concurrent_callers_at_half_open_send_exactly_one_probe(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client(http_max_attempts=1)
    await _open_breaker(client, router)
    clock.advance(30)  # half-open now
    release = anyio.Event()
    arrived: list[httpx.Request] = []  # respx counts a call only once its response exists

    async def slow_ok(request: httpx.Request) -> httpx.Response:
        arrived.append(request)
        await release.wait()
        return httpx.Response(200, json={"ok": True})

    probe_route = router.get("/probe").mock(side_effect=slow_ok)
    outcomes: list[str] = []

    async def caller() -> None:
        try:
            await client.request("GET", "/probe")
            outcomes.append("ok")
        except CircuitOpen:
            outcomes.append("circuit_open")

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(caller)
        # The 49 refusals arrive while the probe is still waiting on the vendor.
        while outcomes.count("circuit_open") < 49 or not arrived:
            await anyio.lowlevel.checkpoint()
        assert len(arrived) == 1
        assert outcomes.count("ok") == 0
        release.set()
    assert outcomes.count("ok") == 1
    assert outcomes.count("circuit_open") == 49
    assert probe_route.call_count == 1
    assert len(arrived) == 1
    assert (await client.breaker_for().snapshot()).state == "closed"  # the probe's success closed it
    await client.aclose()


async def test_failed_probe_reopens_the_breaker(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client(http_max_attempts=1)
    route = await _open_breaker(client, router)
    clock.advance(30)
    with pytest.raises(IntegrationUnavailable):
        await client.request("GET", "/fail")  # the probe, failing
    assert route.call_count == 5
    with pytest.raises(CircuitOpen) as caught:
        await client.request("GET", "/fail")
    assert caught.value.retry_after == pytest.approx(30)
    assert route.call_count == 5
    await client.aclose()


async def test_a_hung_probe_lease_expires_and_another_probe_goes(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client(http_max_attempts=1)
    await _open_breaker(client, router)
    clock.advance(30)
    hang = anyio.Event()
    calls = {"n": 0}

    async def first_hangs(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1  # counted on arrival; respx counts a call only once it has a response
        if calls["n"] == 1:
            await hang.wait()
        return httpx.Response(200, json={"n": calls["n"]})

    route = router.get("/probe").mock(side_effect=first_hangs)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.request, "GET", "/probe")
        while calls["n"] < 1:
            await anyio.lowlevel.checkpoint()
        with pytest.raises(CircuitOpen) as caught:  # lease held by the hung probe
            await client.request("GET", "/probe")
        assert caught.value.retry_after == pytest.approx(15)
        assert calls["n"] == 1
        clock.advance(15)  # the lease runs out
        response = await client.request("GET", "/probe")
        assert response.json() == {"n": 2}
        assert calls["n"] == 2
        assert (await client.breaker_for().snapshot()).state == "closed"
        hang.set()  # the old probe finally answers: its late verdict is ignored, no error
    assert route.call_count == 2
    await client.aclose()


# --- retries and outcomes --------------------------------------------------------------------


async def test_post_without_idempotency_key_that_times_out_is_sent_once_outcome_unknown(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client()
    route = router.post("/orders").mock(side_effect=httpx.ReadTimeout("no answer"))
    with pytest.raises(IntegrationUnavailable) as caught:
        await client.post_json("/orders", {"amount": 100})
    assert route.call_count == 1
    assert caught.value.outcome == "unknown"
    assert caught.value.retryable is False
    assert clock.sleeps == []
    await client.aclose()


async def test_post_with_idempotency_key_is_retried_with_the_same_key(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client()
    route = router.post("/orders").mock(
        side_effect=[
            httpx.ReadTimeout("no answer"),
            httpx.ReadTimeout("no answer"),
            httpx.Response(201, json={"id": 9}),
        ]
    )
    body = await client.post_json("/orders", {"amount": 100}, idempotency_key="order-42")
    assert body == {"id": 9}
    assert route.call_count == 3
    assert {call.request.headers["Idempotency-Key"] for call in route.calls} == {"order-42"}
    assert [json.loads(call.request.content) for call in route.calls] == [{"amount": 100}] * 3
    assert len(clock.sleeps) == 2
    # capped exponential backoff with equal jitter: retry n waits in [base·2ⁿ⁻¹/2, base·2ⁿ⁻¹]
    assert 0.25 <= clock.sleeps[0] <= 0.5
    assert 0.5 <= clock.sleeps[1] <= 1.0
    await client.aclose()


async def test_post_connect_error_is_retried_because_nothing_was_sent(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()
    route = router.post("/orders").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(201, json={"id": 1})]
    )
    assert await client.post_json("/orders", {"a": 1}) == {"id": 1}
    assert route.call_count == 2
    await client.aclose()


async def test_post_5xx_without_key_is_not_retried(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()
    route = router.post("/orders").mock(return_value=httpx.Response(502))
    with pytest.raises(IntegrationUnavailable) as caught:
        await client.post_json("/orders", {"a": 1})
    assert route.call_count == 1
    assert caught.value.outcome == "failed"
    await client.aclose()


async def test_get_5xx_is_retried_up_to_max_attempts(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client(http_max_attempts=3, breaker_min_calls=100)
    route = router.get("/x").mock(return_value=httpx.Response(503))
    with pytest.raises(IntegrationUnavailable):
        await client.get_json("/x")
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    await client.aclose()


# --- Retry-After and vendor quota headers ----------------------------------------------------


async def test_429_retry_after_seconds_waits_exactly_that_long(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client()
    route = router.get("/contacts").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"ok": 1})]
    )
    assert await client.get_json("/contacts") == {"ok": 1}
    assert clock.sleeps == [7.0]
    assert route.call_count == 2
    await client.aclose()


async def test_429_retry_after_http_date(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client()
    when = format_datetime(datetime.fromtimestamp(clock.time() + 12, UTC), usegmt=True)
    router.get("/contacts").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json={})]
    )
    await client.get_json("/contacts")
    assert clock.sleeps == [pytest.approx(12.0)]
    await client.aclose()


async def test_429_retry_after_beyond_the_deadline_fails_at_once_with_retry_after(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client(http_deadline_seconds=5)
    route = router.get("/contacts").mock(return_value=httpx.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        await client.get_json("/contacts")
    assert caught.value.retry_after == 7.0
    assert caught.value.code == "rate_limited"
    assert route.call_count == 1
    assert clock.sleeps == []  # waiting 5 s and failing anyway would only waste the caller's time
    await client.aclose()


async def test_429_without_retry_after_uses_ratelimit_reset(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client()
    router.get("/c").mock(
        side_effect=[
            httpx.Response(429, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"}),
            httpx.Response(200, json={}),
        ]
    )
    await client.get_json("/c")
    assert clock.sleeps == [3.0]
    await client.aclose()


async def test_spent_quota_on_a_success_holds_the_next_call_until_reset(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    client = make_client()
    reset_at = int(clock.time()) + 9  # epoch form, as GitHub and others send it
    router.get("/a").mock(
        return_value=httpx.Response(
            200, json={}, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_at)}
        )
    )
    router.get("/b").mock(return_value=httpx.Response(200, json={}))
    await client.get_json("/a")
    assert clock.sleeps == []
    await client.get_json("/b")
    assert clock.sleeps == [pytest.approx(reset_at - (clock.time() - clock.sleeps[0]))]
    assert clock.sleeps[0] == pytest.approx(9, abs=1)
    await client.aclose()


# --- client-side rate limit ------------------------------------------------------------------


async def test_client_rate_limit_waits_for_tokens(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock
) -> None:
    from revops_core.resilience import RateLimit

    client = make_client(rate_limit=RateLimit(rate_per_second=2, burst=3))
    route = router.get("/r").mock(return_value=httpx.Response(200, json={}))
    for _ in range(7):
        await client.get_json("/r")
    assert route.call_count == 7
    # 3 from the burst, then one token every 0.5 s
    assert clock.sleeps == [pytest.approx(0.5)] * 4
    await client.aclose()


async def test_client_rate_limit_wait_beyond_deadline_is_rate_limited(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    from revops_core.resilience import RateLimit

    client = make_client(rate_limit=RateLimit(rate_per_second=0.01, burst=1), http_deadline_seconds=10)
    route = router.get("/r").mock(return_value=httpx.Response(200, json={}))
    await client.get_json("/r")
    with pytest.raises(RateLimited) as caught:
        await client.get_json("/r")
    assert caught.value.retry_after == pytest.approx(100)
    assert caught.value.outcome == "not_sent"
    assert route.call_count == 1
    await client.aclose()


# --- pagination and streaming ----------------------------------------------------------------


async def test_paginate_cursor_in_body(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()

    def page(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        if after is None:
            return httpx.Response(200, json={"results": [1, 2], "paging": {"next": {"after": "c2"}}})
        if after == "c2":
            return httpx.Response(200, json={"results": [3], "paging": {"next": {"after": "c3"}}})
        return httpx.Response(200, json={"results": [4]})

    route = router.get("/deals").mock(side_effect=page)
    items = [
        item
        async for item in client.paginate_cursor(
            "/deals", params={"limit": 2}, next_cursor="paging.next.after", cursor_param="after"
        )
    ]
    assert items == [1, 2, 3, 4]
    assert [dict(call.request.url.params) for call in route.calls] == [
        {"limit": "2"},
        {"limit": "2", "after": "c2"},
        {"limit": "2", "after": "c3"},
    ]
    await client.aclose()


async def test_paginate_cursor_follows_link_header(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()
    router.get("/tickets", params={"page[after]": "x"}).mock(
        return_value=httpx.Response(200, json={"data": ["b"]})
    )
    router.get("/tickets").mock(
        return_value=httpx.Response(
            200, json={"data": ["a"]}, headers={"Link": f'<{BASE}/tickets?page[after]=x>; rel="next"'}
        )
    )
    items = [i async for i in client.paginate_cursor("/tickets", items="data", cursor_param=None)]
    assert items == ["a", "b"]
    await client.aclose()


async def test_paginate_cursor_repeated_cursor_is_an_error(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()
    router.get("/loop").mock(return_value=httpx.Response(200, json={"results": [1], "next": "same"}))
    with pytest.raises(IntegrationUnavailable, match="same page cursor"):
        async for _ in client.paginate_cursor("/loop", next_cursor="next"):
            pass
    await client.aclose()


async def test_paginate_pages_stops_at_short_page(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()

    def page(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params["page"])
        return httpx.Response(
            200, json={"items": list(range((n - 1) * 2, (n - 1) * 2 + (2 if n < 3 else 1)))}
        )

    route = router.get("/list").mock(side_effect=page)
    items = [
        i async for i in client.paginate_pages("/list", items="items", page_size=2, size_param="per_page")
    ]
    assert items == [0, 1, 2, 3, 4]
    assert route.call_count == 3
    assert route.calls[0].request.url.params["per_page"] == "2"
    await client.aclose()


async def test_missing_items_list_is_reported(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()
    router.get("/odd").mock(return_value=httpx.Response(200, json={"rows": []}))
    with pytest.raises(IntegrationUnavailable, match="expected list"):
        async for _ in client.paginate_pages("/odd"):
            pass
    await client.aclose()


async def test_stream_lines_yields_ndjson_lines(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()
    body = b'{"event":"a"}\n\n{"event":"b"}\n{"event":"c"}'
    router.get("/export").mock(return_value=httpx.Response(200, content=body))
    lines = [line async for line in client.stream_lines("GET", "/export", params={"from_date": "2026-01-01"})]
    assert [json.loads(line)["event"] for line in lines] == ["a", "b", "c"]
    await client.aclose()


# --- auth, logs ------------------------------------------------------------------------------


async def test_auth_headers_are_fetched_per_attempt(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    tokens = iter(["tok-1", "tok-2"])

    async def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {next(tokens)}"}

    client = make_client(auth=auth)
    route = router.get("/me").mock(side_effect=[httpx.Response(503), httpx.Response(200, json={})])
    await client.get_json("/me")
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer tok-1", "Bearer tok-2"]
    await client.aclose()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Route structlog and stdlib logging (httpx's too) into a buffer; restore the setup after."""
    import logging

    import structlog

    from revops_core.logs import configure_logging

    saved_config, root = structlog.get_config(), logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        structlog.configure(**saved_config)
        root.handlers[:], root.level = saved_handlers, saved_level


async def test_attempt_log_has_no_query_secrets_headers_or_bodies(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, log_stream: io.StringIO
) -> None:
    client = make_client(default_headers={"X-Api-Key": "hdr-secret-123"})
    router.get("/search").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"email": "a@b.test"})]
    )
    await client.get_json("/search", params={"api_key": "qs-secret-456"})
    await client.aclose()
    err = log_stream.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if '"http.attempt"' in line]
    assert [(e["status"], e["attempt"], e["path"], e["method"], e["provider"]) for e in lines] == [
        (503, 1, "/v1/search", "GET", "acme"),
        (200, 2, "/v1/search", "GET", "acme"),
    ]
    assert all("elapsed_ms" in e for e in lines)
    # Even at DEBUG, neither our lines nor httpx's carry the query string, headers or bodies.
    for secret in ("qs-secret-456", "hdr-secret-123", "a@b.test"):
        assert secret not in err


# --- shared state from settings, Redis outages, cancellation -----------------------------------


async def test_clients_built_from_redis_url_share_one_breaker(
    tmp_path: Path, router: respx.MockRouter, clock: FakeClock
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=None,
        redis_url=redis_url(),
        tenant=f"t{uuid.uuid4().hex[:10]}",
        http_max_attempts=1,
        breaker_min_calls=4,
    )
    route = router.get("/fail").mock(return_value=httpx.Response(500))
    transport = httpx.MockTransport(router.async_handler)
    async with IntegrationClient("acme", BASE, settings=settings, transport=transport, clock=clock) as one:
        for _ in range(4):
            with pytest.raises(IntegrationUnavailable):
                await one.request("GET", "/fail")
    # A second client with its own Redis connection (as another server process would have).
    async with IntegrationClient("acme", BASE, settings=settings, transport=transport, clock=clock) as two:
        with pytest.raises(CircuitOpen):
            await two.request("GET", "/fail")
    assert route.call_count == 4


async def test_unreachable_redis_is_a_configuration_error_and_nothing_is_sent(
    tmp_path: Path, router: respx.MockRouter, clock: FakeClock
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, redis_url="redis://127.0.0.1:1/0")
    route = router.post("/orders").mock(return_value=httpx.Response(201, json={}))
    transport = httpx.MockTransport(router.async_handler)
    async with IntegrationClient("acme", BASE, settings=settings, transport=transport, clock=clock) as client:
        with pytest.raises(ConfigurationError) as caught:
            await client.post_json("/orders", {"a": 1})
    assert caught.value.outcome == "not_sent"
    assert route.call_count == 0


async def test_a_cancelled_probe_frees_its_lease_at_once(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter, clock: FakeClock, store: Any
) -> None:
    client = make_client(http_max_attempts=1)
    await _open_breaker(client, router)
    clock.advance(30)
    if store is not None:
        # Redis forgets its scripts: the release then needs a NOSCRIPT round trip, which a release
        # run inside the cancelled scope never finished (the lease stayed held). Pin that case.
        await store.script_flush()
    arrived = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    router.get("/hang").mock(side_effect=hang)
    router.get("/ok").mock(return_value=httpx.Response(200, json={}))
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.request, "GET", "/hang")
        await arrived.wait()
        tg.cancel_scope.cancel()  # e.g. the MCP client cancelled the tool call
    await client.request("GET", "/ok")  # no lease wait: this call is the new probe, and closes it
    assert (await client.breaker_for().snapshot()).state == "closed"
    assert clock.sleeps == []
    await client.aclose()


async def test_a_cancelled_probe_frees_its_lease_while_another_process_empties_the_script_cache(
    tmp_path: Path, router: respx.MockRouter, clock: FakeClock
) -> None:
    """The race behind the flaky test above: its SCRIPT FLUSH, run by a parallel session against the
    same Redis, landed between another run's SCRIPT LOAD and EVALSHA. Here every EVALSHA answers
    NOSCRIPT (a flush just before each call) without flushing anything for real."""
    import redis.asyncio
    from redis.exceptions import NoScriptError

    class Flushed(redis.asyncio.Redis):
        async def evalsha(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            raise NoScriptError("No matching script. Please use EVAL.")

    redis_client = Flushed.from_url(redis_url())
    settings = Settings(
        data_dir=tmp_path,
        database_url=None,
        redis_url=None,
        tenant=f"t{uuid.uuid4().hex[:10]}",
        http_max_attempts=1,
        breaker_min_calls=4,
        breaker_open_seconds=30,
    )
    client = IntegrationClient(
        "acme",
        BASE,
        settings=settings,
        transport=httpx.MockTransport(router.async_handler),
        clock=clock,
        redis=redis_client,
    )
    try:
        await _open_breaker(client, router)
        clock.advance(30)
        arrived = anyio.Event()

        async def hang(request: httpx.Request) -> httpx.Response:
            arrived.set()
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        router.get("/hang").mock(side_effect=hang)
        router.get("/ok").mock(return_value=httpx.Response(200, json={}))
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.request, "GET", "/hang")
            await arrived.wait()
            tg.cancel_scope.cancel()
        await client.request("GET", "/ok")  # the new probe at once: the lease was released
        assert (await client.breaker_for().snapshot()).state == "closed"
        assert clock.sleeps == []
    finally:
        await client.aclose()
        await redis_client.aclose()


async def test_stream_lines_retries_before_the_first_line(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client()
    route = router.get("/export").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, content=b'{"e":1}\n{"e":2}\n')]
    )
    assert [line async for line in client.stream_lines("GET", "/export")] == ['{"e":1}', '{"e":2}']
    assert route.call_count == 2
    await client.aclose()


async def test_pagination_link_to_another_host_is_not_followed(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client(auth=_static_auth)
    router.get("/tickets").mock(
        return_value=httpx.Response(
            200, json={"data": ["a"]}, headers={"Link": '<https://evil.test/steal?page=2>; rel="next"'}
        )
    )
    with pytest.raises(IntegrationUnavailable, match="another host"):
        async for _ in client.paginate_cursor("/tickets", items="data", cursor_param=None):
            pass
    assert [str(call.request.url) for call in router.calls] == [f"{BASE}/tickets"]  # nothing to evil.test
    await client.aclose()


async def test_redirects_are_reported_not_followed(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client(auth=_static_auth)
    router.get("/moved").mock(return_value=httpx.Response(302, headers={"Location": "https://evil.test/x"}))
    with pytest.raises(IntegrationUnavailable, match="HTTP 302"):
        await client.get_json("/moved")
    await client.aclose()


async def _static_auth() -> dict[str, str]:
    return {"X-Api-Key": "k-123456789"}


async def test_breaker_opening_mid_retry_keeps_the_earlier_attempts_outcome(
    make_client: Callable[..., IntegrationClient], router: respx.MockRouter
) -> None:
    client = make_client(http_max_attempts=4, breaker_min_calls=2, breaker_failure_rate=1.0)
    route = router.put("/deal/1").mock(return_value=httpx.Response(503))
    with pytest.raises(CircuitOpen) as caught:
        await client.request("PUT", "/deal/1", json={"stage": "won"})
    assert route.call_count == 2  # the second failure opened the breaker; the third attempt failed fast
    assert caught.value.outcome == "failed"  # sent and refused, not "not_sent"
    assert caught.value.details == {"last_error": "integration_unavailable"}
    await client.aclose()
