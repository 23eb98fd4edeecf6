"""Circuit breaker, token-bucket rate limiter and retry backoff for vendor calls.

Breaker and bucket keep their state in a *store*: in process memory by default, or in Redis when
the suite is configured with one, so that every server process talking to the same vendor sees the
same open breaker and shares one rate budget. Both stores implement the same state machine; the
Redis one runs each transition as one Lua script, so e.g. the half-open probe lease is taken by
exactly one caller across all processes.

Times stored in state are epoch seconds from the injected clock (`Clock.time()`), because
monotonic clocks of different processes do not agree.
"""

from __future__ import annotations

import hashlib
import random
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio

from revops_core.clock import SYSTEM_CLOCK, Clock
from revops_core.errors import CircuitOpen, ConfigurationError, RateLimited
from revops_core.logs import get_logger

if TYPE_CHECKING:
    from revops_core.settings import Settings

BreakerState = Literal["closed", "open", "half_open"]
_log = get_logger("revops.resilience")


# ---------------------------------------------------------------------------------------------
# Policies


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and how long it stays open (from `Settings.breaker_*`)."""

    window_seconds: float = 60.0
    min_calls: int = 10
    failure_rate: float = 0.5
    open_seconds: float = 30.0
    probe_lease_seconds: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerPolicy:
        return cls(
            window_seconds=settings.breaker_window_seconds,
            min_calls=settings.breaker_min_calls,
            failure_rate=settings.breaker_failure_rate,
            open_seconds=settings.breaker_open_seconds,
            probe_lease_seconds=settings.breaker_probe_lease_seconds,
        )

    @property
    def ttl_ms(self) -> int:
        """How long Redis keeps idle state: long enough to outlive every interval above."""
        return int((self.window_seconds + self.open_seconds + self.probe_lease_seconds) * 1000) + 60_000


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` calls at once, refilled at `rate_per_second`."""

    rate_per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0")
        if self.burst < 1:
            raise ValueError("burst must be >= 1")

    @property
    def ttl_ms(self) -> int:
        return int(self.burst / self.rate_per_second * 1000) + 60_000


@dataclass(frozen=True)
class Admission:
    """A store's answer to "may I call?": allowed (maybe as the probe) or not before `retry_after`."""

    allowed: bool
    probe_token: str | None = None
    retry_after: float = 0.0


@dataclass(frozen=True)
class BreakerSnapshot:
    """The observable state of one breaker (for `revops doctor` and tests)."""

    state: BreakerState
    calls_in_window: int
    failures_in_window: int
    open_until: float | None
    probe_lease_until: float | None


# ---------------------------------------------------------------------------------------------
# Stores


class BreakerStore(Protocol):
    async def admit(self, key: str, now: float, policy: BreakerPolicy, token: str) -> Admission: ...

    async def record(
        self, key: str, now: float, ok: bool, probe_token: str | None, policy: BreakerPolicy
    ) -> BreakerState: ...

    async def release(self, key: str, probe_token: str) -> None: ...

    async def snapshot(self, key: str, now: float, policy: BreakerPolicy) -> BreakerSnapshot: ...


class BucketStore(Protocol):
    async def take(self, key: str, now: float, limit: RateLimit) -> float: ...

    async def hold(self, key: str, now: float, seconds: float) -> None: ...

    async def held_until(self, key: str) -> float | None: ...


@dataclass
class _LocalBreaker:
    calls: deque[tuple[float, bool]] = field(default_factory=deque)
    open_until: float | None = None
    lease_until: float | None = None
    lease_token: str | None = None


