"""Support performance from stored tickets: response and resolution times, SLA compliance, backlog, CSAT.

The maths is `analytics/sla.py`; this module reads the rows. `period` is the look-back window the
support, feedback and review figures share (a default number of days ending on `as_of`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.params import DateRange, end_of_day
from revops_cs.analytics import sla
from revops_cs.analytics.surveys import csat as csat_score
from revops_cs.models.support import OPEN_STATUSES, CsTicket, CsTicketComment
from revops_cs.output import Out
from revops_cs.services import thresholds


def period(start: date | None, end: date | None, as_of: date, default_days: int) -> DateRange:
    """[start, end], by default the `default_days` ending on `as_of`; `end` may not pass `as_of`."""
    last = end or as_of
    if start is None and last.toordinal() <= default_days:
        raise ValidationFailed("The date is too early.", field="as_of", hint="Use a date after year 1.")
    window = DateRange.resolve(start, last, default_days=default_days)
    if window.end > as_of:
        raise ValidationFailed(
            "end_date is after as_of.", field="end_date", hint="Use a date on or before as_of."
        )
    return window


def sla_targets(session: Session) -> dict[str, sla.Target]:
    """Per-priority targets from the `sla` config section (configure_cs_thresholds; REFERENCE defaults)."""
    cfg = thresholds.load(session, thresholds.Sla)
    return {
        priority: sla.Target(
            timedelta(minutes=cfg.first_response_minutes[priority]),
            timedelta(minutes=cfg.resolution_minutes[priority]),
        )
        for priority in cfg.resolution_minutes
    }


class Times(Out):
    tickets: int = Field(description="Tickets measured.")
    median_min: float | None = Field(description="Median, minutes.")
    p90_min: float | None = Field(description="P90, minutes.")


class SlaRow(Out):
    priority: str = Field(description="Priority.")
    target_first_response_min: int = Field(description="Target, minutes.")
    target_resolution_min: int = Field(description="Resolution target, minutes.")
    first_response: list[int] = Field(description="[met, breached, pending].")
    resolution: list[int] = Field(description="[met, breached, pending].")
    first_response_compliance: float | None = Field(description="% met of judged.")
    resolution_compliance: float | None = Field(description="% met of judged.")


class SupportPerformance(Out):
    as_of: date = Field(description="Evaluation date.")
    start_date: date = Field(description="Tickets created from.")
    end_date: date = Field(description="Tickets created through.")
    tickets: int = Field(description="Tickets created in the period.")
    first_response: Times = Field(description="First public agent reply − created.")
    resolution: Times = Field(description="Solved − created.")
    sla: list[SlaRow] = Field(description="Per priority; open past target = breached.")
    first_response_compliance: float | None = Field(description="Overall % met.")
    resolution_compliance: float | None = Field(description="Overall % met.")
    backlog: dict[str, dict[str, int]] = Field(description="Open at as_of: priority → age bucket → count.")
    csat_responses: int = Field(description="Tickets rated.")
    csat: float | None = Field(description="% of ratings 4–5.")


def first_public_agent_replies(session: Session, tickets: Any) -> dict[int, datetime]:
    """Earliest public agent comment per ticket (the REFERENCE definition of first response), for
    the tickets a SQL selectable of ticket ids selects — one grouped query, no id list bound."""
    rows = session.exec(
        select(CsTicketComment.ticket_id, func.min(CsTicketComment.created_at))
        .where(
            col(CsTicketComment.ticket_id).in_(tickets),
            col(CsTicketComment.is_agent).is_(True),
            col(CsTicketComment.public).is_(True),
        )
        .group_by(col(CsTicketComment.ticket_id))
    ).all()
    out: dict[int, datetime] = {}
    for tid, at in rows:
        # func.min loses the column type on SQLite: normalise to an aware datetime.
        value = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        out[tid] = value if value.tzinfo else value.replace(tzinfo=UTC)
    return out


def _times(values: list[float]) -> Times:
    d = sla.distribution(values)
    return Times(tickets=d.count, median_min=d.median, p90_min=d.p90)


def _sla_row(priority: str, target: sla.Target, c: sla.PriorityCompliance) -> SlaRow:
    return SlaRow(
        priority=priority,
        target_first_response_min=int(sla.minutes(target.first_response)),
        target_resolution_min=int(sla.minutes(target.resolution)),
        first_response=[c.first_response.met, c.first_response.breached, c.first_response.pending],
        resolution=[c.resolution.met, c.resolution.breached, c.resolution.pending],
        first_response_compliance=c.first_response.rate,
        resolution_compliance=c.resolution.rate,
    )


def _backlog(session: Session, client_id: int | None, now: datetime) -> dict[str, dict[str, int]]:
    """Tickets still open at `now`: priority → age bucket → count."""
    query = select(CsTicket).where(col(CsTicket.created_at) < now)
    if client_id is not None:
        query = query.where(CsTicket.client_id == client_id)
    backlog: dict[str, dict[str, int]] = {}
    for t in session.exec(query):
        solved = t.solved_at is not None and t.solved_at < now
        if solved or (t.solved_at is None and t.status not in OPEN_STATUSES):
            continue
        bucket = backlog.setdefault(t.priority, {})
        label = sla.age_bucket(now - t.created_at)
        bucket[label] = bucket.get(label, 0) + 1
    return backlog


def performance(
    session: Session, client_id: int | None, window: DateRange, as_of: date
) -> SupportPerformance:
    """Support performance over tickets created in `window`, judged at the end of `as_of`."""
    now = min(end_of_day(as_of), datetime.now(UTC))
    query = select(CsTicket).where(
        col(CsTicket.created_at) >= window.since, col(CsTicket.created_at) < window.until
    )
    if client_id is not None:
        query = query.where(CsTicket.client_id == client_id)
    tickets = session.exec(query).all()
    replies = first_public_agent_replies(session, query.with_only_columns(col(CsTicket.id)))
    targets = sla_targets(session)
    times = [
        sla.TicketTimes(t.priority, t.created_at, replies.get(t.id or 0, t.first_response_at), t.solved_at)
        for t in tickets
    ]
    fr = [
        sla.minutes(x.first_response_at - x.created_at)
        for x in times
        if x.first_response_at and x.first_response_at <= now
    ]
    res = [sla.minutes(x.solved_at - x.created_at) for x in times if x.solved_at and x.solved_at <= now]
    by_priority = sla.compliance_by_priority(times, targets, now)
    order = list(targets)
    ranked = sorted(by_priority.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    total = sla.combined(by_priority.values())
    ratings = [t.csat for t in tickets if t.csat is not None]
    return SupportPerformance(
        as_of=as_of,
        start_date=window.start,
        end_date=window.end,
        tickets=len(tickets),
        first_response=_times(fr),
        resolution=_times(res),
        sla=[_sla_row(p, targets[p], c) for p, c in ranked],
        first_response_compliance=total.first_response.rate,
        resolution_compliance=total.resolution.rate,
        backlog=_backlog(session, client_id, now),
        csat_responses=len(ratings),
        csat=csat_score(ratings),
    )
