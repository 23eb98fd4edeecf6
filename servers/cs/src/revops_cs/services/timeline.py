"""A client's timeline: real events from every CS table, newest first, paged in SQL.

Each kind of event is one `SELECT (at, kind, row_id, note)` over its table; the kinds asked for are
combined with UNION ALL, filtered, counted, ordered and keyset-paged by the database, and only the
rows of the page are then loaded to describe them. Add a kind by adding a `RowKind` to `ROW_KINDS`
(or, for an aggregate such as "first login", a select to `_usage_firsts`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

from pydantic import Field
from sqlalchemy import Integer, String, func, literal, union_all
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.paging import Page, paginate
from revops_core.params import end_of_day, start_of_day
from revops_cs.models.clients import CsStageChange
from revops_cs.models.communication import CsEmailMessage
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsUsageEvent
from revops_cs.output import Out

TimelineKind = Literal[
    "first_login",
    "first_feature_use",
    "ticket_opened",
    "ticket_solved",
    "feedback",
    "stage_change",
    "billing",
    "escalation",
    "message",
]
KINDS: tuple[str, ...] = get_args(TimelineKind)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


class TimelineEvent(Out):
    at: datetime = Field(description="When it happened (UTC).")
    kind: str = Field(description=f"One of: {', '.join(KINDS)}.")
    title: str = Field(description="Short description.")
    ref: str = Field(description="Source row, e.g. cs_ticket:12.")
    details: dict[str, Any] = Field(default_factory=dict, description="Key facts.")


@dataclass(frozen=True)
class RowKind:
    """A kind of event that is one row of one table."""

    model: Any
    at: str  # the timestamp attribute
    title: Callable[[Any], str]
    details: Callable[[Any], dict[str, Any]]
    where: Callable[[], list[Any]] = field(default=list)


def _ticket_facts(t: CsTicket) -> dict[str, Any]:
    return {"priority": t.priority, "status": t.status}


ROW_KINDS: dict[str, RowKind] = {
    "ticket_opened": RowKind(CsTicket, "created_at", lambda t: f"Ticket opened: {t.subject}", _ticket_facts),
    "ticket_solved": RowKind(
        CsTicket,
        "solved_at",
        lambda t: f"Ticket solved: {t.subject}",
        _ticket_facts,
        lambda: [col(CsTicket.solved_at).is_not(None)],
    ),
    "feedback": RowKind(
        CsFeedback,
        "submitted_at",
        lambda f: f"{f.kind.upper()} answer" + (f": {f.score}" if f.score is not None else ""),
        lambda f: {"kind": f.kind, "score": f.score, "sentiment": f.sentiment_label},
    ),
    "stage_change": RowKind(
        CsStageChange,
        "at",
        lambda s: f"Stage {s.from_stage or '—'} → {s.to_stage}",
        lambda s: {"reason": s.reason, "actor": s.actor},
    ),
    "billing": RowKind(
        CsBillingEvent,
        "occurred_at",
        lambda b: b.kind.replace("_", " ").capitalize(),
        lambda b: {"amount_minor": b.amount_minor, "currency": b.currency},
    ),
    "escalation": RowKind(
        CsEscalation,
        "opened_at",
        lambda e: f"Escalation: {e.title}",
        lambda e: {"severity": e.severity, "status": e.status},
    ),
    # E-mails the communication toolset sent (or recorded) to the client's contacts.
    "message": RowKind(
        CsEmailMessage,
        "sent_at",
        lambda m: f"Email: {m.subject}",
        lambda m: {"channel": "email", "status": m.status, "source": m.source},
    ),
}


def _columns(at: Any, kind: str, row_id: Any, note: Any) -> list[Any]:
    return [
        at.label("at"),
        literal(kind, String).label("kind"),
        row_id.label("row_id"),
        note.label("note"),
    ]


def _row_select(kind: str, spec: RowKind, client_id: int) -> Any:
    model = spec.model
    return select(*_columns(getattr(model, spec.at), kind, col(model.id), literal("", String))).where(
        model.client_id == client_id, *spec.where()
    )


def _usage_firsts(kinds: set[str], client_id: int) -> list[Any]:
    """First login ever, and the first use of each feature (aggregates of usage, not one row)."""
    selects = []
    mine = CsUsageEvent.client_id == client_id
    first = func.min(CsUsageEvent.occurred_at)
    if "first_login" in kinds:
        selects.append(
            select(*_columns(first, "first_login", literal(0, Integer), literal("", String))).where(
                mine, CsUsageEvent.event == "login"
            )
        )
    if "first_feature_use" in kinds:
        selects.append(
            select(*_columns(first, "first_feature_use", literal(0, Integer), col(CsUsageEvent.feature)))
            .where(mine, col(CsUsageEvent.feature).is_not(None))
            .group_by(CsUsageEvent.feature)
        )
    return selects


def _describe(session: Session, client_id: int, rows: list[Any]) -> list[TimelineEvent]:
    wanted: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row.kind in ROW_KINDS:
            wanted[ROW_KINDS[row.kind].model.__tablename__].add(row.row_id)
    models = {spec.model.__tablename__: spec.model for spec in ROW_KINDS.values()}
    loaded: dict[tuple[str, int], Any] = {}
    for table, ids in wanted.items():  # one query per table on the page, not one per event
        model = models[table]
        for obj in session.exec(select(model).where(col(model.id).in_(sorted(ids)))):
            loaded[(table, obj.id)] = obj
    events = []
    for row in rows:
        if row.kind == "first_login":
            events.append(
                TimelineEvent(at=row.at, kind=row.kind, title="First login", ref=f"cs_client:{client_id}")
            )
        elif row.kind == "first_feature_use":
            events.append(
                TimelineEvent(
                    at=row.at,
                    kind=row.kind,
                    title=f"First use of {row.note}",
                    ref=f"cs_client:{client_id}",
                    details={"feature": row.note},
                )
            )
        else:
            spec = ROW_KINDS[row.kind]
            obj = loaded[(spec.model.__tablename__, row.row_id)]
            events.append(
                TimelineEvent(
                    at=row.at,
                    kind=row.kind,
                    title=spec.title(obj),
                    ref=f"{spec.model.__tablename__}:{row.row_id}",
                    details=spec.details(obj),
                )
            )
    return events


def page(
    session: Session,
    client_id: int,
    *,
    kinds: list[str] | None,
    start_date: date | None,
    end_date: date | None,
    limit: int,
    cursor: str | None,
) -> Page[TimelineEvent]:
    """The client's events in [start_date, end_date] (default: all), newest first, one page."""
    if start_date and end_date and end_date < start_date:
        raise ValidationFailed(
            "end_date is before start_date.",
            field="end_date",
            hint="Give an end_date on or after start_date.",
        )
    wanted = set(kinds or KINDS)
    selects = _usage_firsts(wanted, client_id) + [
        _row_select(kind, spec, client_id) for kind, spec in ROW_KINDS.items() if kind in wanted
    ]
    events = union_all(*selects).subquery("timeline")
    start = start_of_day(start_date) if start_date else _EPOCH
    end = end_of_day(end_date) if end_date else _END_OF_TIME
    query = sql_select(events).where(events.c.at >= start, events.c.at < end)
    rows: Page[Any] = paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[events.c.at, events.c.kind, events.c.row_id, events.c.note],
        scope=f"timeline:{client_id}",
        descending=True,
    )
    return Page[TimelineEvent](
        items=_describe(session, client_id, rows.items), next_cursor=rows.next_cursor, total=rows.total
    )
