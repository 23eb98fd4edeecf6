"""Mixpanel raw event export and profile updates on `IntegrationClient`, plus the mapping to usage events.

- Export: `GET https://data.mixpanel.com/api/2.0/export?from_date=…&to_date=…&project_id=…`, HTTP basic
  auth with a service account, NDJSON streamed line by line (`IntegrationClient.stream_lines`).
- Profiles: `POST https://api.mixpanel.com/engage` with a form field `data` = JSON list of `$set`
  updates carrying the project token (`verbose=1` makes Mixpanel say whether it accepted them).
Credentials: `revops vault set mixpanel service_account_username=… service_account_secret=… project_id=…
project_token=…` (the token only for profile updates).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from revops_core.errors import ConfigurationError, IntegrationUnavailable
from revops_core.secret_values import Secret
from revops_core.vendor_kit import VendorSpec, require_fields, text

if TYPE_CHECKING:
    from revops_core.server import Runtime

SPEC = VendorSpec(
    provider="mixpanel",
    title="Mixpanel",
    fields=("service_account_username", "service_account_secret", "project_id"),
    optional=("project_token",),  # profile updates only
    placeholders={
        "service_account_username": "<service account user>",
        "service_account_secret": "<service account secret>",
        "project_id": "<project id>",
        "project_token": "<project token>",
    },
)
EXPORT_URL = "https://data.mixpanel.com/api/2.0"
INGEST_URL = "https://api.mixpanel.com"


@dataclass(frozen=True)
class MixpanelCredentials:
    username: str
    secret: Secret
    project_id: str
    project_token: Secret | None

    def auth_header(self) -> dict[str, str]:
        raw = f"{self.username}:{self.secret.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def require_credentials(runtime: Runtime, *, need_token: bool = False) -> MixpanelCredentials:
    """The service account (and project token for profile updates), or `configuration_error`."""
    values = require_fields(runtime, SPEC, also=("project_token",) if need_token else ())
    return MixpanelCredentials(
        username=text(values, "service_account_username"),
        secret=values["service_account_secret"],
        project_id=text(values, "project_id"),
        project_token=values.get("project_token") if text(values, "project_token") else None,
    )


# --------------------------------------------------------------------------- mapping

_NAME = re.compile(r"[^a-z0-9_.:-]+")


def event_name(raw: str) -> str:
    """Event name → slug (`Viewed Report` → `viewed_report`, `$session_start` → `session_start`)."""
    return _NAME.sub("_", raw.strip().lower()).strip("_")[:100] or "event"


def dig(props: Mapping[str, Any], path: str) -> Any:
    """A property by name, or a dotted path into nested objects (`$groups.company`)."""
    if path in props:
        return props[path]
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class ExportedEvent:
    """One export line, decoded: what ingest needs, and the client key to map."""

    event: str
    user_ref: str
    occurred_at: datetime
    insert_id: str
    client_key: str | None
    feature: str | None


def parse_line(line: str, number: int, client_property: str) -> ExportedEvent:
    """Decode one NDJSON line; a line that is not an event is a clear integration error."""
    try:
        record = json.loads(line)
        props = record["properties"]
        stamp = float(props["time"])
        if stamp > 1e11:  # some projects export milliseconds
            stamp /= 1000
        occurred_at = datetime.fromtimestamp(stamp, UTC)
        name = str(record["event"])
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise IntegrationUnavailable(
            f"Mixpanel export line {number} is not an event record; nothing was stored.",
            outcome="failed",
            retryable=False,
            hint="Retry later; if it persists, report the date range to your administrator.",
        ) from None
    insert_id = props.get("$insert_id")
    if not insert_id:
        # Without Mixpanel's id, the line itself is the identity (re-exports are byte-identical).
        insert_id = "line:" + hashlib.sha256(line.encode()).hexdigest()[:40]
    key = dig(props, client_property)
    feature = props.get("feature")
    return ExportedEvent(
        event=event_name(name),
        user_ref=str(props.get("distinct_id") or "")[:200],
        occurred_at=occurred_at,
        insert_id=str(insert_id)[:200],
        client_key=None if key is None or key == "" else str(key),
        feature=str(feature)[:100] if feature else None,
    )


# --------------------------------------------------------------------------- client


class MixpanelClient:
    """Typed calls to the Mixpanel endpoints the CS server uses."""

    def __init__(self, credentials: MixpanelCredentials, settings: Any, **client_options: Any) -> None:
        from revops_core.integration import IntegrationClient

        self.credentials = credentials

        async def auth() -> dict[str, str]:
            return credentials.auth_header()

        self._export = IntegrationClient(
            SPEC.provider, EXPORT_URL, settings=settings, auth=auth, **client_options
        )
        self._ingest = IntegrationClient(SPEC.provider, INGEST_URL, settings=settings, **client_options)

    async def __aenter__(self) -> MixpanelClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._export.aclose()
        await self._ingest.aclose()

    async def export(self, from_date: date, to_date: date) -> AsyncIterator[str]:
        """The raw export's NDJSON lines for the date range (inclusive, project time zone)."""
        params = {
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "project_id": self.credentials.project_id,
        }
        async for line in self._export.stream_lines("GET", "/export", params=params):
            yield line

    async def set_profiles(self, updates: list[tuple[str, dict[str, Any]]]) -> int:
        """POST /engage `$set` for (distinct_id, properties) pairs, ≤ 2000 per request; the count accepted."""
        token = self.credentials.project_token
        if token is None:
            raise ConfigurationError("No Mixpanel project token.", field="project_token")
        done = 0
        for start in range(0, len(updates), 2000):
            batch = [
                {"$token": token.reveal(), "$distinct_id": d, "$set": props}
                for d, props in updates[start : start + 2000]
            ]
            # `$set` is idempotent: the same values set twice leave the same profile, so retries are safe.
            response = await self._ingest.request(
                "POST",
                "/engage",
                params={"verbose": "1"},
                content=_form({"data": json.dumps(batch)}),
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
                idempotent=True,
            )
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict) or answer.get("status") != 1:
                error = answer.get("error") if isinstance(answer, dict) else None
                raise IntegrationUnavailable(
                    f"Mixpanel did not accept the profile updates ({error or 'unexpected answer'}).",
                    outcome="failed",
                    retryable=False,
                    details={"accepted_before": done},
                )
            done += len(batch)
        return done


def _form(fields: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()
