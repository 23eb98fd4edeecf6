"""Intercom sync: push client contacts (and tags), write notes and replies as the admin, and import
conversations as tickets.

An imported ticket's first response is the conversation's `statistics.first_admin_reply_at` (a
timestamp, so SLA compliance measures calendar time like every other ticket; `time_to_admin_reply`
subtracts office hours and is not used); a conversation without one is unanswered.

Vendor-first: the local rows a call needs are read in a short transaction of their own, Intercom is
called with no write lock held, then the mapping (`CsExternalRef`) or the tickets are written in the
call's transaction — a vendor failure leaves nothing local.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import IntegrationUnavailable, NotFound, ValidationFailed
from revops_core.models import CoreContact
from revops_cs.models.clients import CsClient
from revops_cs.models.support import CsTicket
from revops_cs.models.vendors import CsExternalRef
from revops_cs.output import Out
from revops_cs.services.clients import get_client
from revops_cs.services.email_send import live_contacts
from revops_cs.vendors import intercom

if TYPE_CHECKING:
    from revops_core.server import Call

T = TypeVar("T")


class IntercomItem(Out):
    local_id: int | None = Field(description="Contact or ticket id here.")
    intercom_id: str | None = Field(description="Id at Intercom.")
    status: str = Field(description="created | updated | tagged | noted | replied | imported | unmapped.")


class IntercomResult(Out):
    action: str = Field(description="Action done.")
    items: list[IntercomItem] = Field(description="One row per record touched.")
    unmapped: int = Field(description="import: conversations whose contact is not a known client contact.")


def _refs(session: Session, kind: str) -> dict[int, str]:
    rows = session.exec(
        select(CsExternalRef.local_id, CsExternalRef.external_id).where(
            CsExternalRef.vendor == "intercom", CsExternalRef.kind == kind
        )
    )
    return dict(rows.all())


def _save_refs(call: Call, pairs: list[tuple[int, str]]) -> None:
    known = _refs(call.db, "contact")
    for local_id, remote in pairs:
        if known.get(local_id) == remote:
            continue
        row = call.db.exec(
            select(CsExternalRef).where(
                CsExternalRef.vendor == "intercom",
                CsExternalRef.kind == "contact",
                CsExternalRef.local_id == local_id,
            )
        ).first() or CsExternalRef(vendor="intercom", kind="contact", local_id=local_id, external_id=remote)
        row.external_id = remote
        call.db.add(row)


async def _push_contacts(
    ic: intercom.IntercomClient, contacts: list[CoreContact], refs: dict[int, str], tag: str | None
) -> list[IntercomItem]:
    items = []
    for c in contacts:
        name = " ".join(n for n in (c.first_name, c.last_name) if n) or None
        remote_id = refs.get(c.id or 0)
        if remote_id is None:
            found = await ic.find_contact(c.email)
            remote_id = str(found["id"]) if found else None
        if remote_id is None:
            remote_id = str((await ic.create_contact(c.email, name, str(c.id)))["id"])
            status = "created"
        else:
            await ic.update_contact(remote_id, {"name": name} if name else {"email": c.email})
            status = "updated"
        if tag:
            await ic.tag_contact(remote_id, tag)
            status += "+tagged"
        items.append(IntercomItem(local_id=c.id, intercom_id=remote_id, status=status))
    return items


async def _resolve_remote(ic: intercom.IntercomClient, contact: CoreContact, refs: dict[int, str]) -> str:
    if contact.id in refs:
        return refs[contact.id or 0]
    found = await ic.find_contact(contact.email)
    if found is None:
        raise NotFound(
            f"{contact.email} is not an Intercom contact.",
            field="contact_id",
            hint="Run sync_intercom action=push_contacts for the client first.",
        )
    return str(found["id"])


def _unix(value: Any) -> datetime | None:
    """A Unix time in seconds (how Intercom sends times) as an aware datetime; None if it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 10**11:
        return datetime.fromtimestamp(value, UTC)
    return None


def _stamp(*values: Any) -> datetime:
    """The first Unix time among `values` that is one (Intercom sends seconds)."""
    for value in values:
        if (stamp := _unix(value)) is not None:
            return stamp
    raise IntegrationUnavailable("An Intercom conversation has no valid created_at.", outcome="failed")


def _first_reply(conv: dict[str, Any], conv_id: str, created: datetime) -> datetime | None:
    """When an admin first replied: `statistics.first_admin_reply_at` (API 2.14); None = not answered.

    Absent or null (statistics are nullable) is an unanswered conversation; a value that is not a
    time, or a reply before the conversation began, breaks the documented shape: the import fails.
    """
    stats = conv.get("statistics")
    raw = stats.get("first_admin_reply_at") if isinstance(stats, dict) else stats
    if raw is None:
        return None
    reply = _unix(raw) if isinstance(stats, dict) else None
    if reply is None or reply < created:
        raise IntegrationUnavailable(
            f"Intercom conversation {conv_id} has an invalid statistics.first_admin_reply_at.",
            outcome="failed",
            retryable=False,
        )
    return reply


