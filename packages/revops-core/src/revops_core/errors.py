"""One error tree for the suite.

Every failure a client can see is a `RevOpsError` with a stable `code`, a message that is safe to
show (no secrets, no internals), a `hint` naming the next step, and — for integration failures —
whether it may be retried and whether the remote side effect happened (`outcome`).

`classify()` is the single place that turns httpx/HTTP failures into this tree, so every vendor
client reports the same failure the same way.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

Outcome = Literal["not_sent", "failed", "unknown"]
"""What happened to a side effect: never sent, sent and refused, or sent with no answer."""


class RevOpsError(Exception):
    """Base of every error the suite reports to a client."""

    code: ClassVar[str] = "internal_error"
    default_hint: ClassVar[str] = "Retry later; if it persists, run `revops doctor`."
    retryable_by_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        outcome: Outcome = "not_sent",
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.retryable = self.retryable_by_default if retryable is None else retryable
        self.retry_after = retry_after
        self.outcome: Outcome = outcome
        self.field = field
        self.details = details or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        """The structured form a client receives (also used in logs and audit entries)."""
        data: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "retryable": self.retryable,
            "outcome": self.outcome,
        }
        if self.retry_after is not None:
            data["retry_after"] = round(self.retry_after, 3)
        if self.field is not None:
            data["field"] = self.field
        if self.details:
            data["details"] = self.details
        return data

    def client_text(self) -> str:
        """One short text block for an `isError` tool result: code, what went wrong, what to do."""
        parts = [f"[{self.code}] {self.message}", f"Next step: {self.hint}"]
        if self.retry_after is not None:
            parts.append(f"Retry after {self.retry_after:.0f} s.")
        return "\n".join(parts)


class ValidationFailed(RevOpsError):
    code = "validation_error"
    default_hint = "Correct the named field and call again; nothing was changed."


class NotFound(RevOpsError):
    code = "not_found"
    default_hint = "Check the id (list tools return valid ids); nothing was changed."


class Conflict(RevOpsError):
    code = "conflict"
    default_hint = "Re-read the record and retry with the current state."


class PermissionDenied(RevOpsError):
    code = "permission_denied"
    default_hint = "Ask an admin for a key with the needed role (`revops keys create --role …`)."


class ConfirmationRequired(RevOpsError):
    code = "confirmation_required"
    default_hint = "Review the plan, then call the tool again with confirm=<plan_id>."


class StalePlan(RevOpsError):
    code = "stale_plan"
    default_hint = "The data changed since the plan was made: call without confirm to get a fresh plan."


class ApprovalRequired(RevOpsError):
    code = "approval_required"
    default_hint = "A person must approve: answer the approval prompt, or run `revops approve <plan_id>`."


class IntegrationAuth(RevOpsError):
    code = "integration_auth"
    default_hint = "Check the vendor credential with `revops vault list`, then `revops vault set …`."


class RateLimited(RevOpsError):
    code = "rate_limited"
    default_hint = "Wait for the retry_after interval, then call again."
    retryable_by_default = True


class IntegrationUnavailable(RevOpsError):
    code = "integration_unavailable"
    default_hint = "The vendor is failing or unreachable; retry later. Local data is still available."
    retryable_by_default = True


class CircuitOpen(RevOpsError):
    code = "circuit_open"
    default_hint = "Calls to this vendor are paused after repeated failures; retry after retry_after."
    retryable_by_default = True


class ReauthRequired(RevOpsError):
    code = "reauth_required"
    default_hint = "The vendor revoked our access: reconnect it (`revops vault set …` with a new token)."


class DatabaseBusy(RevOpsError):
    code = "database_busy"
    default_hint = "Another write holds the database; nothing was changed. Retry in a few seconds."
    retryable_by_default = True


class IntegrityError(RevOpsError):
    code = "integrity_error"
    default_hint = "Stored data failed an integrity check; run `revops audit verify` and inspect the report."


class ConfigurationError(RevOpsError):
    code = "configuration_error"
    default_hint = "Run `revops doctor` for the exact setting to fix."


class InternalError(RevOpsError):
    code = "internal_error"
    default_hint = "Retry; if it persists, report the correlation id to your administrator."


ALL_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        ValidationFailed,
        NotFound,
        Conflict,
        PermissionDenied,
        ConfirmationRequired,
        StalePlan,
        ApprovalRequired,
        IntegrationAuth,
        RateLimited,
        IntegrationUnavailable,
        CircuitOpen,
        ReauthRequired,
        DatabaseBusy,
        IntegrityError,
        ConfigurationError,
        InternalError,
    )
)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify(
    failure: BaseException | int,
    *,
    provider: str,
    sent: bool = True,
    headers: dict[str, str] | None = None,
    idempotent: bool = False,
) -> RevOpsError:
    """Map an httpx exception or an HTTP status code to the error tree.

    `sent` says whether the request may have reached the vendor; together with `idempotent` it
    decides `outcome`: a timeout after sending a non-idempotent request is `unknown` — the vendor
    may have acted — and must not be retried blindly.
    The vendor's own error text is never copied in: it can echo credentials or personal data.
    """
    import httpx  # local: errors is imported by everything, httpx only matters here

    if isinstance(failure, RevOpsError):
        return failure
    if isinstance(failure, int):
        return _classify_status(failure, provider=provider, headers=headers or {})
    if isinstance(failure, httpx.HTTPStatusError):
        return _classify_status(
            failure.response.status_code, provider=provider, headers=dict(failure.response.headers)
        )
    if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout):
        return IntegrationUnavailable(f"Could not connect to {provider}.", outcome="not_sent")
    if isinstance(failure, httpx.TimeoutException):
        outcome: Outcome = "unknown" if sent and not idempotent else "failed"
        return IntegrationUnavailable(
            f"{provider} did not answer in time.",
            outcome=outcome,
            retryable=outcome != "unknown",
            hint=(
                f"The request may have been applied by {provider}; check there before sending it again."
                if outcome == "unknown"
                else None
            ),
        )
    if isinstance(failure, httpx.TransportError):
        return IntegrationUnavailable(
            f"Network error talking to {provider}.", outcome="unknown" if sent else "not_sent"
        )
    return InternalError(
        f"Unexpected failure talking to {provider}.", outcome="unknown" if sent else "not_sent"
    )


def _classify_status(status: int, *, provider: str, headers: dict[str, str]) -> RevOpsError:
    lowered = {k.lower(): v for k, v in headers.items()}
    if status == 401:
        return IntegrationAuth(f"{provider} rejected our credentials (HTTP 401).", outcome="failed")
    if status == 403:
        return IntegrationAuth(
            f"{provider} refused the request (HTTP 403): the credential lacks a permission.",
            outcome="failed",
        )
    if status == 404:
        return NotFound(f"{provider} has no such record (HTTP 404).", outcome="failed")
    if status in (409, 412):
        return Conflict(f"{provider} reported a conflict (HTTP {status}).", outcome="failed")
    if status in (400, 422):
        return ValidationFailed(
            f"{provider} rejected the request as invalid (HTTP {status}).",
            outcome="failed",
            hint="Check the values sent; the vendor's rules may be stricter than ours.",
        )
    if status == 429:
        return RateLimited(
            f"{provider} is rate limiting us (HTTP 429).",
            retry_after=parse_retry_after(lowered.get("retry-after")),
            outcome="failed",
        )
    if 500 <= status < 600:
        return IntegrationUnavailable(
            f"{provider} failed (HTTP {status}).",
            outcome="failed",
            retry_after=parse_retry_after(lowered.get("retry-after")),
        )
    return IntegrationUnavailable(f"{provider} answered HTTP {status}.", outcome="failed", retryable=False)
