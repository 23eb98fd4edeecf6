"""Breaker and token bucket below the HTTP layer: both stores, atomicity, and cross-process sharing."""

from __future__ import annotations

import math
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from revops_core.clock import FakeClock, SystemClock
from revops_core.errors import CircuitOpen, ConfigurationError, RateLimited
from revops_core.resilience import (
    Backoff,
    BreakerPolicy,
    CircuitBreaker,
    MemoryStore,
    RateLimit,
    RedisStore,
    TokenBucket,
    vendor_quota_spent,
    vendor_reset_seconds,
)
from revops_core.testing import redis_url

pytestmark = pytest.mark.anyio

POLICY = BreakerPolicy(
    window_seconds=60, min_calls=4, failure_rate=0.5, open_seconds=30, probe_lease_seconds=15
)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url())
    try:
        yield RedisStore(client)
    finally:
        await client.aclose()


def _key() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:acme:api.vendor.test"


async def _open(breaker: CircuitBreaker) -> None:
    for _ in range(POLICY.min_calls):
        await (await breaker.admit()).failure()


async def _half_open(store: Any) -> tuple[CircuitBreaker, FakeClock]:
    """A breaker opened by failures, with the fake clock moved to the end of its open period."""
    clock = FakeClock()
    breaker = CircuitBreaker("acme", _key(), policy=POLICY, store=store, clock=clock)
    await _open(breaker)
    clock.advance(POLICY.open_seconds)
    return breaker, clock


# --- breaker ---------------------------------------------------------------------------------


async def test_failure_rate_below_threshold_keeps_the_breaker_closed(store: Any) -> None:
    breaker = CircuitBreaker("acme", _key(), policy=POLICY, store=store, clock=FakeClock())
    for ok in (True, True, True, False, False):  # 40 %
        permit = await breaker.admit()
        await (permit.success() if ok else permit.failure())
    snap = await breaker.snapshot()
    assert (snap.state, snap.calls_in_window, snap.failures_in_window) == ("closed", 5, 2)


async def test_failures_older_than_the_window_do_not_count(store: Any) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("acme", _key(), policy=POLICY, store=store, clock=clock)
    for _ in range(3):
        await (await breaker.admit()).failure()
    clock.advance(61)
    await (await breaker.admit()).failure()
    snap = await breaker.snapshot()
    assert (snap.state, snap.failures_in_window) == ("closed", 1)


async def test_exactly_one_of_fifty_concurrent_admissions_gets_the_probe(store: Any) -> None:
    breaker, _ = await _half_open(store)
    granted: list[str] = []
    refused: list[float] = []

    async def try_admit() -> None:
        try:
            permit = await breaker.admit()
            assert permit.is_probe
            granted.append(str(permit.probe_token))
        except CircuitOpen as exc:
            refused.append(float(exc.retry_after or 0))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(try_admit)
    assert len(granted) == 1
    assert len(refused) == 49
    assert all(r == pytest.approx(POLICY.probe_lease_seconds) for r in refused)


async def test_probe_lease_expiry_lets_a_new_probe_go_and_the_stale_verdict_is_ignored(store: Any) -> None:
    breaker, clock = await _half_open(store)
    hung = await breaker.admit()
    with pytest.raises(CircuitOpen):
        await breaker.admit()
    clock.advance(POLICY.probe_lease_seconds)
    second = await breaker.admit()
    assert second.is_probe
    assert second.probe_token != hung.probe_token
    assert await hung.failure() == "open"  # too late: ignored, does not re-open for another 30 s
    assert (await breaker.snapshot()).state == "half_open"
    assert await second.success() == "closed"
    assert (await breaker.snapshot()).state == "closed"


async def test_released_probe_frees_the_lease_without_a_verdict(store: Any) -> None:
    breaker, _ = await _half_open(store)
    probe = await breaker.admit()
    await probe.release()
    assert (await breaker.admit()).is_probe


