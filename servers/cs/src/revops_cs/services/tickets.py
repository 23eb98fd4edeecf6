"""Support tickets in the local store: read one, list them, and the changes create/update make.

`validate` checks a change against stored state and `apply` writes it; both run again in the write
transaction because state may have moved on since the read-only check that preceded the Zendesk
call (see `services/zendesk_sync.py` for the order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.paging import Page, paginate
from revops_core.params import require
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.support import OPEN_STATUSES, CsTicket, CsTicketComment
from revops_cs.output import FromJson, Out
from revops_cs.services.clients import get_client
from revops_cs.services.support_metrics import sla_targets

TicketAction = Literal["create", "update", "comment", "resolve", "escalate"]
COMMENTS_SHOWN = 100
"""get_ticket returns at most this many comments (oldest first)."""


class TicketOut(Out):
    id: int = Field(description="Ticket id.")
    client_id: int = Field(description="Client id.")
    subject: str = Field(description="Subject.")
    status: str = Field(description="new|open|pending|hold|solved|closed.")
    priority: str = Field(description="urgent|high|normal|low.")
    assignee: str | None = Field(description="Assigned agent.")
    team: str | None = Field(description="Team set by routing.")
    escalated: bool = Field(description="Escalated.")
    csat: int | None = Field(description="CSAT 1–5 if rated.")
    tags: Annotated[list[str], FromJson] = Field(description="Tags.")
    created_at: datetime = Field(description="Created (UTC).")
    first_response_at: datetime | None = Field(description="First public agent reply.")
    solved_at: datetime | None = Field(description="Solved (UTC).")
    zendesk_id: str | None = Field(description="Zendesk id.")


class CommentOut(Out):
    author: str = Field(description="Author.")
    is_agent: bool = Field(description="Written by an agent.")
    public: bool = Field(description="Visible to the customer.")
    body: str = Field(description="Text.")
    created_at: datetime = Field(description="Written (UTC).")


class TicketDetail(Out):
    ticket: TicketOut = Field(description="The ticket.")
    comments: list[CommentOut] = Field(description=f"First {COMMENTS_SHOWN} comments, oldest first.")


class TicketResult(Out):
    ticket: TicketOut = Field(description="The ticket after the change.")
    escalation_id: int | None = Field(description="Escalation created (escalate).")
    escalation_due_at: datetime | None = Field(description="Escalation SLA due time.")
    mirrored: bool = Field(description="Change reached Zendesk.")
    mirror_note: str | None = Field(description="Why it was not mirrored.")


@dataclass(frozen=True)
class TicketChange:
    """One create_ticket/update_ticket call: the action and the fields it was given."""

    action: TicketAction
    ticket_id: int | None = None
    client_id: int | None = None
    subject: str | None = None
    body: str | None = None
    priority: str | None = None
    status: str | None = None
    assignee: str | None = None
    tags: list[str] | None = None
    public: bool = True
    from_agent: bool = True
    author: str | None = None
    csat: int | None = None


def get(session: Session, ticket_id: int) -> CsTicket:
    """The ticket, or `not_found` naming `ticket_id`."""
    ticket = session.get(CsTicket, ticket_id)
    if ticket is None:
        raise NotFound(
            f"No ticket with id {ticket_id}.", field="ticket_id", hint="Find ids with list_tickets."
        )
    return ticket


def detail(session: Session, ticket_id: int) -> TicketDetail:
    ticket = get(session, ticket_id)
    comments = session.exec(
        select(CsTicketComment)
        .where(CsTicketComment.ticket_id == ticket.id)
        .order_by(col(CsTicketComment.created_at), col(CsTicketComment.id))
        .limit(COMMENTS_SHOWN)
    ).all()
    return TicketDetail(
        ticket=TicketOut.model_validate(ticket), comments=[CommentOut.model_validate(c) for c in comments]
    )


def page(
    session: Session,
    *,
    client_id: int | None,
    status: str | None,
    open_only: bool,
    limit: int,
    cursor: str | None,
) -> Page[TicketOut]:
    """Tickets, newest first, filtered in SQL."""
    query = select(CsTicket)
    if client_id is not None:
        get_client(session, client_id)
        query = query.where(CsTicket.client_id == client_id)
    if status is not None:
        query = query.where(CsTicket.status == status)
    if open_only:
        query = query.where(col(CsTicket.status).in_(OPEN_STATUSES))
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CsTicket.created_at), col(CsTicket.id)],
        scope="tickets",
        descending=True,
        item=TicketOut.model_validate,
    )


def validate(session: Session, change: TicketChange) -> CsTicket | None:
    """Check a change against stored state; the existing ticket (None for create)."""
    if change.action == "create":
        assert change.client_id is not None, "create_ticket requires client_id"
        get_client(session, change.client_id)
        return None
    assert change.ticket_id is not None, "update_ticket requires ticket_id"
    ticket = get(session, change.ticket_id)
    if change.action == "comment":
        require(change.body, "body", when="action=comment")
    fields = (change.subject, change.priority, change.status, change.assignee, change.tags, change.csat)
    if change.action == "update" and all(v is None for v in fields):
        raise ValidationFailed(
            "action=update needs at least one field to change.",
            field="status",
            hint="Pass subject, priority, status, assignee, tags or csat.",
        )
    if ticket.status == "closed":
        raise ValidationFailed(
            f"Ticket {ticket.id} is closed.", field="ticket_id", hint="Create a new ticket."
        )
    if change.action == "escalate" and ticket.escalated:
        raise ValidationFailed(f"Ticket {ticket.id} is already escalated.", field="ticket_id")
    return ticket


def _comment(
    session: Session, ticket: CsTicket, change: TicketChange, actor: str, at: datetime, public: bool
) -> None:
    session.add(
        CsTicketComment(
            ticket_id=ticket.id or 0,
            author=change.author or actor,
            is_agent=change.from_agent,
            public=public,
            body=change.body or "",
            created_at=at,
        )
    )
    if change.from_agent and public and ticket.first_response_at is None:
        ticket.first_response_at = at
    if change.from_agent and ticket.status == "new":
        ticket.status = "open"


def _update(ticket: CsTicket, change: TicketChange, now: datetime) -> None:
    for name in ("subject", "priority", "assignee", "csat"):
        if getattr(change, name) is not None:
            setattr(ticket, name, getattr(change, name))
    if change.tags is not None:
        ticket.tags = json.dumps(change.tags)
    if change.status is not None:
        if change.status in ("solved", "closed") and ticket.solved_at is None:
            ticket.solved_at = now
        elif change.status in OPEN_STATUSES:
            ticket.solved_at = None
        ticket.status = change.status


def _escalate(
    session: Session, ticket: CsTicket, change: TicketChange, actor: str, now: datetime
) -> CsEscalation:
    severity = change.priority or ticket.priority
    escalation = CsEscalation(
        client_id=ticket.client_id,
        ticket_id=ticket.id,
        severity=severity,
        title=(change.subject or ticket.subject)[:300],
        owner=change.assignee or ticket.assignee,
        opened_at=now,
        due_at=now + sla_targets(session)[severity].resolution,
    )
    session.add(escalation)
    if change.body:
        _comment(session, ticket, change, actor, now, False)
    ticket.escalated = True
    ticket.tags = json.dumps(sorted({*json.loads(ticket.tags), "escalated"}))
    return escalation


def apply(
    session: Session, change: TicketChange, *, actor: str, zendesk_id: str | None
) -> tuple[CsTicket, CsEscalation | None]:
    """Write the change (re-validated: state may have moved on); the ticket and any escalation."""
    now = datetime.now(UTC)
    ticket = validate(session, change)
    escalation: CsEscalation | None = None
    if ticket is None:
        ticket = CsTicket(
            client_id=change.client_id or 0,
            subject=change.subject or "",
            description=change.body or "",
            priority=change.priority or "normal",
            assignee=change.assignee,
            tags=json.dumps(change.tags or []),
            created_at=now,
            updated_at=now,
        )
        if zendesk_id is not None:
            ticket.external_source, ticket.external_id = "zendesk", zendesk_id
    elif change.action == "update":
        _update(ticket, change, now)
    elif change.action == "comment":
        _comment(session, ticket, change, actor, now, change.public)
    elif change.action == "resolve":
        if change.body:
            _comment(session, ticket, change, actor, now, True)
        ticket.status, ticket.solved_at = "solved", now
        if change.csat is not None:
            ticket.csat = change.csat
    elif change.action == "escalate":
        escalation = _escalate(session, ticket, change, actor, now)
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    return ticket, escalation
