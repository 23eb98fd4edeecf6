"""The OAuth token manager against a fake token endpoint at the network edge (httpx.MockTransport).

Time is a fake clock; the vault, the database and the locks are real.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable

import httpx
import pytest

from revops_core.errors import IntegrationUnavailable, ReauthRequired
from revops_core.oauth import OAuthRefresher, TokenManager, TokenResponse
from revops_core.secret_values import Secret
from revops_core.vault import Vault

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0
LIFETIME = 3600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """A rotating-refresh-token endpoint: each refresh token works once, like many real vendors."""

    def __init__(self, behaviour: Callable[[int], httpx.Response | Exception] | None = None) -> None:
        self.requests: list[dict[str, str]] = []
        self.current_refresh = "r-0"
        self.behaviour = behaviour

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(request.content.decode()).items()}
        self.requests.append(form)
        n = len(self.requests)
        if self.behaviour is not None:
            outcome = self.behaviour(n)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.current_refresh:
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.current_refresh = f"r-{n}"
        return httpx.Response(
            200,
            json={
                "access_token": f"a-{n}",
                "refresh_token": self.current_refresh,
                "expires_in": LIFETIME,
                "token_type": "Bearer",
            },
        )


@pytest.fixture
def vault(db, settings) -> Vault:
    return Vault(db, settings)


def _manager(vault: Vault, endpoint: TokenEndpoint, clock: Clock, **kwargs) -> TokenManager:
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    refresher = OAuthRefresher(client, "https://auth.example.test/token", client_id="cid", provider="acme")
    return TokenManager(vault, "acme", refresher, clock=clock, jitter_fraction=0.0, **kwargs)


def _seed(manager: TokenManager, access: str = "a-0", refresh: str = "r-0") -> None:
    manager.store(
        TokenResponse(access_token=Secret(access), expires_in=LIFETIME, refresh_token=Secret(refresh))
    )


def _due_manager(vault: Vault, endpoint: TokenEndpoint) -> tuple[TokenManager, Clock]:
    """A seeded grant and a clock 10 s before its expiry, so the next call must refresh."""
    clock = Clock()
    manager = _manager(vault, endpoint, clock)
    _seed(manager)
    clock.now = T0 + LIFETIME - 10
    return manager, clock


async def test_fresh_token_is_served_without_a_request(vault):
    endpoint, clock = TokenEndpoint(), Clock()
    manager = _manager(vault, endpoint, clock)
    _seed(manager)
    assert (await manager.access_token()).reveal() == "a-0"
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("lifetime", "remaining", "due"),
    [(3600, 361, False), (3600, 359, True), (300, 61, False), (300, 59, True)],
)
async def test_refresh_margin_is_max_of_60s_and_10_percent(vault, lifetime, remaining, due):
    clock = Clock()
    manager = _manager(vault, TokenEndpoint(), clock)
    manager.store(TokenResponse(access_token=Secret("a"), expires_in=lifetime, refresh_token=Secret("r")))
    clock.now = T0 + lifetime - remaining
    assert manager.is_due(manager.load()) is due


def test_jitter_is_small_and_bounded(vault):
    manager = TokenManager(vault, "acme", _never_called, jitter_fraction=1.0)
    assert manager.refresh_margin(3600) == 360 + 30
    assert manager.refresh_margin(100) == 60 + 5


async def _never_called(_: Secret) -> TokenResponse:
    raise AssertionError("refresh must not be called")


async def test_50_coroutines_cause_one_refresh(vault):
    endpoint = TokenEndpoint()
    manager, _clock = _due_manager(vault, endpoint)
    tokens = await asyncio.gather(*(manager.access_token() for _ in range(50)))
    assert len(endpoint.requests) == 1
    assert {t.reveal() for t in tokens} == {"a-1"}


async def test_waiter_rereads_store_and_skips_refresh_done_elsewhere(vault):
    """Two managers stand for two processes: the second re-reads after the lock and does not refresh."""
    endpoint, clock = TokenEndpoint(), Clock()
    first = _manager(vault, endpoint, clock)
    second = _manager(vault, endpoint, clock)
    _seed(first)
    assert (await second.access_token()).reveal() == "a-0"  # second now caches generation 1
    clock.now = T0 + LIFETIME - 10
    assert (await first.access_token()).reveal() == "a-1"
    assert (await second.access_token()).reveal() == "a-1"
    assert len(endpoint.requests) == 1


async def test_rotated_refresh_token_is_saved_before_use(vault):
    endpoint = TokenEndpoint()
    manager, clock = _due_manager(vault, endpoint)
    token = await manager.access_token()
    # By the time the access token is handed out, the rotated refresh token is durable in the vault.
    stored = vault.get("acme", "oauth")
    assert token.reveal() == stored["access_token"].reveal() == "a-1"
    assert stored["refresh_token"].reveal() == "r-1"
    assert stored["state"].reveal() == "ok"
    # A new process (new manager, empty cache) refreshes with the rotated token, which the vendor accepts.
    clock.now += LIFETIME
    restarted = _manager(vault, endpoint, clock)
    assert (await restarted.access_token()).reveal() == "a-2"
    assert [r["refresh_token"] for r in endpoint.requests] == ["r-0", "r-1"]


async def test_invalid_grant_is_reauth_required_without_a_second_call(vault):
    endpoint = TokenEndpoint(lambda n: httpx.Response(400, json={"error": "invalid_grant"}))
    manager, clock = _due_manager(vault, endpoint)
    with pytest.raises(ReauthRequired) as err:
        await manager.access_token()
    assert err.value.outcome == "failed"
    assert "revops vault set acme --name oauth refresh_token=…" in err.value.hint
    with pytest.raises(ReauthRequired):
        await manager.access_token()
    with pytest.raises(ReauthRequired):
        await _manager(vault, endpoint, clock).access_token()  # another process: same answer
    assert len(endpoint.requests) == 1


async def test_timeout_never_resends_the_refresh_token(vault):
    endpoint = TokenEndpoint(lambda n: httpx.ReadTimeout("slow"))
    manager, clock = _due_manager(vault, endpoint)
    with pytest.raises(ReauthRequired) as err:
        await manager.access_token()
    assert err.value.outcome == "unknown"
    assert err.value.code == "reauth_required"
    for attempt in (manager, _manager(vault, endpoint, clock)):
        with pytest.raises(ReauthRequired):
            await attempt.access_token()
    assert len(endpoint.requests) == 1
    assert vault.get("acme", "oauth")["state"].reveal() == "consumed"


async def test_interrupted_refresh_is_treated_as_possibly_consumed(vault):
    """A process that died mid-request left state=refreshing: nobody resends that refresh token."""
    started = asyncio.Event()

    async def hang(_: Secret) -> TokenResponse:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    clock = Clock()
    manager = TokenManager(vault, "acme", hang, clock=clock, jitter_fraction=0.0)
    _seed(manager)
    clock.now = T0 + LIFETIME - 10
    task = asyncio.ensure_future(manager.access_token())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    endpoint = TokenEndpoint()
    with pytest.raises(ReauthRequired) as err:
        await _manager(vault, endpoint, clock).access_token()
    assert err.value.outcome == "unknown"
    assert endpoint.requests == []


async def test_server_error_keeps_the_refresh_token_usable(vault):
    endpoint = TokenEndpoint(
        lambda n: (
            httpx.Response(503)
            if n == 1
            else httpx.Response(200, json={"access_token": "a-2", "expires_in": LIFETIME})
        )
    )
    manager, _clock = _due_manager(vault, endpoint)
    with pytest.raises(IntegrationUnavailable) as err:
        await manager.access_token()
    assert err.value.outcome == "failed"
    assert (await manager.access_token()).reveal() == "a-2"
    # No rotation in the answer: the old refresh token is kept.
    assert vault.get("acme", "oauth")["refresh_token"].reveal() == "r-0"
    assert [r["refresh_token"] for r in endpoint.requests] == ["r-0", "r-0"]


async def test_new_refresh_token_from_the_cli_clears_a_failed_state(vault):
    endpoint = TokenEndpoint(lambda n: httpx.Response(400, json={"error": "invalid_grant"}))
    manager, clock = _due_manager(vault, endpoint)
    with pytest.raises(ReauthRequired):
        await manager.access_token()
    # What the hint tells the operator to do: store a new refresh token with `revops vault set`.
    vault.set("acme", "oauth", {"refresh_token": "r-new"})
    endpoint.behaviour = None
    endpoint.current_refresh = "r-new"
    assert (await _manager(vault, endpoint, clock).access_token()).reveal() == "a-2"


async def test_request_shape_and_no_secret_in_errors(vault):
    endpoint = TokenEndpoint(lambda n: httpx.Response(401, json={"error": "invalid_client"}))
    clock = Clock()
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    refresher = OAuthRefresher(
        client,
        "https://auth.example.test/token",
        client_id="cid",
        client_secret=Secret("cs-xyz"),
        provider="acme",
    )
    manager = TokenManager(vault, "acme", refresher, clock=clock, jitter_fraction=0.0)
    _seed(manager, refresh="r-secret-0")
    clock.now = T0 + LIFETIME - 10
    with pytest.raises(Exception) as err:
        await manager.access_token()
    assert err.value.code == "integration_auth"
    text = json.dumps(err.value.to_dict()) + repr(err.value)
    assert "r-secret-0" not in text
    assert "cs-xyz" not in text
    assert endpoint.requests == [
        {
            "grant_type": "refresh_token",
            "refresh_token": "r-secret-0",
            "client_id": "cid",
            "client_secret": "cs-xyz",
        }
    ]
    # invalid_client does not spend the refresh token: it stays usable once the client is fixed.
    assert vault.get("acme", "oauth")["state"].reveal() == "ok"
