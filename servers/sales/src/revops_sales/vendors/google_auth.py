"""Google OAuth 2.0 for Gmail and Calendar: one grant, refreshed by the core `TokenManager`.

Two vault entries, so the token manager can rewrite its own entry without touching the client:
- `revops vault set google client_id=… client_secret=…` — the OAuth client (entry `default`);
- `revops vault set google --name oauth refresh_token=…` — the user's grant (entry `oauth`, suite-wide),
  where the manager also keeps the access token, its expiry and its refresh state.
The access token is fetched before a tool opens its own transaction: a refresh writes the vault, and
on SQLite that write would wait behind the tool's open write transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from revops_core.errors import ConfigurationError, NotFound
from revops_core.oauth import OAuthRefresher, TokenManager
from revops_core.secret_values import Secret
from revops_core.vault import Vault
from revops_core.vendor_kit import SUITE_WIDE, VendorSpec, load_fields, text

if TYPE_CHECKING:
    from revops_core.server import Call

SPEC = VendorSpec(
    provider="google",
    title="Google (Gmail, Calendar)",
    fields=("client_id", "client_secret"),
    placeholders={"client_id": "<oauth client id>", "client_secret": "<oauth client secret>"},
)
GRANT = "oauth"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
GRANT_COMMAND = f"revops vault set {SPEC.provider} --name {GRANT} refresh_token=<refresh token>"


def _missing(missing: tuple[str, ...]) -> ConfigurationError:
    return ConfigurationError(
        f"{SPEC.title} is not configured (missing {', '.join(missing)}); nothing was sent.",
        field=SPEC.provider,
        hint=f"Run `{SPEC.setup_command(missing)}` and `{GRANT_COMMAND}`, then call again.",
    )


def _grant_missing() -> ConfigurationError:
    return ConfigurationError(
        f"{SPEC.title} has no authorised grant (no refresh token stored); nothing was sent.",
        field=SPEC.provider,
        hint=f"Authorise the Google account, then run `{GRANT_COMMAND}`.",
    )


async def access_token(call: Call) -> Secret:
    """A valid Google access token (refreshed when due), or `configuration_error` naming the command.

    Call before the tool touches `call.db`."""
    import anyio

    runtime = call.runtime
    found = await anyio.to_thread.run_sync(load_fields, runtime, SPEC)
    if isinstance(found, tuple):
        raise _missing(found)
    options = call.vendor_options(SPEC.provider)
    vault = Vault(runtime.db, call.settings)
    async with httpx.AsyncClient(
        transport=options.get("transport"), timeout=call.settings.http_timeout_seconds
    ) as http:
        refresher = OAuthRefresher(
            http,
            TOKEN_URL,
            client_id=text(found, "client_id"),
            client_secret=found["client_secret"],
            provider=SPEC.provider,
        )
        manager = TokenManager(
            vault, SPEC.provider, refresher, name=GRANT, server=SUITE_WIDE, **_manager_options(options)
        )
        try:
            return await manager.access_token()
        except NotFound:  # the manager found no grant entry in the vault
            raise _grant_missing() from None


def _manager_options(options: dict[str, Any]) -> dict[str, Any]:
    # Tests hand a wall clock (`token_clock`) and a zero jitter so "due" is deterministic.
    picked: dict[str, Any] = {}
    if "token_clock" in options:
        picked["clock"] = options["token_clock"]
    if "jitter_fraction" in options:
        picked["jitter_fraction"] = options["jitter_fraction"]
    return picked


def bearer(token: Secret) -> Any:
    """The `auth` callable IntegrationClient awaits before every attempt."""

    async def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {token.reveal()}"}

    return auth


def client_options(call: Call, provider: str) -> dict[str, Any]:
    """IntegrationClient options for a Google API client: the test seam, minus the token-only keys."""
    options = call.vendor_options(SPEC.provider) | call.vendor_options(provider)
    for key in ("token_clock", "jitter_fraction"):
        options.pop(key, None)
    return options


def decode(response: httpx.Response, title: str, *, write: bool) -> dict[str, Any]:
    """The JSON object of a 2xx answer. A garbled one after a write is `unknown` (Google may have
    acted), after a read `failed`."""
    from revops_core.errors import IntegrationUnavailable

    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise IntegrationUnavailable(
            f"{title} answered with a body that is not the documented JSON object.",
            outcome="unknown" if write else "failed",
            retryable=False,
            hint=f"Check in {title} whether the change was applied before retrying."
            if write
            else "Retry later; report it if it persists.",
        )
    return body
