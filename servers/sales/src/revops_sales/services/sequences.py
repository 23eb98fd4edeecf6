"""Simple e-mail sequences: ordered steps with delays, enrolled contacts, and sending what is due.

An enrolment sends step 0 `delay_days` after enrolment, then each next step `delay_days` after the
previous one was sent, in the same Gmail thread (In-Reply-To the previous step). It ends:
- `completed` after the last step;
- `stopped` when a received message is logged in its thread (the contact replied);
- `paused` when a bounce is logged in its thread (the address failed);
- `held` when a step's send got no clear answer (`unknown`): it is never resent automatically.
A step Gmail refused leaves the enrolment as it was, so the next run tries it again.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import ConfigDict, Field
from sqlmodel import Session, col, or_, select

from revops_core.db import utcnow
from revops_core.errors import Conflict, ValidationFailed
from revops_core.guards import PlanPreview
from revops_core.models import CoreContact
from revops_core.outputs import FromJson, Out
from revops_core.params import MultiLine, SingleLine, WholeNumber
from revops_core.records import live
from revops_sales.models.email import SalesSequence, SalesSequenceEnrollment
from revops_sales.services import companies, deals, gmail_send
from revops_sales.vendors import gmail

MAX_STEPS = 10


class StepIn(Out):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    delay_days: Annotated[int, WholeNumber] = Field(
        ge=0, le=365, description="After the previous step or enrolment."
    )
    subject: Annotated[str | None, SingleLine] = Field(
        default=None, min_length=1, max_length=300, description="Later steps: default Re: step 1."
    )
    body: Annotated[str, MultiLine] = Field(min_length=1, max_length=20_000, description="Plain text.")


class EnrollmentOut(Out):
    id: int = Field(description="Enrolment id.")
    contact_id: int = Field(description="Contact.")
    status: str = Field(
        description="active, completed, stopped (reply), paused (bounce) or held (unknown send)."
    )
    next_step: int = Field(description="Index of the next step to send.")
    next_due_at: datetime | None = Field(description="When it is due (UTC).")
    thread_id: str | None = Field(description="Gmail thread.")


class SequenceOut(Out):
    id: int = Field(description="Sequence id.")
    name: str = Field(description="Name.")
    owner: str = Field(description="Rep.")
    steps: Annotated[list[StepIn], FromJson] = Field(description="Steps in order.")


class EnrolledOut(Out):
    sequence: SequenceOut = Field(description="The sequence.")
    enrollments: list[EnrollmentOut] = Field(description="The enrolments made.")


class RunOut(Out):
    results: list[gmail_send.SendResult] = Field(description="One per due step.")
    enrollments: list[EnrollmentOut] = Field(description="The enrolments afterwards.")
    note: str | None = Field(description="What happened and why.")


def get(session: Session, tenant: str, sequence_id: int) -> SalesSequence:
    return live(
        session,
        SalesSequence,
        sequence_id,
        tenant=tenant,
        field="sequence_id",
        what="sequence",
        see="manage_sequence",
    )


def create(session: Session, tenant: str, owner: str, *, name: str, steps: list[StepIn]) -> SequenceOut:
    if not steps or len(steps) > MAX_STEPS:
        raise ValidationFailed(f"A sequence has 1–{MAX_STEPS} steps.", field="steps")
    if steps[0].subject is None:
        raise ValidationFailed("The first step needs a subject.", field="steps")
    row = SalesSequence(
        tenant=tenant, name=name, owner=owner, steps=json.dumps([s.model_dump() for s in steps])
    )
    session.add(row)
    session.flush()
    return SequenceOut.model_validate(row)


def _steps(sequence: SalesSequence) -> list[StepIn]:
    return [StepIn.model_validate(s) for s in json.loads(sequence.steps)]


def enrol(
    session: Session, tenant: str, *, sequence_id: int, contact_ids: list[int], deal_id: int | None
) -> EnrolledOut:
    sequence = get(session, tenant, sequence_id)
    if deal_id is not None:
        deals.get(session, tenant, deal_id)
    contacts = [companies.get_contact(session, tenant, cid) for cid in dict.fromkeys(contact_ids)]
    if any(c.unsubscribed_at is not None for c in contacts):
        raise ValidationFailed("An unsubscribed contact cannot be enrolled.", field="contact_ids")
    taken = session.exec(
        select(SalesSequenceEnrollment.contact_id).where(
            SalesSequenceEnrollment.sequence_id == sequence_id,
            col(SalesSequenceEnrollment.contact_id).in_([c.id for c in contacts]),
        )
    ).all()
    if taken:
        raise Conflict(f"Contact(s) {sorted(taken)} are already enrolled.", field="contact_ids")
    now = utcnow()
    first = timedelta(days=_steps(sequence)[0].delay_days)
    rows = [
        SalesSequenceEnrollment(
            tenant=tenant,
            sequence_id=sequence_id,
            contact_id=c.id or 0,
            deal_id=deal_id,
            next_due_at=now + first,
            enrolled_at=now,
        )
        for c in contacts
    ]
    session.add_all(rows)
    session.flush()
    return EnrolledOut(
        sequence=SequenceOut.model_validate(sequence),
        enrollments=[EnrollmentOut.model_validate(r) for r in rows],
    )


def _unreachable() -> Any:
    """Contacts who unsubscribed or were archived since they were enrolled: never sent to."""
    return select(CoreContact.id).where(
        or_(col(CoreContact.unsubscribed_at).is_not(None), col(CoreContact.deleted_at).is_not(None))
    )


def stop_unreachable(session: Session, tenant: str) -> None:
    """Stop the active enrolments of unreachable contacts (before a run sends)."""
    rows = session.exec(
        select(SalesSequenceEnrollment).where(
            SalesSequenceEnrollment.tenant == tenant,
            SalesSequenceEnrollment.status == "active",
            col(SalesSequenceEnrollment.contact_id).in_(_unreachable()),
        )
    ).all()
    for row in rows:
        row.status, row.next_due_at = "stopped", None
        session.add(row)
    session.flush()


def due(
    session: Session,
    tenant: str,
    sequence_id: int | None,
    *,
    lock: bool,
    only: set[int] | None = None,
) -> list[SalesSequenceEnrollment]:
    """Active enrolments whose next step is due now, oldest due first (`only`: of these ids). `lock`
    row-locks them (PostgreSQL) so two concurrent runs cannot both send one step."""
    query = select(SalesSequenceEnrollment).where(
        SalesSequenceEnrollment.tenant == tenant,
        SalesSequenceEnrollment.status == "active",
        col(SalesSequenceEnrollment.next_due_at) <= utcnow(),
        col(SalesSequenceEnrollment.contact_id).not_in(_unreachable()),
    )
    if only is not None:
        query = query.where(col(SalesSequenceEnrollment.id).in_(only))
    if sequence_id is not None:
        get(session, tenant, sequence_id)
        query = query.where(SalesSequenceEnrollment.sequence_id == sequence_id)
    if lock:
        query = query.with_for_update()
    return list(
        session.exec(
            query.order_by(col(SalesSequenceEnrollment.next_due_at), col(SalesSequenceEnrollment.id))
        )
    )


def outgoing(session: Session, tenant: str, rows: list[SalesSequenceEnrollment]) -> list[gmail_send.Outgoing]:
    """The message each due enrolment sends next (keyed by enrolment and step: sent at most once)."""
    items: list[gmail_send.Outgoing] = []
    for row in rows:
        steps = _steps(get(session, tenant, row.sequence_id))
        step = steps[row.next_step]
        contact = session.get(CoreContact, row.contact_id)
        assert contact is not None  # a foreign key
        items.append(
            gmail_send.Outgoing(
                [row.contact_id],
                [contact.email],
                step.subject or gmail.reply_subject(steps[0].subject),
                step.body,
                thread_id=row.thread_id,
                in_reply_to=row.last_message_id,
                deal_id=row.deal_id,
                enrollment_id=row.id,
                key=f"sequence:{row.id}:{row.next_step}",
            )
        )
    return items


def preview(rows: list[SalesSequenceEnrollment], items: list[gmail_send.Outgoing]) -> PlanPreview:
    return PlanPreview(
        summary=f"Send {len(items)} due sequence step(s) via Gmail.",
        affected_count=len(items),
        sample=[
            {"enrollment_id": r.id, "step": r.next_step, "to": i.to[0]}
            for r, i in zip(rows, items, strict=True)
        ][:10],
        reversible=False,
    )


def advance(
    session: Session, tenant: str, rows: list[SalesSequenceEnrollment], done: list[gmail_send.Delivered]
) -> None:
    """Move each enrolment on after its step's outcome (see the module docstring)."""
    by_id = {r.id: r for r in rows}
    for d in done:
        row = by_id.get(d.item.enrollment_id)
        stored = d.row.status if d.row is not None else None  # already_sent: the earlier row's status
        if row is None or d.row is None:
            continue
        if stored == "unknown":
            row.status = "held"
        elif stored == "sent":
            steps = _steps(get(session, tenant, row.sequence_id))
            row.thread_id = d.row.thread_id
            row.last_message_id = d.row.rfc_message_id
            row.next_step += 1
            if row.next_step >= len(steps):
                row.status, row.next_due_at = "completed", None
            else:
                row.next_due_at = d.row.occurred_at + timedelta(days=steps[row.next_step].delay_days)
        session.add(row)
    session.flush()


def on_logged(session: Session, tenant: str, *, thread_id: str, status: str) -> list[int]:
    """A received message stops, a bounce pauses, the active enrolments of its thread; their ids."""
    rows = session.exec(
        select(SalesSequenceEnrollment).where(
            SalesSequenceEnrollment.tenant == tenant,
            SalesSequenceEnrollment.thread_id == thread_id,
            col(SalesSequenceEnrollment.status).in_(("active", "held")),
        )
    ).all()
    for row in rows:
        row.status = "stopped" if status == "received" else "paused"
        row.next_due_at = None
        session.add(row)
    session.flush()
    return [r.id or 0 for r in rows]


def enrollments(session: Session, ids: list[int]) -> list[EnrollmentOut]:
    rows = session.exec(
        select(SalesSequenceEnrollment)
        .where(col(SalesSequenceEnrollment.id).in_(ids))
        .order_by(col(SalesSequenceEnrollment.id))
    )
    return [EnrollmentOut.model_validate(r) for r in rows]
