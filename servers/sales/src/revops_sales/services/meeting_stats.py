"""Meeting statistics per rep over a period, computed from stored meetings and deals.

Per rep, for meetings starting in [start, end): how many were booked, held, no-shows, cancelled or
are past and still unlogged; the outcome mix of held ones; the no-show rate (no-shows / (held +
no-shows)); and meetings per won deal: held meetings (any date) linked to the deals the rep won in
the period, divided by those deals. A rate without a denominator is null with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Table, and_, case, func, select
from sqlmodel import Session

from revops_core.db import utcnow
from revops_core.outputs import Out
from revops_sales.models.deals import SalesDeal
from revops_sales.models.meetings import SalesMeeting
from revops_sales.models.pipelines import SalesStage


class RepMeetings(Out):
    owner: str = Field(description="Rep.")
    booked: int = Field(description="Meetings starting in the period.")
    held: int = Field(description="Held.")
    no_shows: int = Field(description="No-shows.")
    cancelled: int = Field(description="Cancelled.")
    unlogged: int = Field(description="Ended without a logged outcome.")
    positive: int = Field(description="Held with a positive outcome.")
    neutral: int = Field(description="Held with a neutral outcome.")
    negative: int = Field(description="Held with a negative outcome.")
    no_show_rate: float | None = Field(description="no_shows / (held + no_shows).")
    won_deals: int = Field(description="Deals the rep won in the period.")
    meetings_per_won_deal: float | None = Field(description="Held meetings on those deals per deal.")
    notes: list[str] = Field(description="Why a figure is null.")


class MeetingStats(Out):
    start: datetime = Field(description="Period start (UTC, inclusive).")
    end: datetime = Field(description="Period end (UTC, exclusive).")
    reps: list[RepMeetings] = Field(description="One row per rep, by name.")


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def compute(
    session: Session, tenant: str, *, start: datetime, end: datetime, owner: str | None
) -> MeetingStats:
    meeting_t, deal_t, stage_t = (_table(t) for t in (SalesMeeting, SalesDeal, SalesStage))
    m, d, stage = meeting_t.c, deal_t.c, stage_t.c  # Core columns: typed expressions for aggregates
    now = utcnow()
    query = (
        select(
            m.owner,
            func.count(),
            _count(m.status == "held"),
            _count(m.status == "no_show"),
            _count(m.status == "cancelled"),
            _count(and_(m.status == "scheduled", m.ends_at < now)),
            _count(m.outcome == "positive"),
            _count(m.outcome == "neutral"),
            _count(m.outcome == "negative"),
        )
        .where(m.tenant == tenant, m.starts_at >= start, m.starts_at < end)
        .group_by(m.owner)
    )
    won = (
        select(d.id, d.owner)
        .join(stage_t, stage.id == d.stage_id)
        .where(
            d.tenant == tenant,
            stage.kind == "won",
            d.deleted_at.is_(None),
            d.closed_at >= start,
            d.closed_at < end,
            d.owner.is_not(None),
        )
    )
    if owner is not None:
        query = query.where(m.owner == owner)
        won = won.where(d.owner == owner)
    won_sub = won.subquery()
    won_counts = {
        r[0]: int(r[1])
        for r in session.execute(select(won_sub.c.owner, func.count()).group_by(won_sub.c.owner))
    }
    held_on_won = {
        r[0]: int(r[1])
        for r in session.execute(
            select(won_sub.c.owner, func.count(m.id))
            .join(
                meeting_t,
                and_(m.deal_id == won_sub.c.id, m.status == "held", m.tenant == tenant),
            )
            .group_by(won_sub.c.owner)
        )
    }
    rows = {r[0]: [int(v or 0) for v in r[1:]] for r in session.execute(query)}
    reps: list[RepMeetings] = []
    for rep in sorted(set(rows) | set(won_counts)):
        booked, held, no_shows, cancelled, unlogged, pos, neu, neg = rows.get(rep, [0] * 8)
        won_n = int(won_counts.get(rep, 0))
        notes: list[str] = []
        rate = no_shows / (held + no_shows) if held + no_shows else None
        if rate is None:
            notes.append("no_show_rate: no meeting in the period was logged held or no-show.")
        per_won = int(held_on_won.get(rep, 0)) / won_n if won_n else None
        if per_won is None:
            notes.append("meetings_per_won_deal: the rep won no deal in the period.")
        reps.append(
            RepMeetings(
                owner=rep,
                booked=booked,
                held=held,
                no_shows=no_shows,
                cancelled=cancelled,
                unlogged=unlogged,
                positive=pos,
                neutral=neu,
                negative=neg,
                no_show_rate=rate,
                won_deals=won_n,
                meetings_per_won_deal=per_won,
                notes=notes,
            )
        )
    return MeetingStats(start=start, end=end, reps=reps)
