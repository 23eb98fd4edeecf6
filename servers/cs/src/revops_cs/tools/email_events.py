"""CS toolset `communication`: SendGrid's event webhook applied to the stored e-mails."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from revops_core.server import Call
from revops_cs.services import email_events
from revops_cs.toolsets import communication as toolset


@toolset.tool(tier="write", idempotent=True, title="Ingest SendGrid events", target="sendgrid:events")
def ingest_email_events(
    call: Call,
    events: Annotated[
        list[dict[str, Any]], Field(min_length=1, max_length=5000, description="The webhook JSON array.")
    ],
) -> email_events.IngestResult:
    """Apply SendGrid webhook events (deduped) to messages; opt-outs unsubscribe the contact."""
    result = email_events.ingest_events(call.db, call.tenant, events)
    call.audit_details.update(stored=result.stored, duplicates=result.duplicates)
    return result