def _store_conversations(
    session: Session, conversations: list[dict[str, Any]]
) -> tuple[list[IntercomItem], int]:
    """Upsert conversations as tickets (channel intercom) of the client whose contact started them."""
    by_remote = {remote: local for local, remote in _refs(session, "contact").items()}
    items: list[IntercomItem] = []
    unmapped = 0
    for conv in conversations:
        conv_id = str(conv.get("id") or "")
        people = (
            ((conv.get("contacts") or {}).get("contacts") or [])
            if isinstance(conv.get("contacts"), dict)
            else []
        )
        if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
            # The vendor broke its documented shape: say so, and store nothing of this import.
            raise IntegrationUnavailable(
                f"Intercom returned conversation {conv_id or '?'} with contacts that are not objects.",
                outcome="failed",
                retryable=False,
            )
        local_contact = next(
            (by_remote[str(p.get("id"))] for p in people if str(p.get("id")) in by_remote), None
        )
        contact = session.get(CoreContact, local_contact) if local_contact else None
        client = (
            session.exec(
                select(CsClient).where(
                    CsClient.company_id == contact.company_id, col(CsClient.deleted_at).is_(None)
                )
            ).first()
            if contact and contact.company_id
            else None
        )
        if not conv_id or client is None:
            unmapped += 1
            continue
        raw_source = conv.get("source")
        source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
        created = _stamp(conv.get("created_at"))
        updated = _stamp(conv.get("updated_at"), conv.get("created_at"))
        first_reply = _first_reply(conv, conv_id, created)
        ticket = session.exec(
            select(CsTicket).where(CsTicket.external_source == "intercom", CsTicket.external_id == conv_id)
        ).first()
        status = "updated" if ticket else "imported"
        subject = str(conv.get("title") or source.get("subject") or "Intercom conversation")[:300]
        ticket = ticket or CsTicket(
            client_id=client.id or 0, subject=subject, external_source="intercom", external_id=conv_id
        )
        ticket.contact_id = contact.id if contact else None
        ticket.subject = subject
        ticket.description = re.sub(r"<[^>]+>", "", str(source.get("body") or ""))
        ticket.status = "open" if conv.get("state") in ("open", "snoozed") else "solved"
        ticket.priority = "high" if conv.get("priority") == "priority" else "normal"
        ticket.channel, ticket.created_at, ticket.updated_at = "intercom", created, updated
        ticket.first_response_at = first_reply
        ticket.solved_at = updated if ticket.status == "solved" else None
        session.add(ticket)
        session.flush()
        items.append(IntercomItem(local_id=ticket.id, intercom_id=conv_id, status=status))
    return items, unmapped


# --------------------------------------------------------------------------- jobs


def _with_client(
    call: Call, creds: intercom.IntercomCredentials, work: Callable[[intercom.IntercomClient], Awaitable[T]]
) -> T:
    """Run `work` with an Intercom client (options from the vendor seam) from a synchronous body."""

    async def run() -> T:
        options = call.vendor_options(intercom.SPEC.provider)
        async with intercom.IntercomClient(creds, call.settings, **options) as ic:
            return await work(ic)

    return call.run_async(run)


def _targets(call: Call, client_id: int, contact_id: int | None) -> tuple[list[CoreContact], dict[int, str]]:
    """The client's contacts (or the one named) and their known Intercom ids, read in a short transaction."""
    with call.runtime.db.session() as session:
        client = get_client(session, client_id)
        contacts = live_contacts(session, client, [contact_id] if contact_id else None)
        if not contacts:
            raise ValidationFailed(
                "No such contact for this client." if contact_id else "The client has no contacts.",
                field="contact_id" if contact_id else "client_id",
                hint="Use a contact of the client's company.",
            )
        return contacts, _refs(session, "contact")


def push_contacts(
    call: Call, creds: intercom.IntercomCredentials, client_id: int, contact_id: int | None, tag: str | None
) -> IntercomResult:
    """Create or update the client's contacts at Intercom (tagging them), then store the mapping."""
    contacts, refs = _targets(call, client_id, contact_id)
    items = _with_client(call, creds, lambda ic: _push_contacts(ic, contacts, refs, tag))
    _save_refs(call, [(i.local_id or 0, i.intercom_id or "") for i in items])
    call.target = f"cs_client:{client_id}"
    return IntercomResult(action="push_contacts", items=items, unmapped=0)


def note(
    call: Call, creds: intercom.IntercomCredentials, client_id: int, contact_id: int | None, body: str
) -> IntercomResult:
    """A note on the named contact (default: the primary one) at Intercom, written as the admin."""
    contacts, refs = _targets(call, client_id, contact_id)
    target = next((c for c in contacts if c.is_primary), contacts[0])

    async def write(ic: intercom.IntercomClient) -> tuple[str, str]:
        remote = await _resolve_remote(ic, target, refs)
        return remote, str((await ic.create_note(remote, body))["id"])

    remote, note_id = _with_client(call, creds, write)
    _save_refs(call, [(target.id or 0, remote)])
    call.target = f"cs_client:{client_id}"
    call.audit_details["note_id"] = note_id
    return IntercomResult(
        action="note",
        items=[IntercomItem(local_id=target.id, intercom_id=remote, status="noted")],
        unmapped=0,
    )


def reply(call: Call, creds: intercom.IntercomCredentials, conversation_id: str, body: str) -> IntercomResult:
    """A public reply in an Intercom conversation, as the admin."""
    _with_client(call, creds, lambda ic: ic.reply(conversation_id, body))
    call.target = f"intercom:conversation:{conversation_id}"
    item = IntercomItem(local_id=None, intercom_id=conversation_id, status="replied")
    return IntercomResult(action="reply", items=[item], unmapped=0)


def import_conversations(call: Call, creds: intercom.IntercomCredentials, max_pages: int) -> IntercomResult:
    """Intercom conversations (pages of 50) as tickets; everything read is stored in one transaction."""

    async def read(ic: intercom.IntercomClient) -> list[dict[str, Any]]:
        return [c async for c in ic.conversations(max_pages=max_pages)]

    conversations = _with_client(call, creds, read)
    items, unmapped = _store_conversations(call.db, conversations)
    call.target = "intercom:conversations"
    return IntercomResult(action="import_conversations", items=items, unmapped=unmapped)