async def test_breaker_opened_by_another_process_is_seen_through_redis() -> None:
    """A subprocess records failures in the Redis-backed breaker; this process then fails fast."""
    url = redis_url()
    key = _key()
    script = textwrap.dedent(
        """
        import asyncio, sys
        import redis.asyncio
        from revops_core.resilience import BreakerPolicy, CircuitBreaker, RedisStore

        async def main(url, key):
            client = redis.asyncio.Redis.from_url(url)
            policy = BreakerPolicy(window_seconds=60, min_calls=4, failure_rate=0.5,
                                   open_seconds=30, probe_lease_seconds=15)
            breaker = CircuitBreaker("acme", key, policy=policy, store=RedisStore(client))
            states = []
            while not states or states[-1] != "open":
                states.append(await (await breaker.admit()).failure())
            print(",".join(states))
            await client.aclose()

        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """
    )
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        breaker = CircuitBreaker("acme", key, policy=POLICY, store=RedisStore(client), clock=SystemClock())
        await (await breaker.admit()).success()  # closed here before the other process acts
        result = await anyio.run_process([sys.executable, "-c", script, url, key], check=False)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        # our 1 success + its 3 failures = 4 calls at 75 % failures: the third failure opens it
        assert result.stdout.decode().strip() == "closed,closed,open"
        with pytest.raises(CircuitOpen) as caught:
            await breaker.admit()
        assert 0 < (caught.value.retry_after or 0) <= POLICY.open_seconds
        assert (await breaker.snapshot()).state == "open"
    finally:
        await client.aclose()


async def test_sync_redis_client_works_through_a_worker_thread() -> None:
    import redis

    client = redis.Redis.from_url(redis_url())
    try:
        clock = FakeClock()
        breaker = CircuitBreaker("acme", _key(), policy=POLICY, store=RedisStore(client), clock=clock)
        await _open(breaker)
        with pytest.raises(CircuitOpen):
            await breaker.admit()
    finally:
        client.close()


# --- a script cache emptied by someone else ----------------------------------------------------


