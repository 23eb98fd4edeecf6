"""SendGrid v3 Mail Send client on `IntegrationClient`, and the event-webhook record shape.

Auth: `Authorization: Bearer <api_key>` from the vault (`revops vault set sendgrid api_key=…
from_email=…`). `POST /v3/mail/send` answers 202 with an empty body and the message id in the
`X-Message-Id` header. The send is a non-idempotent POST without an idempotency key, so
IntegrationClient never resends it after a timeout (outcome `unknown`); 429 is retried after
`Retry-After` because SendGrid did not act on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from revops_core.errors import IntegrationUnavailable
from revops_core.secret_values import Secret
from revops_core.vendor_kit import VendorSpec, require_fields, text

if TYPE_CHECKING:
    from revops_core.server import Runtime

SPEC = VendorSpec(
    provider="sendgrid",
    title="SendGrid",
    fields=("api_key", "from_email"),
    placeholders={"api_key": "<api key>", "from_email": "<sender address>"},
)
BASE_URL = "https://api.sendgrid.com"


@dataclass(frozen=True)
class SendgridCredentials:
    api_key: Secret
    from_email: str


def require_credentials(runtime: Runtime) -> SendgridCredentials:
    """The API key and sender address, or `configuration_error` naming the `revops vault set` to run.

    Call before the tool opens its own transaction: vault reads are audited in a transaction of their own.
    """
    values = require_fields(runtime, SPEC)
    return SendgridCredentials(values["api_key"], text(values, "from_email"))


def mail_body(
    *, sender: str, to_email: str, to_name: str | None, subject: str, text: str, message_ref: str
) -> dict[str, Any]:
    """The `POST /v3/mail/send` body for one personalised plain-text email.

    `custom_args.revops_ref` comes back on every event-webhook record, so events find their message
    even before the X-Message-Id is known.
    """
    to: dict[str, Any] = {"email": to_email}
    if to_name:
        to["name"] = to_name
    return {
        "personalizations": [{"to": [to], "custom_args": {"revops_ref": message_ref}}],
        "from": {"email": sender},
        "subject": subject,
        "content": [{"type": "text/plain", "value": text}],
    }


class SendgridClient:
    """Typed calls to the SendGrid endpoints the CS server uses."""

    def __init__(self, credentials: SendgridCredentials, settings: Any, **client_options: Any) -> None:
        from revops_core.integration import IntegrationClient

        async def auth() -> dict[str, str]:
            return {"Authorization": f"Bearer {credentials.api_key.reveal()}"}

        self._http = IntegrationClient(
            SPEC.provider, BASE_URL, settings=settings, auth=auth, **client_options
        )

    async def __aenter__(self) -> SendgridClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def send(self, body: dict[str, Any]) -> str:
        """POST /v3/mail/send (sent once); SendGrid's message id from the `X-Message-Id` header."""
        response = await self._http.request("POST", "/v3/mail/send", json=body, idempotent=False)
        message_id = response.headers.get("X-Message-Id")
        if response.status_code != 202 or not message_id:
            # 2xx without the id: SendGrid took something, but we cannot track it.
            raise IntegrationUnavailable(
                f"SendGrid answered {response.status_code} without an X-Message-Id.",
                outcome="unknown",
                retryable=False,
                hint="Check SendGrid's activity feed before sending again.",
            )
        return str(message_id)
