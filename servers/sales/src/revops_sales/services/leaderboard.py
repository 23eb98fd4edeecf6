"""The rep leaderboard of a period: won amount, win rate, deals, cycle and activities per rep.

Two grouped queries (closed deals per owner and kind; activities per owner) and one read of the
won deals' created/closed instants for the median cycle — never a query per rep.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.analytics import metrics
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesStage
from revops_sales.services import activity_metrics

RankBy = Literal["won_minor", "win_rate", "deals_won", "activities"]
NO_OWNER = activity_metrics.NO_OWNER


class RepRow(Out):
    rank: int = Field(description="1 = best by the ranking figure.")
    owner: str = Field(description="Rep; '(no owner)' for deals without one.")
    won: int = Field(description="Deals won in the period.")
    lost: int = Field(description="Deals lost in the period.")
    won_minor: int = Field(description="Value won.")
    win_rate_count: float | None = Field(description="won ÷ (won + lost); null without closed deals.")
    win_rate_value: float | None = Field(description="Same by value.")
    median_cycle_days: float | None = Field(description="Median days created → won.")
    activities: int = Field(description="Activities logged in the period.")


class Leaderboard(Out):
    start: date = Field(description="First day.")
    end: date = Field(description="Last day.")
    currency: str = Field(description="Currency of the value figures.")
    rank_by: str = Field(description="Ranking figure (ties: more won value, then name).")
    reps: list[RepRow] = Field(description="The top reps.")
    ranked: int = Field(description="Reps with any closed deal or activity in the period.")


def leaderboard(
    session: Session,
    tenant: str,
    *,
    start: date | None,
    end: date | None,
    currency: str,
    rank_by: RankBy,
    top: int,
) -> Leaderboard:
    period = DateRange.resolve(start, end, default_days=90, start_field="start", end_field="end")
    closed_in_period = [
        col(SalesDeal.tenant) == tenant,
        col(SalesDeal.deleted_at).is_(None),
        col(SalesDeal.currency) == currency,
        col(SalesDeal.closed_at) >= period.since,
        col(SalesDeal.closed_at) < period.until,
    ]
    closed = session.exec(
        select(
            SalesDeal.owner, SalesStage.kind, func.count(), func.coalesce(func.sum(SalesDeal.amount_minor), 0)
        )
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(*closed_in_period, col(SalesStage.kind).in_(("won", "lost")))
        .group_by(col(SalesDeal.owner), col(SalesStage.kind))
    ).all()
    cycles: dict[str | None, list[float]] = {}
    for owner, created, closed_at in session.exec(
        select(SalesDeal.owner, SalesDeal.created_at, SalesDeal.closed_at)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(*closed_in_period, SalesStage.kind == "won")
    ).all():
        if closed_at is not None:
            cycles.setdefault(owner, []).append((closed_at - created).total_seconds() / 86_400)
    activity = activity_metrics.counts_by_owner(session, tenant, period)
    tally: dict[str | None, dict[str, tuple[int, int]]] = {}
    for owner, kind, n, value in closed:
        tally.setdefault(owner, {})[kind] = (int(n), int(value))
    rows = []
    for owner in set(tally) | set(activity):
        (won, won_minor), (lost, lost_minor) = (tally.get(owner, {}).get(k, (0, 0)) for k in ("won", "lost"))
        rows.append(
            RepRow(
                rank=0,
                owner=NO_OWNER if owner is None else owner,
                won=won,
                lost=lost,
                won_minor=won_minor,
                win_rate_count=metrics.win_rate(won, lost),
                win_rate_value=metrics.win_rate(won_minor, lost_minor),
                median_cycle_days=metrics.median_cycle_days(cycles.get(owner, [])),
                activities=activity.get(owner, 0),
            )
        )

    def figure(row: RepRow) -> float:
        value = {
            "won_minor": row.won_minor,
            "win_rate": row.win_rate_count,
            "deals_won": row.won,
            "activities": row.activities,
        }[rank_by]
        return -1.0 if value is None else float(value)  # no closed deal ranks below a 0 % win rate

    rows.sort(key=lambda r: (-figure(r), -r.won_minor, r.owner))
    for position, row in enumerate(rows, start=1):
        row.rank = position
    return Leaderboard(
        start=period.start,
        end=period.end,
        currency=currency,
        rank_by=rank_by,
        reps=rows[:top],
        ranked=len(rows),
    )
