"""CS toolset `communication`: Intercom — push contacts, notes and replies as the admin, and
conversations imported as tickets (vendor first: a vendor failure leaves nothing local)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import Id, Text, WholeNumber, require
from revops_core.server import Call
from revops_cs.services import intercom_sync
from revops_cs.toolsets import communication as toolset
from revops_cs.vendors import intercom

Action = Literal["push_contacts", "note", "reply", "import_conversations"]


@toolset.tool(tier="write", idempotent=False, open_world=True, title="Sync with Intercom")
def sync_intercom(
    call: Call,
    action: Annotated[Action, Field(description="What to do.")],
    client_id: Annotated[int | None, Id("client", see="list_clients", optional="push_contacts, note")] = None,
    contact_id: Annotated[int | None, Id("contact", optional="one contact of the client")] = None,
    body: Annotated[str | None, Text("note/reply: text.", max_length=10_000)] = None,
    tag: Annotated[str | None, Text("push_contacts: tag to add.", max_length=100)] = None,
    conversation_id: Annotated[
        str | None, Field(pattern=r"^\d{1,30}$", description="reply: Intercom conversation id.")
    ] = None,
    max_pages: Annotated[int, Field(ge=1, le=50, description="import: pages of 50."), WholeNumber] = 5,
) -> intercom_sync.IntercomResult:
    """Push contacts to Intercom, add notes/replies there, or import conversations as tickets."""
    when = f"action={action}"
    if action == "import_conversations":
        return intercom_sync.import_conversations(call, intercom.require_credentials(call.runtime), max_pages)
    if action == "reply":
        conversation = require(conversation_id, "conversation_id", when=when)
        text = require(body, "body", when=when)
        creds = intercom.require_credentials(call.runtime, need_admin=True)
        return intercom_sync.reply(call, creds, conversation, text)
    client = require(client_id, "client_id", when=when)
    if action == "note":
        text = require(body, "body", when=when)
        creds = intercom.require_credentials(call.runtime, need_admin=True)
        return intercom_sync.note(call, creds, client, contact_id, text)
    return intercom_sync.push_contacts(
        call, intercom.require_credentials(call.runtime), client, contact_id, tag
    )
