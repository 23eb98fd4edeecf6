"""A client's timeline: real events merged from every CS table, newest first.

Each source is a function `(session, client_id, start, end) -> list[TimelineEvent]`; add a source to
`SOURCES` to extend the timeline. Messages come from `models.communication.CsMessage` when that
table exists (written by the communication toolset); the adapter reads only its common columns.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_cs.models.clients import CsStageChange
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.retention import CsBillingEvent, CsEscalation
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsUsageEvent
from revops_cs.output import Out

KINDS: tuple[str, ...] = (
    "first_login",
    "first_feature_use",
    "ticket_opened",
    "ticket_solved",
    "feedback",
    "stage_change",
    "billing",
    "escalation",
    "message",
)


class TimelineEvent(Out):
    at: datetime = Field(description="When it happened (UTC).")
    kind: str = Field(description=f"One of: {', '.join(KINDS)}.")
    title: str = Field(description="Short description.")
    ref: str = Field(description="Source row, e.g. cs_ticket:12.")
    details: dict[str, Any] = Field(default_factory=dict, description="Key facts.")


Source = Callable[[Session, int, datetime, datetime], list[TimelineEvent]]


def _between(column: Any, start: datetime, end: datetime) -> Any:
    return (column >= start) & (column < end)


def _usage(session: Session, cid: int, start: datetime, end: datetime) -> list[TimelineEvent]:
    out: list[TimelineEvent] = []
    first_login = session.exec(
        select(func.min(CsUsageEvent.occurred_at)).where(
            CsUsageEvent.client_id == cid, CsUsageEvent.event == "login"
        )
    ).one()
    if first_login is not None and start <= first_login < end:
        out.append(
            TimelineEvent(at=first_login, kind="first_login", title="First login", ref=f"cs_client:{cid}")
        )
    firsts = session.exec(
        select(CsUsageEvent.feature, func.min(CsUsageEvent.occurred_at))
        .where(CsUsageEvent.client_id == cid, col(CsUsageEvent.feature).is_not(None))
        .group_by(CsUsageEvent.feature)
    ).all()
    for feature, first in firsts:
        if start <= first < end:
            out.append(
                TimelineEvent(
                    at=first,
                    kind="first_feature_use",
                    title=f"First use of {feature}",
                    ref=f"cs_client:{cid}",
                    details={"feature": feature},
                )
            )
    return out


def _tickets(session: Session, cid: int, start: datetime, end: datetime) -> list[TimelineEvent]:
    out: list[TimelineEvent] = []
    for t in session.exec(select(CsTicket).where(CsTicket.client_id == cid)):
        facts = {"priority": t.priority, "status": t.status}
        if start <= t.created_at < end:
            out.append(
                TimelineEvent(
                    at=t.created_at,
                    kind="ticket_opened",
                    title=f"Ticket opened: {t.subject}",
                    ref=f"cs_ticket:{t.id}",
                    details=facts,
                )
            )
        if t.solved_at is not None and start <= t.solved_at < end:
            out.append(
                TimelineEvent(
                    at=t.solved_at,
                    kind="ticket_solved",
                    title=f"Ticket solved: {t.subject}",
                    ref=f"cs_ticket:{t.id}",
                    details=facts,
                )
            )
    return out


def _feedback(session: Session, cid: int, start: datetime, end: datetime) -> list[TimelineEvent]:
    rows = session.exec(
        select(CsFeedback).where(CsFeedback.client_id == cid, _between(CsFeedback.submitted_at, start, end))
    )
    return [
        TimelineEvent(
            at=f.submitted_at,
            kind="feedback",
            title=f"{f.kind.upper()} answer" + (f": {f.score}" if f.score is not None else ""),
            ref=f"cs_feedback:{f.id}",
            details={"kind": f.kind, "score": f.score, "sentiment": f.sentiment_label},
        )
        for f in rows
    ]


def _stages(session: Session, cid: int, start: datetime, end: datetime) -> list[TimelineEvent]:
    rows = session.exec(
        select(CsStageChange).where(CsStageChange.client_id == cid, _between(CsStageChange.at, start, end))
    )
    return [
        TimelineEvent(
            at=s.at,
            kind="stage_change",
            title=f"Stage {s.from_stage or '—'} → {s.to_stage}",
            ref=f"cs_stage_change:{s.id}",
            details={"reason": s.reason, "actor": s.actor},
        )
        for s in rows
    ]


def _billing(session: Session, cid: int, start: datetime, end: datetime) -> list[TimelineEvent]:
    rows = session.exec(
        select(CsBillingEvent).where(
            CsBillingEvent.client_id == cid, _between(CsBillingEvent.occurred_at, start, end)
        )
    )
    return [
        TimelineEvent(
            at=b.occurred_at,
            kind="billing",
            title=b.kind.replace("_", " ").capitalize(),
            ref=f"cs_billing_event:{b.id}",
            details={"amount_minor": b.amount_minor, "currency": b.currency},
        )
        for b in rows
    ]


def _escalations(session: Session, cid: int, start: datetime, end: datetime) -> list[TimelineEvent]:
    rows = session.exec(
        select(CsEscalation).where(
            CsEscalation.client_id == cid, _between(CsEscalation.opened_at, start, end)
        )
    )
    return [
        TimelineEvent(
            at=e.opened_at,
            kind="escalation",
            title=f"Escalation: {e.title}",
            ref=f"cs_escalation:{e.id}",
            details={"severity": e.severity, "status": e.status},
        )
        for e in rows
    ]


def _messages(session: Session, cid: int, start: datetime, end: datetime) -> list[TimelineEvent]:
    """Adapter for the communication toolset's messages; empty until `CsMessage` exists."""
    module = importlib.import_module("revops_cs.models.communication")
    model = getattr(module, "CsMessage", None)
    if model is None or not hasattr(model, "client_id"):
        return []
    when = next((getattr(model, n) for n in ("sent_at", "created_at") if hasattr(model, n)), None)
    if when is None:
        return []
    out: list[TimelineEvent] = []
    for m in session.exec(select(model).where(model.client_id == cid, _between(when, start, end))):
        at = getattr(m, "sent_at", None) or getattr(m, "created_at", None)
        subject = getattr(m, "subject", None) or getattr(m, "kind", None) or "message"
        out.append(
            TimelineEvent(
                at=at,
                kind="message",
                title=f"Message: {subject}",
                ref=f"{model.__tablename__}:{m.id}",
                details={"status": getattr(m, "status", None), "channel": getattr(m, "channel", None)},
            )
        )
    return out


SOURCES: dict[str, Source] = {
    "usage": _usage,
    "tickets": _tickets,
    "feedback": _feedback,
    "stages": _stages,
    "billing": _billing,
    "escalations": _escalations,
    "messages": _messages,
}


def timeline(
    session: Session, client_id: int, start: datetime, end: datetime, kinds: set[str]
) -> list[TimelineEvent]:
    """Every event of the client in [start, end) whose kind is in `kinds`, newest first."""
    events = [
        e for source in SOURCES.values() for e in source(session, client_id, start, end) if e.kind in kinds
    ]
    events.sort(key=lambda e: (e.at, e.ref, e.kind), reverse=True)
    return events
