"""Zendesk both ways: ticket changes mirrored out, the incremental ticket export brought in.

Mirroring order (`apply_mirrored`, for create_ticket and update_ticket): validate in a short read
transaction → send the change to Zendesk → write the local change (with the Zendesk id) in the
call's one write transaction. A vendor failure therefore leaves nothing local to undo, and no write
lock is held during network I/O. If the local write fails *after* Zendesk accepted the change, the
next `sync_zendesk_tickets` brings the ticket back in by its Zendesk id (created tickets also carry
our `external_id` reference).

The export (`sync_tickets`) is fetched page by page first and written with its cursor in one
transaction, so a failure mid-export stores nothing and the next run resumes at the stored cursor.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import IntegrationUnavailable
from revops_core.params import start_of_day
from revops_core.server import Call, Runtime
from revops_cs.models.clients import CsClient
from revops_cs.models.support import CsSyncCursor, CsTicket
from revops_cs.output import Out
from revops_cs.services import tickets
from revops_cs.services.tickets import TicketChange, TicketOut, TicketResult
from revops_cs.vendors import zendesk

VENDOR = "zendesk"  # CsTicket.external_source and CsSyncCursor.vendor of mirrored rows
STREAM = "tickets"
LOCAL_ONLY = "Only local fields changed (assignee, CSAT); Zendesk was not called."


# --------------------------------------------------------------------------- mirroring out


def vendor_body(change: TicketChange, ticket: CsTicket | None, ref: str) -> dict[str, Any]:
    """The Zendesk request body for a change (assignee stays local: agents are not Zendesk users)."""
    if change.action == "create":
        return zendesk.ticket_body(
            subject=change.subject,
            comment=change.body,
            priority=change.priority or "normal",
            tags=change.tags or [],
            external_id=ref,
        )
    if change.action == "comment":
        return zendesk.ticket_body(comment=change.body, public=change.public)
    if change.action == "resolve":
        return zendesk.ticket_body(comment=change.body, public=True, status="solved")
    if change.action == "escalate":
        assert ticket is not None
        return zendesk.ticket_body(
            tags=sorted({*json.loads(ticket.tags), "escalated"}), comment=change.body, public=False
        )
    return zendesk.ticket_body(
        subject=change.subject, priority=change.priority, status=change.status, tags=change.tags
    )


def _snapshot(
    runtime: Runtime, change: TicketChange
) -> tuple[CsTicket | None, zendesk.ZendeskCredentials | str]:
    """Validate in a short read transaction; the credentials to mirror with, or why not."""
    with runtime.db.session() as session:
        ticket = tickets.validate(session, change)
    found = zendesk.load_credentials(runtime)
    if isinstance(found, tuple):
        return ticket, zendesk.not_configured_reason(found)
    if ticket is not None and ticket.zendesk_id is None:
        return ticket, "The ticket has no Zendesk id (created locally before Zendesk was configured)."
    return ticket, found


async def _send(
    call: Call, change: TicketChange, ticket: CsTicket | None, creds: zendesk.ZendeskCredentials
) -> str:
    """Send the change to Zendesk; the Zendesk ticket id. Raises (nothing local written yet) on failure."""
    body = vendor_body(change, ticket, f"revops-cs:{uuid.uuid4().hex}")
    async with zendesk.ZendeskClient(
        creds, call.settings, **call.vendor_options(zendesk.SPEC.provider)
    ) as zd:
        if ticket is None:
            remote = await zd.create_ticket(body)
        else:
            remote = await zd.update_ticket(str(ticket.zendesk_id), body)
    if "id" not in remote:
        raise IntegrationUnavailable("Zendesk's answer carries no ticket id.", outcome="unknown")
    return str(remote["id"])


def _write_local(call: Call, change: TicketChange, zendesk_id: str | None) -> TicketResult:
    ticket, escalation = tickets.apply(call.db, change, actor=call.actor, zendesk_id=zendesk_id)
    call.target = f"cs_ticket:{ticket.id}"
    if escalation is not None:
        call.audit_details["escalation_id"] = escalation.id
    return TicketResult(
        ticket=TicketOut.model_validate(ticket),
        escalation_id=escalation.id if escalation else None,
        escalation_due_at=escalation.due_at if escalation else None,
        mirrored=False,
        mirror_note=None,
    )


async def apply_mirrored(call: Call, change: TicketChange) -> TicketResult:
    """Apply a ticket change locally, mirrored to Zendesk first when configured (order above)."""
    ticket, mirror = await call.in_thread(partial(_snapshot, call.runtime, change))
    zendesk_id, note = None, mirror if isinstance(mirror, str) else None
    if isinstance(mirror, zendesk.ZendeskCredentials):
        if vendor_body(change, ticket, "")["ticket"]:
            zendesk_id = await _send(call, change, ticket, mirror)
        else:
            note = LOCAL_ONLY
    created_id = zendesk_id if change.action == "create" else None
    result = await call.in_thread(partial(_write_local, call, change, created_id))
    result.mirrored, result.mirror_note = zendesk_id is not None, note
    call.audit_details["mirrored"] = result.mirrored
    return result


# --------------------------------------------------------------------------- the export in


class SyncResult(Out):
    pages: int = Field(description="Export pages fetched.")
    fetched: int = Field(description="Tickets received.")
    created: int = Field(description="New local tickets.")
    updated: int = Field(description="Local tickets updated.")
    skipped_unmatched: int = Field(description="Organization maps to no client.")
    end_of_stream: bool = Field(description="False: more pages remain; call again to continue.")
    cursor_saved: bool = Field(description="Cursor stored for the next incremental run.")


@dataclass
class _Export:
    tickets: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    cursor: str | None = None
    pages: int = 0
    done: bool = False


def client_by_org(session: Session) -> dict[str, int]:
    """Zendesk organization id → client id, from `CsClient.external_ids["zendesk"]`."""
    out: dict[str, int] = {}
    for cid, ext in session.exec(
        select(CsClient.id, CsClient.external_ids).where(col(CsClient.deleted_at).is_(None))
    ):
        try:
            org = json.loads(ext or "{}").get("zendesk")
        except ValueError:
            continue
        if org is not None and cid is not None:
            out[str(org)] = cid
    return out


def _cursor_row(session: Session) -> CsSyncCursor | None:
    return session.exec(
        select(CsSyncCursor).where(CsSyncCursor.vendor == VENDOR, CsSyncCursor.stream == STREAM)
    ).first()


def _stored_cursor(runtime: Runtime) -> str | None:
    with runtime.db.session() as session:
        row = _cursor_row(session)
        return row.cursor if row else None


def _upsert(session: Session, remote: dict[str, Any], client_id: int, metric: dict[str, Any] | None) -> bool:
    """Insert or update the local copy of one exported ticket; True when it was new."""
    zid = str(remote.get("id"))
    try:
        values = zendesk.local_fields(remote, metric)
    except (ValueError, TypeError) as exc:
        raise IntegrationUnavailable(
            f"Zendesk ticket {zid} has an unreadable field; nothing was stored.",
            outcome="failed",
            retryable=False,
        ) from exc
    local = session.exec(
        select(CsTicket).where(CsTicket.external_source == VENDOR, CsTicket.external_id == zid)
    ).first()
    created = local is None
    if local is None:
        local = CsTicket(client_id=client_id, external_source=VENDOR, external_id=zid, **values)
    else:
        for key, value in values.items():
            setattr(local, key, value)
        local.client_id = client_id
    session.add(local)
    return created


def _store(call: Call, export: _Export) -> SyncResult:
    session = call.db
    orgs = client_by_org(session)
    created = updated = skipped = 0
    for remote in export.tickets:
        client_id = orgs.get(str(remote.get("organization_id")))
        if client_id is None:
            skipped += 1
        elif _upsert(session, remote, client_id, export.metrics.get(str(remote.get("id")))):
            created += 1
        else:
            updated += 1
    if export.cursor:
        row = _cursor_row(session) or CsSyncCursor(vendor=VENDOR, stream=STREAM, cursor=export.cursor)
        row.cursor, row.synced_at = export.cursor, datetime.now(UTC)
        session.add(row)
    session.flush()
    call.audit_details.update(created=created, updated=updated)
    return SyncResult(
        pages=export.pages,
        fetched=len(export.tickets),
        created=created,
        updated=updated,
        skipped_unmatched=skipped,
        end_of_stream=export.done,
        cursor_saved=bool(export.cursor),
    )


async def _fetch(
    call: Call, creds: zendesk.ZendeskCredentials, cursor: str | None, start_time: int, max_pages: int
) -> _Export:
    export = _Export(cursor=cursor)
    async with zendesk.ZendeskClient(
        creds, call.settings, **call.vendor_options(zendesk.SPEC.provider)
    ) as zd:
        while export.pages < max_pages and not export.done:
            page = await zd.export_tickets(start_time=start_time, cursor=export.cursor)
            export.pages += 1
            export.tickets.extend(t for t in page.get("tickets") or [] if isinstance(t, dict))
            for m in page.get("metric_sets") or []:
                if isinstance(m, dict):
                    export.metrics[str(m.get("ticket_id"))] = m
            export.cursor = page.get("after_cursor") or export.cursor
            export.done = bool(page.get("end_of_stream"))
            if call.ctx is not None:
                total = None if export.done else max_pages
                await call.ctx.report_progress(export.pages, total, f"{len(export.tickets)} tickets fetched")
    return export


async def sync_tickets(call: Call, *, restart: bool, since: date | None, max_pages: int) -> SyncResult:
    """Import Zendesk tickets from the stored cursor (or from `since`), at most `max_pages` pages."""
    creds = await call.in_thread(partial(zendesk.require_credentials, call.runtime))
    cursor = None if restart else await call.in_thread(partial(_stored_cursor, call.runtime))
    start_time = int(start_of_day(since).timestamp()) if since else 0
    export = await _fetch(call, creds, cursor, start_time, max_pages)
    # Everything fetched is written with the cursor in one transaction: a failure above stores nothing.
    return await call.in_thread(partial(_store, call, export))
