"""Intercom REST API 2.14 client on `IntegrationClient`: contacts, notes, tags, conversations, messages.

Auth: `Authorization: Bearer <access_token>` plus `Intercom-Version: 2.14` on every request; the token
(and the admin id notes, replies and messages are written as) come from the vault:
`revops vault set intercom access_token=… admin_id=…`. Creates are sent once (a timeout's outcome is
`unknown`); searches and list pages are reads and may be retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from revops_core.errors import ConfigurationError, IntegrationUnavailable, ValidationFailed
from revops_core.secret_values import Secret
from revops_core.vendor_kit import VendorSpec, require_fields, text

if TYPE_CHECKING:
    from revops_core.server import Runtime

SPEC = VendorSpec(
    provider="intercom",
    title="Intercom",
    fields=("access_token",),
    optional=("admin_id",),  # notes, replies and messages are written as this admin
    placeholders={"access_token": "<access token>", "admin_id": "<admin id>"},
)
BASE_URL = "https://api.intercom.io"
VERSION = "2.14"


@dataclass(frozen=True)
class IntercomCredentials:
    access_token: Secret
    admin_id: str | None


def require_credentials(runtime: Runtime, *, need_admin: bool = False) -> IntercomCredentials:
    """The token (and admin id when writing as an admin), or `configuration_error` naming the command.

    Call before the tool opens its own transaction: vault reads are audited in a transaction of their own.
    """
    values = require_fields(runtime, SPEC, also=("admin_id",) if need_admin else ())
    admin = text(values, "admin_id") or None
    if need_admin and not (admin and admin.isdigit()):
        raise ConfigurationError(
            "Intercom notes, replies and messages are written as an admin; the stored admin_id is not a "
            "number.",
            field="admin_id",
            hint=f"Run `{SPEC.setup_command(('admin_id',))}`, then call again.",
        )
    return IntercomCredentials(values["access_token"], admin)


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict) or "id" not in body:
        raise IntegrationUnavailable(
            f"Intercom's answer has no {what} id.", outcome="unknown", retryable=False
        )
    return body


class IntercomClient:
    """Typed calls to the Intercom endpoints the CS server uses."""

    def __init__(self, credentials: IntercomCredentials, settings: Any, **client_options: Any) -> None:
        from revops_core.integration import IntegrationClient

        self.credentials = credentials

        async def auth() -> dict[str, str]:
            return {"Authorization": f"Bearer {credentials.access_token.reveal()}"}

        self._http = IntegrationClient(
            SPEC.provider,
            BASE_URL,
            settings=settings,
            auth=auth,
            default_headers={"Intercom-Version": VERSION, "Accept": "application/json"},
            **client_options,
        )

    async def __aenter__(self) -> IntercomClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    def _admin(self) -> str:
        if not self.credentials.admin_id:
            raise ValidationFailed("No Intercom admin id configured.", field="admin_id")
        return self.credentials.admin_id

    # Contacts ---------------------------------------------------------------------------------
    async def find_contact(self, email: str) -> dict[str, Any] | None:
        """POST /contacts/search by exact email (a read: safe to retry) → the first match or None."""
        body = {"query": {"field": "email", "operator": "=", "value": email}}
        found = await self._http.post_json("/contacts/search", body, idempotent=True)
        data = (found or {}).get("data") if isinstance(found, dict) else None
        if not isinstance(data, list):
            raise IntegrationUnavailable("Intercom's search answer has no data list.", outcome="failed")
        return data[0] if data else None

    async def create_contact(self, email: str, name: str | None, external_id: str) -> dict[str, Any]:
        """POST /contacts (role user)."""
        body: dict[str, Any] = {"role": "user", "email": email, "external_id": external_id}
        if name:
            body["name"] = name
        return _object(await self._http.post_json("/contacts", body), "contact")

    async def update_contact(self, contact_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """PUT /contacts/{id} with the changed fields."""
        answer = await self._http.request("PUT", f"/contacts/{contact_id}", json=fields)
        try:
            decoded = answer.json()
        except ValueError:
            decoded = None
        return _object(decoded, "contact")

    async def create_note(self, contact_id: str, body: str) -> dict[str, Any]:
        """POST /contacts/{id}/notes as the configured admin (sent once)."""
        payload = {"body": body, "admin_id": self._admin()}
        return _object(await self._http.post_json(f"/contacts/{contact_id}/notes", payload), "note")

    async def tag_contact(self, contact_id: str, tag: str) -> dict[str, Any]:
        """Create-or-find the tag (POST /tags, idempotent by name), then POST /contacts/{id}/tags."""
        created = _object(await self._http.post_json("/tags", {"name": tag}, idempotent=True), "tag")
        answer = await self._http.post_json(
            f"/contacts/{contact_id}/tags", {"id": str(created["id"])}, idempotent=True
        )
        return _object(answer, "tag")

    # Conversations and messages -----------------------------------------------------------------
    async def conversations(
        self, *, per_page: int = 50, max_pages: int = 10
    ) -> AsyncIterator[dict[str, Any]]:
        """GET /conversations, following `pages.next.starting_after`."""
        async for item in self._http.paginate_cursor(
            "/conversations",
            items="conversations",
            next_cursor="pages.next.starting_after",
            cursor_param="starting_after",
            params={"per_page": per_page},
            max_pages=max_pages,
        ):
            if isinstance(item, dict):
                yield item

    async def reply(self, conversation_id: str, body: str) -> dict[str, Any]:
        """POST /conversations/{id}/reply as the admin (a public comment; sent once)."""
        payload = {"message_type": "comment", "type": "admin", "admin_id": self._admin(), "body": body}
        return _object(
            await self._http.post_json(f"/conversations/{conversation_id}/reply", payload), "conversation"
        )

    async def message(self, contact_id: str, subject: str, body: str) -> dict[str, Any]:
        """POST /messages: an admin-initiated email to a user (sent once)."""
        payload = {
            "message_type": "email",
            "subject": subject,
            "body": body,
            "template": "plain",
            "from": {"type": "admin", "id": int(self._admin())},
            "to": {"type": "user", "id": contact_id},
        }
        return _object(await self._http.post_json("/messages", payload), "message")
