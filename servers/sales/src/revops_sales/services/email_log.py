"""Logged e-mail: messages received from (or sent outside Gmail to) contacts, bounces, and the list.

A logged received message is an `email_received` activity and stops the sequences of its thread; a
bounce is no touch (no activity) and pauses them; a message sent outside this server is an
`email_sent` activity. A Message-ID logged twice is a conflict, so a repeated log changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, ValidationFailed
from revops_core.outputs import Out
from revops_core.paging import Page, paginate
from revops_sales.models.email import SalesEmailMessage, SalesSequenceEnrollment
from revops_sales.services import activities, companies, deals, sequences
from revops_sales.services.gmail_send import MessageOut


class LoggedOut(Out):
    message: MessageOut = Field(description="The stored message.")
    stopped_enrollments: list[int] = Field(
        description="Sequence enrolments stopped (reply) or paused (bounce)."
    )


def log(
    session: Session,
    tenant: str,
    actor: str,
    *,
    direction: str,
    contact_id: int,
    subject: str,
    occurred_at: datetime,
    thread_id: str | None,
    rfc_message_id: str | None,
    deal_id: int | None,
) -> LoggedOut:
    contact = companies.get_contact(session, tenant, contact_id)
    if deal_id is not None:
        deals.get(session, tenant, deal_id)
    if direction == "bounced" and not thread_id:
        raise ValidationFailed("A bounce names the thread it bounced in.", field="thread_id")
    key = hashlib.sha256(f"logged:{rfc_message_id}".encode()).hexdigest() if rfc_message_id else None
    if (
        key is not None
        and session.exec(
            select(SalesEmailMessage.id).where(
                SalesEmailMessage.tenant == tenant, SalesEmailMessage.dedupe_key == key
            )
        ).first()
    ):
        raise Conflict(
            f"A message with Message-ID {rfc_message_id} is already logged.", field="rfc_message_id"
        )
    row = SalesEmailMessage(
        tenant=tenant,
        status=direction,
        owner=actor,
        contact_id=contact.id,
        deal_id=deal_id,
        recipients=json.dumps([contact.email]),
        subject=subject,
        thread_id=thread_id,
        rfc_message_id=rfc_message_id,
        dedupe_key=key,
        occurred_at=occurred_at,
    )
    session.add(row)
    session.flush()
    if direction != "bounced":
        activities.record(
            session,
            tenant,
            kind="email_received" if direction == "received" else "email_sent",
            occurred_at=occurred_at,
            owner=actor,
            deal_id=deal_id,
            contact_id=contact.id,
            company_id=contact.company_id,
            subject=subject,
            source=("sales_email_message", row.id or 0),
        )
    changed: list[int] = []
    if thread_id and direction in ("received", "bounced"):
        changed = sequences.on_logged(session, tenant, thread_id=thread_id, status=direction)
    return LoggedOut(message=MessageOut.model_validate(row), stopped_enrollments=changed)


def page(
    session: Session,
    tenant: str,
    *,
    status: str | None,
    contact_id: int | None,
    thread_id: str | None,
    sequence_id: int | None,
    limit: int,
    cursor: str | None,
) -> Page[MessageOut]:
    m = SalesEmailMessage
    query = select(m).where(m.tenant == tenant)
    if status is not None:
        query = query.where(m.status == status)
    if contact_id is not None:
        query = query.where(m.contact_id == contact_id)
    if thread_id is not None:
        query = query.where(m.thread_id == thread_id)
    if sequence_id is not None:
        sequences.get(session, tenant, sequence_id)
        enrolled = select(SalesSequenceEnrollment.id).where(
            SalesSequenceEnrollment.sequence_id == sequence_id
        )
        query = query.where(col(m.sequence_enrollment_id).in_(enrolled))
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[m.occurred_at, m.id],
        scope="emails",
        descending=True,
        item=MessageOut.model_validate,
    )
