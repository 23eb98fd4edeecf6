"""Gmail API v1 client on `IntegrationClient`: send (new or in a thread) and drafts.

Requests follow `gmail_v1_discovery.json` (`gmail.users.messages.send`, `gmail.users.drafts.create`),
checked by tests with `revops_core.google_discovery`. A message is RFC 2822 text, base64url-encoded
into `raw`; a reply names the `threadId` and carries `In-Reply-To`/`References` so every mail
client threads it. We set `Message-ID` ourselves, so a later reply (or a logged answer) can refer
to a message whose send timed out. Sends are POSTs without an idempotency key: never resent.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from revops_core.errors import IntegrationUnavailable
from revops_core.secret_values import Secret
from revops_sales.vendors import google_auth

PROVIDER = "gmail"
TITLE = "Gmail"
BASE_URL = "https://gmail.googleapis.com/"
USER = "me"  # the authorised account


@dataclass(frozen=True)
class Mime:
    """One outgoing message: what goes into `raw` and the ids it will be known by."""

    raw: str
    message_id: str
    references: str | None


def new_message_id(domain: str = "revops.invalid") -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def build(
    *,
    to: list[str],
    subject: str,
    body: str,
    sent_at: datetime,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> Mime:
    """RFC 2822 message (plain text, UTF-8), base64url-encoded for `raw`."""
    message = EmailMessage()
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at)
    message_id = new_message_id()
    message["Message-ID"] = message_id
    chain = None
    if in_reply_to:
        chain = f"{references} {in_reply_to}".strip() if references else in_reply_to
        message["In-Reply-To"] = in_reply_to
        message["References"] = chain
    message.set_content(body)
    raw = base64.urlsafe_b64encode(message.as_bytes()).decode().rstrip("=")
    return Mime(raw=raw, message_id=message_id, references=chain)


def reply_subject(subject: str | None) -> str:
    text = subject or ""
    return text if text.lower().startswith("re:") else f"Re: {text}".strip()


def _ids(answer: dict[str, Any], *keys: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in keys:
        value = answer.get(key)
        if not isinstance(value, str) or not value:
            raise IntegrationUnavailable(
                f"{TITLE} accepted the request but its answer has no '{key}'.",
                outcome="unknown",
                retryable=False,
                hint=f"Check the mailbox in {TITLE} before retrying.",
            )
        out[key] = value
    return out


class GmailClient:
    """Typed calls to the Gmail endpoints the Sales server uses."""

    def __init__(self, token: Secret, settings: Any, **client_options: Any) -> None:
        from revops_core.integration import IntegrationClient

        self._http = IntegrationClient(
            PROVIDER, BASE_URL, settings=settings, auth=google_auth.bearer(token), **client_options
        )

    async def __aenter__(self) -> GmailClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def send(self, mime: Mime, thread_id: str | None) -> dict[str, str]:
        """messages.send → {"id", "threadId"}; sent once (a timeout's outcome is `unknown`)."""
        body: dict[str, Any] = {"raw": mime.raw}
        if thread_id:
            body["threadId"] = thread_id
        response = await self._http.request(
            "POST", f"gmail/v1/users/{USER}/messages/send", json=body, idempotent=False
        )
        return _ids(google_auth.decode(response, TITLE, write=True), "id", "threadId")

    async def create_draft(self, mime: Mime, thread_id: str | None) -> dict[str, str]:
        """drafts.create → {"id"} of the draft (sent once)."""
        message: dict[str, Any] = {"raw": mime.raw}
        if thread_id:
            message["threadId"] = thread_id
        response = await self._http.request(
            "POST", f"gmail/v1/users/{USER}/drafts", json={"message": message}, idempotent=False
        )
        return _ids(google_auth.decode(response, TITLE, write=True), "id")
