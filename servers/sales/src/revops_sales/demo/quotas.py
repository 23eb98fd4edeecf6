"""Demo quotas: one per rep per calendar quarter over the history and the next quarter, plus the team's.

Each rep's quarterly quota is set near what that rep actually closed on average, so attainment
spreads either side of 100 % the way a real team's does.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import Session, col

from revops_core.db import utcnow
from revops_sales.demo import TENANT
from revops_sales.demo.deals import DemoDeals
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesStage
from revops_sales.models.quotas import TEAM, SalesQuota


def _quarter(day: date) -> tuple[date, date]:
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    following = date(first.year + (first.month + 2) // 12, (first.month + 2) % 12 + 1, 1)
    return first, following - timedelta(days=1)


def generate_quotas(session: Session, deals: DemoDeals, *, reps: tuple[str, ...], as_of: date) -> int:
    won: dict[str | None, int] = {
        owner: int(total)
        for owner, total in session.execute(
            select(col(SalesDeal.owner), func.sum(col(SalesDeal.amount_minor)))
            .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
            .where(col(SalesDeal.tenant) == TENANT, col(SalesStage.kind) == "won")
            .group_by(col(SalesDeal.owner))
        ).all()
    }
    quarters: list[tuple[date, date]] = []
    start, _ = _quarter(min(d.created_at.date() for d in deals.deals))
    while start <= as_of + timedelta(days=92):
        quarters.append(_quarter(start))
        start = quarters[-1][1] + timedelta(days=1)
    history = max(1, len(quarters) - 1)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for first, last in quarters:
        per_rep = {rep: int(won.get(rep, 0) / history) // 100_000 * 100_000 for rep in reps}
        for owner, amount in [*per_rep.items(), (TEAM, sum(per_rep.values()))]:
            rows.append(
                {
                    "tenant": TENANT,
                    "owner": owner,
                    "start": first,
                    "end": last,
                    "amount_minor": amount,
                    "updated_at": now,
                    "currency": "USD",
                }
            )
    session.execute(insert(SalesQuota), rows)
    return len(rows)