class MemoryStore:
    """Breaker and bucket state in this process. Thread-safe: tool bodies run in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, _LocalBreaker] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, stamp)
        self._holds: dict[str, float] = {}

    def reset(self) -> None:
        """Forget every breaker, bucket and hold (tests: state never leaks between them)."""
        with self._lock:
            self._breakers.clear()
            self._buckets.clear()
            self._holds.clear()

    # Breaker -------------------------------------------------------------------------------
    async def admit(self, key: str, now: float, policy: BreakerPolicy, token: str) -> Admission:
        with self._lock:
            b = self._breakers.setdefault(key, _LocalBreaker())
            if b.open_until is None:
                return Admission(True)
            if now < b.open_until:
                return Admission(False, retry_after=b.open_until - now)
            if b.lease_until is not None and now < b.lease_until:
                return Admission(False, retry_after=b.lease_until - now)
            b.lease_until, b.lease_token = now + policy.probe_lease_seconds, token
            return Admission(True, probe_token=token)

    async def record(
        self, key: str, now: float, ok: bool, probe_token: str | None, policy: BreakerPolicy
    ) -> BreakerState:
        with self._lock:
            b = self._breakers.setdefault(key, _LocalBreaker())
            if b.open_until is not None:
                # Open or half-open: only the probe holding the current lease decides.
                if probe_token is None or probe_token != b.lease_token:
                    return "open"
                if ok:
                    self._breakers[key] = _LocalBreaker()
                    return "closed"
                b.open_until, b.lease_until, b.lease_token = now + policy.open_seconds, None, None
                return "open"
            b.calls.append((now, ok))
            while b.calls and b.calls[0][0] <= now - policy.window_seconds:
                b.calls.popleft()
            total = len(b.calls)
            failures = sum(1 for _, good in b.calls if not good)
            if total >= policy.min_calls and failures / total >= policy.failure_rate:
                b.calls.clear()
                b.open_until = now + policy.open_seconds
                return "open"
            return "closed"

    async def release(self, key: str, probe_token: str) -> None:
        with self._lock:
            b = self._breakers.get(key)
            if b is not None and b.lease_token == probe_token:
                b.lease_until, b.lease_token = None, None

    async def snapshot(self, key: str, now: float, policy: BreakerPolicy) -> BreakerSnapshot:
        with self._lock:
            b = self._breakers.get(key, _LocalBreaker())
            recent = [good for stamp, good in b.calls if stamp > now - policy.window_seconds]
            return _snapshot(now, len(recent), sum(1 for g in recent if not g), b.open_until, b.lease_until)

    # Bucket --------------------------------------------------------------------------------
    async def take(self, key: str, now: float, limit: RateLimit) -> float:
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(limit.burst), now))
            if now > stamp:
                tokens, stamp = min(float(limit.burst), tokens + (now - stamp) * limit.rate_per_second), now
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / limit.rate_per_second
            self._buckets[key] = (tokens, stamp)
            return wait

    async def hold(self, key: str, now: float, seconds: float) -> None:
        until = now + seconds
        with self._lock:
            self._holds[key] = max(until, self._holds.get(key, until))

    async def held_until(self, key: str) -> float | None:
        with self._lock:
            return self._holds.get(key)


def _snapshot(
    now: float, calls: int, failures: int, open_until: float | None, lease_until: float | None
) -> BreakerSnapshot:
    state: BreakerState = "closed"
    if open_until is not None:
        state = "open" if now < open_until else "half_open"
    return BreakerSnapshot(state, calls, failures, open_until, lease_until)


# Lua: every breaker transition is one atomic script. Floats travel as strings with 17 significant
# digits: Lua numbers returned to Redis are truncated to integers, and `tostring` keeps only 14 digits
# (0.1 ms at epoch scale), enough to let a bucket over-admit.
_LUA_ADMIT = """
local function fmt(x) return string.format('%.17g', x) end
local st = redis.call('HMGET', KEYS[1], 'open_until', 'lease_until')
local now = tonumber(ARGV[1])
local open_until = tonumber(st[1])
if not open_until then return {1, '', '0'} end
if now < open_until then return {0, '', fmt(open_until - now)} end
local lease_until = tonumber(st[2])
if lease_until and now < lease_until then return {0, '', fmt(lease_until - now)} end
redis.call('HSET', KEYS[1], 'lease_until', fmt(now + tonumber(ARGV[2])), 'lease_token', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, ARGV[3], '0'}
"""

_LUA_RECORD = """
local function fmt(x) return string.format('%.17g', x) end
local now = tonumber(ARGV[1])
local ok = ARGV[2] == '1'
local token = ARGV[3]
local window = tonumber(ARGV[4])
local min_calls = tonumber(ARGV[5])
local rate = tonumber(ARGV[6])
local open_s = tonumber(ARGV[7])
local ttl = ARGV[9]
local st = redis.call('HMGET', KEYS[1], 'open_until', 'lease_token')
if st[1] then
  if token == '' or token ~= st[2] then return 'open' end
  if ok then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    return 'closed'
  end
  redis.call('HSET', KEYS[1], 'open_until', fmt(now + open_s))
  redis.call('HDEL', KEYS[1], 'lease_until', 'lease_token')
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 'open'
end
redis.call('ZADD', KEYS[2], now, ARGV[8])
if not ok then redis.call('ZADD', KEYS[3], now, ARGV[8]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
local total = redis.call('ZCARD', KEYS[2])
local failures = redis.call('ZCARD', KEYS[3])
if total >= min_calls and failures / total >= rate then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'open_until', fmt(now + open_s))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 'open'
end
return 'closed'
"""

_LUA_RELEASE = """
if redis.call('HGET', KEYS[1], 'lease_token') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'lease_until', 'lease_token')
end
return 0
"""

_LUA_TAKE = """
local function fmt(x) return string.format('%.17g', x) end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(st[1]) or burst
local stamp = tonumber(st[2]) or now
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  stamp = now
end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', fmt(tokens), 'stamp', fmt(stamp))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return fmt(wait)
"""

_LUA_HOLD = """
local current = tonumber(redis.call('GET', KEYS[1]))
if not current or current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 0
"""


class RedisStore:
    """Breaker and bucket state in Redis, shared by every process using the same Redis.

    Accepts a `redis.asyncio.Redis` (preferred) or a sync `redis.Redis`, whose blocking calls are
    moved to a worker thread so the event loop never stalls on the network.
    """

    def __init__(self, client: Any, prefix: str = "revops") -> None:
        self._client = client
        self._prefix = prefix
        self._async = _is_async_client(client)
        self._scripts = {
            name: (hashlib.sha1(src.encode()).hexdigest(), src)  # noqa: S324 - Redis names scripts by SHA-1
            for name, src in (
                ("admit", _LUA_ADMIT),
                ("record", _LUA_RECORD),
                ("release", _LUA_RELEASE),
                ("take", _LUA_TAKE),
                ("hold", _LUA_HOLD),
            )
        }

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            if self._async:
                return await fn(*args, **kwargs)
            import anyio.to_thread

            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except RedisError as exc:
            # Not a silent fallback to local state: with Redis configured, processes must agree.
            raise ConfigurationError(
                f"Redis is unreachable ({type(exc).__name__}); vendor calls are paused because breaker "
                "and rate-limit state cannot be shared.",
                hint="Start Redis (see `revops doctor`), or unset REDIS_URL to keep that state per process.",
                outcome="not_sent",
            ) from None

    # A script runs as EVALSHA; when Redis no longer has it cached (SCRIPT FLUSH, a restart, a
    # fail-over to a replica that never saw it) the one retry is EVAL with the source, which runs it
    # and caches it in one atomic step. redis-py's own fallback (SCRIPT LOAD, then EVALSHA again)
    # takes two round trips: a flush between them answers NOSCRIPT a second time, which surfaced as
    # "Redis is unreachable" — for a cancelled probe, a lease never released (the flaky
    # test_a_cancelled_probe_frees_its_lease_at_once[redis], whose own SCRIPT FLUSH, run by a
    # parallel test session on the same Redis, hit another run between its load and its EVALSHA).
    def _script_sync(self, sha: str, source: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return self._client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return self._client.eval(source, len(keys), *keys, *args)

    async def _script_async(self, sha: str, source: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await self._client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._client.eval(source, len(keys), *keys, *args)

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        sha, source = self._scripts[name]
        return await self._run(
            self._script_async if self._async else self._script_sync, sha, source, keys, args
        )

    def _keys(self, key: str) -> list[str]:
        # One hash tag per breaker keeps its three keys on one Redis Cluster slot.
        base = f"{self._prefix}:breaker:{{{key}}}"
        return [f"{base}:state", f"{base}:calls", f"{base}:failures"]

    async def admit(self, key: str, now: float, policy: BreakerPolicy, token: str) -> Admission:
        allowed, probe, retry_after = await self._script(
            "admit", self._keys(key)[:1], [repr(now), repr(policy.probe_lease_seconds), token, policy.ttl_ms]
        )
        probe_token = _text(probe) or None
        return Admission(bool(int(allowed)), probe_token, float(_text(retry_after)))

    async def record(
        self, key: str, now: float, ok: bool, probe_token: str | None, policy: BreakerPolicy
    ) -> BreakerState:
        state = await self._script(
            "record",
            self._keys(key),
            [
                repr(now),
                "1" if ok else "0",
                probe_token or "",
                repr(policy.window_seconds),
                policy.min_calls,
                repr(policy.failure_rate),
                repr(policy.open_seconds),
                uuid.uuid4().hex,
                policy.ttl_ms,
            ],
        )
        return "closed" if _text(state) == "closed" else "open"

    async def release(self, key: str, probe_token: str) -> None:
        await self._script("release", self._keys(key)[:1], [probe_token])

    async def snapshot(self, key: str, now: float, policy: BreakerPolicy) -> BreakerSnapshot:
        state_key, calls_key, failures_key = self._keys(key)
        since = f"({now - policy.window_seconds!r}"
        fields = await self._run(self._client.hmget, state_key, ["open_until", "lease_until"])
        calls = await self._run(self._client.zcount, calls_key, since, "+inf")
        failures = await self._run(self._client.zcount, failures_key, since, "+inf")
        open_until, lease_until = (float(_text(v)) if v is not None else None for v in fields)
        return _snapshot(now, int(calls), int(failures), open_until, lease_until)

    async def take(self, key: str, now: float, limit: RateLimit) -> float:
        wait = await self._script(
            "take",
            [f"{self._prefix}:bucket:{{{key}}}"],
            [repr(limit.rate_per_second), limit.burst, repr(now), limit.ttl_ms],
        )
        return float(_text(wait))

    async def hold(self, key: str, now: float, seconds: float) -> None:
        # Keep the hold a minute past its end so late readers still see it, then let it expire.
        ttl_ms = int(seconds * 1000) + 60_000
        await self._script("hold", [f"{self._prefix}:hold:{{{key}}}"], [repr(now + seconds), ttl_ms])

    async def held_until(self, key: str) -> float | None:
        value = await self._run(self._client.get, f"{self._prefix}:hold:{{{key}}}")
        return None if value is None else float(_text(value))


def _is_async_client(client: Any) -> bool:
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - redis is a core dependency
        return False
    return isinstance(client, redis.asyncio.Redis)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


LOCAL_STORE = MemoryStore()
"""The process-wide in-memory store: every client in this process shares breaker and bucket state."""


# ---------------------------------------------------------------------------------------------
# Breaker


class Permit:
    """Permission for one call through a breaker; report how it went exactly once."""

    def __init__(self, breaker: CircuitBreaker, probe_token: str | None) -> None:
        self._breaker = breaker
        self.probe_token = probe_token
        self._done = False

    @property
    def is_probe(self) -> bool:
        return self.probe_token is not None

    async def success(self) -> BreakerState:
        """The vendor answered (2xx, or a 4xx other than 429: the vendor is up, the request was wrong)."""
        return await self._finish(ok=True)

    async def failure(self) -> BreakerState:
        """The vendor failed: 5xx, 429, timeout or network error."""
        return await self._finish(ok=False)

    async def release(self) -> None:
        """The call was never made or was cancelled: free the probe lease, record nothing."""
        if self._done:
            return
        self._done = True
        if self.probe_token is not None:
            # Shielded: release usually runs because the caller was cancelled, and inside the
            # cancelled scope the store call would be cancelled at its first await. On Redis that
            # await is the EVALSHA reply: a NOSCRIPT answer (script not yet cached) was never
            # followed by the load-and-run, and the lease stayed held until it ran out.
            # Best effort: release runs while another exception (usually the cancellation) is on
            # its way out, and must not replace it. If the store cannot be reached, the lease
            # simply runs out after `probe_lease_seconds`.
            with anyio.CancelScope(shield=True):
                try:
                    await self._breaker.store.release(self._breaker.key, self.probe_token)
                except ConfigurationError as exc:
                    _log.warning("breaker.release_failed", provider=self._breaker.provider, error=exc.message)

    async def _finish(self, *, ok: bool) -> BreakerState:
        if self._done:
            raise RuntimeError("a breaker permit is settled once")
        self._done = True
        b = self._breaker
        # Shielded for the same reason as release(): the vendor already answered, so a cancellation
        # arriving now must not lose the outcome (nor leave a probe's lease held).
        with anyio.CancelScope(shield=True):
            state = await b.store.record(b.key, b.clock.time(), ok, self.probe_token, b.policy)
        # Returned after the block: a cancel scope may swallow an exception, so mypy (rightly)
        # refuses a return inside it as the function's only exit.
        return state  # noqa: RET504


class CircuitBreaker:
    """A failure-rate breaker for one (provider, host), with a leased half-open probe.

    closed → open when, within `window_seconds`, at least `min_calls` calls were made and the share
    of failures reached `failure_rate`. While open, `admit()` fails fast with `CircuitOpen`. After
    `open_seconds` exactly one caller gets a probe permit holding a lease of `probe_lease_seconds`;
    its success closes the breaker, its failure re-opens it, and if it hangs the lease runs out and
    the next caller becomes the probe.
    """

    def __init__(
        self,
        provider: str,
        key: str,
        *,
        policy: BreakerPolicy,
        store: BreakerStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.provider = provider
        self.key = key
        self.policy = policy
        self.store: BreakerStore = store or LOCAL_STORE
        self.clock = clock or SYSTEM_CLOCK

    async def admit(self) -> Permit:
        """A permit for one call, or `CircuitOpen` with the time until a probe may go."""
        admission = await self.store.admit(self.key, self.clock.time(), self.policy, uuid.uuid4().hex)
        if not admission.allowed:
            raise CircuitOpen(
                f"Calls to {self.provider} are paused after repeated failures.",
                retry_after=admission.retry_after,
                outcome="not_sent",
            )
        return Permit(self, admission.probe_token)

    async def snapshot(self) -> BreakerSnapshot:
        return await self.store.snapshot(self.key, self.clock.time(), self.policy)


# ---------------------------------------------------------------------------------------------
# Rate limiting


class TokenBucket:
    """Client-side rate limit for one (provider, host); callers wait for a token within a deadline."""

    def __init__(
        self,
        provider: str,
        key: str,
        limit: RateLimit,
        *,
        store: BucketStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.provider = provider
        self.key = key
        self.limit = limit
        self.store: BucketStore = store or LOCAL_STORE
        self.clock = clock or SYSTEM_CLOCK

    async def acquire(self, deadline: float) -> None:
        """Take one token, sleeping while short; `RateLimited` if none comes before `deadline`.

        `deadline` is on the clock's monotonic scale.
        """
        while True:
            wait = await self.store.take(self.key, self.clock.time(), self.limit)
            if wait <= 0:
                return
            await sleep_within(self.clock, wait, deadline, provider=self.provider, reason="rate limit")


async def wait_for_hold(store: BucketStore, key: str, clock: Clock, deadline: float, provider: str) -> None:
    """Wait out a pause the vendor asked for (rate-limit headers said the quota is spent)."""
    until = await store.held_until(key)
    if until is None:
        return
    wait = until - clock.time()
    if wait > 0:
        await sleep_within(clock, wait, deadline, provider=provider, reason="vendor quota")


async def sleep_within(clock: Clock, wait: float, deadline: float, *, provider: str, reason: str) -> None:
    """Sleep `wait` seconds if that ends before `deadline`; otherwise fail now with `RateLimited`.

    Sleeping until the deadline and then failing would only waste the caller's time.
    """
    remaining = deadline - clock.monotonic()
    if wait > remaining:
        raise RateLimited(
            f"{provider} calls are limited ({reason}); the wait exceeds this request's deadline.",
            retry_after=wait,
            outcome="not_sent",
        )
    await clock.sleep(wait)


# ---------------------------------------------------------------------------------------------
# Retry backoff


@dataclass
class Backoff:
    """Capped exponential backoff with "equal jitter": half fixed, half random.

    The random half spreads retries of many clients apart; the fixed half guarantees real backoff.
    """

    base: float = 0.5
    cap: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1 = first retry)."""
        # 2.0, not 2: a float power keeps the type (int ** int is Any to a type checker).
        ceiling = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


def vendor_reset_seconds(headers: Any, now: float) -> float | None:
    """Seconds until the vendor's quota resets, from `X-RateLimit-Reset` / `RateLimit-Reset`.

    Vendors send either delta seconds (IETF draft, Zendesk) or an epoch timestamp (GitHub, some
    HubSpot endpoints); values above 10⁹ can only be timestamps.
    """
    for name in ("ratelimit-reset", "x-ratelimit-reset"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(str(raw).strip())
        except ValueError:
            continue
        return max(0.0, value - now if value > 1e9 else value)
    return None


def vendor_quota_spent(headers: Any) -> bool:
    """True when the vendor says no calls remain in the current quota window."""
    for name in ("ratelimit-remaining", "x-ratelimit-remaining"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return float(str(raw).strip()) <= 0
        except ValueError:
            return False
    return False