def _flushed_clients() -> tuple[Any, Any]:
    """Async and sync Redis clients whose server has "just" forgotten every script.

    Each EVALSHA answers NOSCRIPT, as it does when another process runs SCRIPT FLUSH (or Redis
    restarts, or fails over) right before it: the worst interleaving, made deterministic. Nothing
    is flushed for real, so tests running against the same Redis are not disturbed.
    """
    import redis
    import redis.asyncio
    from redis.exceptions import NoScriptError

    class AsyncFlushed(redis.asyncio.Redis):
        async def evalsha(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            raise NoScriptError("No matching script. Please use EVAL.")

    class SyncFlushed(redis.Redis):
        def evalsha(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            raise NoScriptError("No matching script. Please use EVAL.")

    return AsyncFlushed.from_url(redis_url()), SyncFlushed.from_url(redis_url())


@pytest.mark.parametrize("flavour", ["async", "sync"])
async def test_every_transition_survives_a_script_cache_flushed_before_each_call(flavour: str) -> None:
    """Before: NOSCRIPT → SCRIPT LOAD → EVALSHA, and a flush between the last two (another session's
    SCRIPT FLUSH) surfaced as 'Redis is unreachable' — a cancelled probe's lease was never freed."""
    async_client, sync_client = _flushed_clients()
    store = RedisStore(async_client if flavour == "async" else sync_client)
    try:
        clock = FakeClock()
        breaker = CircuitBreaker("acme", _key(), policy=POLICY, store=store, clock=clock)
        await _open(breaker)  # admit + record, four times
        clock.advance(POLICY.open_seconds)
        probe = await breaker.admit()
        assert probe.is_probe
        await probe.release()  # the lease is freed at once ...
        second = await breaker.admit()  # ... so the next caller is the probe, with no wait
        assert second.is_probe
        assert await second.success() == "closed"
        bucket = TokenBucket("acme", _key(), RateLimit(rate_per_second=1, burst=1), store=store, clock=clock)
        await bucket.acquire(deadline=clock.monotonic() + 10)
        await store.hold("k-" + _key(), clock.time(), 5)
        assert (await breaker.snapshot()).state == "closed"
    finally:
        await async_client.aclose()
        sync_client.close()


async def test_a_release_that_cannot_reach_the_store_never_replaces_the_cancellation() -> None:
    """The lease then runs out by itself; the caller still sees its own cancellation."""

    class Unreachable(MemoryStore):
        async def release(self, key: str, probe_token: str) -> None:
            raise ConfigurationError("Redis is unreachable (ConnectionError).")

    breaker, _ = await _half_open(Unreachable())
    probe = await breaker.admit()
    with anyio.CancelScope() as scope:
        try:
            scope.cancel()
            await anyio.sleep_forever()
        except BaseException:
            await probe.release()
            raise
    assert scope.cancelled_caught  # the cancellation, not a ConfigurationError, ended the block


# --- token bucket ----------------------------------------------------------------------------


async def test_token_bucket_admits_at_most_burst_plus_rate_times_t(store: Any) -> None:
    clock = FakeClock()
    limit = RateLimit(rate_per_second=5, burst=10)
    bucket = TokenBucket("acme", _key(), limit, store=store, clock=clock)
    admitted: list[float] = []

    async def worker() -> None:
        for _ in range(20):
            await bucket.acquire(deadline=math.inf)
            admitted.append(clock.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(worker)
    assert len(admitted) == 200
    times = sorted(admitted)
    # In every interval [tᵢ, tⱼ] — not only from the start — at most burst + rate × (tⱼ − tᵢ) got in.
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= limit.burst + limit.rate_per_second * (times[j] - start) + 1e-6
    # …and the bucket is not stingier than promised: 200 = burst + rate × elapsed.
    assert clock.monotonic() == pytest.approx((200 - limit.burst) / limit.rate_per_second)


async def test_token_bucket_sequential_rate_is_exact(store: Any) -> None:
    clock = FakeClock()
    limit = RateLimit(rate_per_second=4, burst=3)
    bucket = TokenBucket("acme", _key(), limit, store=store, clock=clock)
    for _ in range(3 + 8):
        await bucket.acquire(deadline=math.inf)
    # 3 at once, then 8 more at 0.25 s each: 11 = burst + rate × 2 s exactly
    assert clock.monotonic() == pytest.approx(2.0)
    assert clock.sleeps == [pytest.approx(0.25)] * 8


async def test_concurrent_takes_at_one_instant_admit_exactly_burst(store: Any) -> None:
    limit = RateLimit(rate_per_second=1, burst=7)
    key, now = _key(), 1_800_000_000.0
    waits: list[float] = []

    async def take() -> None:
        waits.append(await store.take(key, now, limit))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(take)
    assert sum(1 for w in waits if w == 0) == 7


async def test_token_wait_past_the_deadline_is_rate_limited(store: Any) -> None:
    clock = FakeClock()
    bucket = TokenBucket("acme", _key(), RateLimit(rate_per_second=0.5, burst=1), store=store, clock=clock)
    await bucket.acquire(deadline=1.0)
    with pytest.raises(RateLimited) as caught:
        await bucket.acquire(deadline=1.0)
    assert caught.value.retry_after == pytest.approx(2.0)
    assert clock.sleeps == []


# --- helpers ---------------------------------------------------------------------------------


def test_backoff_is_capped_and_jittered_within_bounds() -> None:
    import random

    backoff = Backoff(base=0.5, cap=4.0, rng=random.Random(7))
    for attempt in range(1, 12):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


def test_vendor_reset_header_as_delta_or_epoch() -> None:
    now = 1_800_000_000.0
    assert vendor_reset_seconds({"ratelimit-reset": "12"}, now) == 12
    assert vendor_reset_seconds({"x-ratelimit-reset": str(int(now) + 30)}, now) == 30
    assert vendor_reset_seconds({"x-ratelimit-reset": "soon"}, now) is None
    assert vendor_quota_spent({"x-ratelimit-remaining": "0"})
    assert not vendor_quota_spent({"x-ratelimit-remaining": "5"})


def test_rate_limit_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="rate_per_second"):
        RateLimit(rate_per_second=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(rate_per_second=1, burst=0)
