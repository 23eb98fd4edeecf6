"""The one Gmail send pipeline: manual e-mails, replies, drafts and sequence steps.

    token = call.run_async(google_auth.access_token, call)    # 1. before the call's transaction
    items = [gmail_send.new_message(...)] or reply(...)        # 2. checked input
    results = gmail_send.deliver(call, token, items)           # 3. send each once, store, log

1. The access token is fetched (and refreshed when due) first: a refresh writes the vault, which on
   SQLite would wait behind the tool's open write transaction.
2. Every item has a `dedupe_key`: hash(recipients, subject, body, thread) for a manual e-mail,
   `sequence:<enrolment>:<step>` for a sequence step. A key stored before — whatever its status —
   is reported `already_sent` and not sent again, so a retry after a timeout never double-sends.
3. Each message is POSTed once. Gmail's answer decides what is stored: `sent` (a row and one
   `email_sent` activity per contact), `unknown` (timed out or garbled answer: a row, no activity,
   never resent automatically), or nothing when Gmail refused it. If every item failed outright
   the first error is raised and the call's transaction rolls back.
Locking: step 3 (the already-sent check, the sends, the rows) runs in the call's one write
transaction, as CS's send pipeline does, so two identical concurrent sends serialise and the
second finds the first's row. Inputs are checked before, in a read transaction (`call.reading()`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import CircuitOpen, ConfigurationError, IntegrationAuth, RevOpsError, ValidationFailed
from revops_core.models import CoreContact
from revops_core.outputs import FromJson, Out
from revops_core.records import live
from revops_core.secret_values import Secret
from revops_sales.models.email import SalesEmailMessage
from revops_sales.services import activities, companies, deals
from revops_sales.vendors import gmail, google_auth

if TYPE_CHECKING:
    from revops_core.server import Call

Status = Literal["sent", "unknown", "draft", "already_sent", "failed", "not_attempted"]


class MessageOut(Out):
    id: int = Field(description="Message id.")
    status: str = Field(
        description="sent, unknown (no clear answer; not resent), draft, received or bounced."
    )
    owner: str | None = Field(description="Rep.")
    contact_id: int | None = Field(description="First contact.")
    deal_id: int | None = Field(description="Deal.")
    recipients: Annotated[list[str], FromJson] = Field(description="Addresses.")
    subject: str = Field(description="Subject.")
    thread_id: str | None = Field(description="Gmail thread id.")
    gmail_id: str | None = Field(description="Gmail message (or draft) id.")
    rfc_message_id: str | None = Field(description="Message-ID header.")
    sequence_enrollment_id: int | None = Field(description="Sequence enrolment that sent it.")
    occurred_at: datetime = Field(description="Sent, drafted or received (UTC).")


class SendResult(Out):
    status: str = Field(description="sent, unknown, draft, already_sent, failed or not_attempted.")
    to: list[str] = Field(description="Addresses.")
    message: MessageOut | None = Field(description="The stored row (none when nothing was stored now).")
    error: str | None = Field(description="Error code when failed.")


@dataclass
class Outgoing:
    """One message to send (or draft): recipients, text, thread and where to log it."""

    contact_ids: list[int]
    to: list[str]
    subject: str
    body: str
    thread_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    deal_id: int | None = None
    enrollment_id: int | None = None
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            parts = (
                ",".join(sorted(a.lower() for a in self.to)),
                self.subject,
                self.body,
                self.thread_id or "",
            )
            self.key = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass
class Delivered:
    item: Outgoing
    status: Status
    mime: gmail.Mime | None = None
    ids: dict[str, str] = field(default_factory=dict)
    error: RevOpsError | None = None
    row: SalesEmailMessage | None = None

    def result(self) -> SendResult:
        return SendResult(
            status=self.status,
            to=self.item.to,
            message=MessageOut.model_validate(self.row) if self.row is not None else None,
            error=self.error.code if self.error else None,
        )


def existing(session: Session, tenant: str, keys: list[str]) -> dict[str, SalesEmailMessage]:
    if not keys:
        return {}
    rows = session.exec(
        select(SalesEmailMessage).where(
            SalesEmailMessage.tenant == tenant, col(SalesEmailMessage.dedupe_key).in_(keys)
        )
    )
    return {row.dedupe_key or "": row for row in rows}


async def _send_all(call: Call, token: Secret, items: list[Outgoing], draft: bool) -> list[Delivered]:
    """POST each message once; stop early on failures that would repeat for every one (auth, breaker)."""
    out: list[Delivered] = []
    options = google_auth.client_options(call, gmail.PROVIDER)
    async with gmail.GmailClient(token, call.settings, **options) as client:
        for i, item in enumerate(items):
            mime = gmail.build(
                to=item.to,
                subject=item.subject,
                body=item.body,
                sent_at=utcnow(),
                in_reply_to=item.in_reply_to,
                references=item.references,
            )
            try:
                ids = await (client.create_draft if draft else client.send)(mime, item.thread_id)
                out.append(Delivered(item, "draft" if draft else "sent", mime, ids))
            except RevOpsError as err:
                out.append(
                    Delivered(item, "unknown" if err.outcome == "unknown" else "failed", mime, error=err)
                )
                if isinstance(err, IntegrationAuth | CircuitOpen | ConfigurationError):
                    out.extend(Delivered(rest, "not_attempted") for rest in items[i + 1 :])
                    break
    return out


def _store(call: Call, done: Delivered) -> None:
    item, mime = done.item, done.mime
    assert mime is not None  # only stored after an attempt, which built the message
    now = utcnow()
    row = SalesEmailMessage(
        tenant=call.tenant,
        status=done.status,
        owner=call.actor,
        contact_id=item.contact_ids[0] if item.contact_ids else None,
        deal_id=item.deal_id,
        recipients=json.dumps(item.to),
        subject=item.subject[:300],
        body=item.body,
        thread_id=done.ids.get("threadId") or item.thread_id,
        gmail_id=done.ids.get("id"),
        rfc_message_id=mime.message_id,
        references=mime.references,
        sequence_enrollment_id=item.enrollment_id,
        dedupe_key=item.key,
        occurred_at=now,
    )
    call.db.add(row)
    call.db.flush()
    done.row = row
    if done.status == "sent":  # a confirmed touch; an unknown one may never have left
        for contact_id in item.contact_ids:
            activities.record(
                call.db,
                call.tenant,
                kind="email_sent",
                occurred_at=now,
                owner=call.actor,
                deal_id=item.deal_id,
                contact_id=contact_id,
                subject=item.subject,
                source=("sales_email_message", row.id or 0),
            )


def deliver(call: Call, token: Secret, items: list[Outgoing], *, draft: bool = False) -> list[Delivered]:
    """Send (or draft) each item not sent before, store what Gmail has, log the touches.

    Raises the first error when Gmail has none of them (nothing stored). Call from a sync tool body."""
    if draft:  # a draft is not a send: drafting a text must not make its later send "already sent"
        for i in items:
            i.key = hashlib.sha256(f"draft:{i.key}".encode()).hexdigest()
    seen = existing(call.db, call.tenant, [i.key for i in items])
    already = [Delivered(i, "already_sent", row=seen[i.key]) for i in items if i.key in seen]
    fresh = [i for i in items if i.key not in seen]
    done = call.run_async(_send_all, call, token, fresh, draft) if fresh else []
    if done and all(d.status in ("failed", "not_attempted") for d in done):
        raise next(d.error for d in done if d.error is not None)
    for d in done:
        if d.status in ("sent", "unknown", "draft"):
            _store(call, d)
    call.audit_details["sent"] = sum(d.status == "sent" for d in done)
    call.audit_details["unknown"] = sum(d.status == "unknown" for d in done)
    return done + already


# --------------------------------------------------------------------------- input


def _live_recipients(session: Session, tenant: str, contact_ids: list[int]) -> list[CoreContact]:
    contacts = [companies.get_contact(session, tenant, cid) for cid in dict.fromkeys(contact_ids)]
    unsubscribed = [c.id for c in contacts if c.unsubscribed_at is not None]
    if unsubscribed:
        raise ValidationFailed(
            f"Contact(s) {unsubscribed} unsubscribed; nothing was sent.",
            field="contact_ids",
            hint="Remove them from the recipients.",
        )
    return contacts


def new_message(
    session: Session, tenant: str, *, contact_ids: list[int], subject: str, body: str, deal_id: int | None
) -> Outgoing:
    """A new e-mail (new thread) to live, subscribed contacts."""
    if deal_id is not None:
        deals.get(session, tenant, deal_id)
    contacts = _live_recipients(session, tenant, contact_ids)
    return Outgoing(
        [c.id or 0 for c in contacts], [c.email for c in contacts], subject, body, deal_id=deal_id
    )


def get_message(
    session: Session, tenant: str, message_id: int, *, field: str = "message_id"
) -> SalesEmailMessage:
    return live(
        session, SalesEmailMessage, message_id, tenant=tenant, field=field, what="e-mail", see="list_emails"
    )


def reply(
    session: Session,
    tenant: str,
    *,
    message_id: int,
    contact_ids: list[int] | None,
    subject: str | None,
    body: str,
) -> Outgoing:
    """A reply in the thread of a stored message: same thread id, In-Reply-To/References its
    Message-ID, subject "Re: …"; to the contacts given, else to whoever the original involved."""
    original = get_message(session, tenant, message_id, field="reply_to_message_id")
    if not original.thread_id or original.status in ("draft", "unknown"):
        raise ValidationFailed(
            f"E-mail {message_id} has no Gmail thread to reply in (status {original.status}).",
            field="reply_to_message_id",
            hint="Reply to a sent or received e-mail.",
        )
    if contact_ids:
        contacts = _live_recipients(session, tenant, contact_ids)
    elif original.status in ("received", "bounced") and original.contact_id is not None:
        contacts = _live_recipients(session, tenant, [original.contact_id])
    else:
        addresses = json.loads(original.recipients)
        found = session.exec(
            select(CoreContact).where(CoreContact.tenant == tenant, col(CoreContact.email).in_(addresses))
        ).all()
        contacts = _live_recipients(session, tenant, [c.id or 0 for c in found if c.deleted_at is None])
    if not contacts:
        raise ValidationFailed("Nobody to reply to.", field="contact_ids", hint="Name the contacts.")
    return Outgoing(
        [c.id or 0 for c in contacts],
        [c.email for c in contacts],
        subject or gmail.reply_subject(original.subject),
        body,
        thread_id=original.thread_id,
        in_reply_to=original.rfc_message_id,
        references=original.references,
        deal_id=original.deal_id,
    )
