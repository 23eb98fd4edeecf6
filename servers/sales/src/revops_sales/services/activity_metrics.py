"""Activity metrics per rep over a period: one grouped query on `sales_activity`."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.models.activities import ACTIVITY_KINDS, SalesActivity

NO_OWNER = "(no owner)"
"""Activities nobody is recorded as making are reported under this name, not dropped."""


class RepActivity(Out):
    owner: str = Field(description="Rep; '(no owner)' for activities without one.")
    total: int = Field(description="Activities in the period.")
    by_kind: dict[str, int] = Field(description="Count per kind (every kind listed, 0 when none).")
    deals_touched: int = Field(description="Distinct deals the activities were about.")
    per_day: float = Field(description="total ÷ days in the period.")


class ActivityMetrics(Out):
    start: date = Field(description="First day.")
    end: date = Field(description="Last day.")
    days: int = Field(description="Days in the period.")
    reps: list[RepActivity] = Field(description="Per rep, most active first.")
    totals: dict[str, int] = Field(description="Count per kind over every rep.")


def counts_by_owner(session: Session, tenant: str, period: DateRange) -> dict[str | None, int]:
    """Activities per owner in the period (the leaderboard's activity column)."""
    rows = session.exec(
        select(SalesActivity.owner, func.count())
        .where(
            SalesActivity.tenant == tenant,
            col(SalesActivity.occurred_at) >= period.since,
            col(SalesActivity.occurred_at) < period.until,
        )
        .group_by(col(SalesActivity.owner))
    ).all()
    return {owner: int(n) for owner, n in rows}


def per_rep(
    session: Session, tenant: str, *, owner: str | None, start: date | None, end: date | None
) -> ActivityMetrics:
    period = DateRange.resolve(start, end, default_days=30, start_field="start", end_field="end")
    scope = [
        col(SalesActivity.tenant) == tenant,
        col(SalesActivity.occurred_at) >= period.since,
        col(SalesActivity.occurred_at) < period.until,
    ]
    if owner is not None:
        scope.append(col(SalesActivity.owner) == owner)
    kinds = session.exec(
        select(SalesActivity.owner, SalesActivity.kind, func.count())
        .where(*scope)
        .group_by(col(SalesActivity.owner), col(SalesActivity.kind))
    ).all()
    touched = dict(
        session.exec(
            select(SalesActivity.owner, func.count(func.distinct(SalesActivity.deal_id)))
            .where(*scope)
            .group_by(col(SalesActivity.owner))
        ).all()
    )
    by_owner: dict[str | None, dict[str, int]] = {}
    totals = dict.fromkeys(ACTIVITY_KINDS, 0)
    for who, kind, n in kinds:
        by_owner.setdefault(who, dict.fromkeys(ACTIVITY_KINDS, 0))[kind] = int(n)
        totals[kind] = totals.get(kind, 0) + int(n)
    reps = [
        RepActivity(
            owner=NO_OWNER if who is None else who,
            total=sum(counts.values()),
            by_kind=counts,
            deals_touched=int(touched.get(who, 0)),
            per_day=sum(counts.values()) / period.days,
        )
        for who, counts in by_owner.items()
    ]
    reps.sort(key=lambda r: (-r.total, r.owner))
    return ActivityMetrics(start=period.start, end=period.end, days=period.days, reps=reps, totals=totals)
