"""The week before the demo: a forecast snapshot taken seven days ago, then the week's changes made
through the services the tools use (wins, losses, advances, pushes, revisions, new deals), so
`compare_forecast_snapshots` shows what moved since last week and why."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_sales.demo import REPS, TENANT
from revops_sales.demo.pipelines import DemoPipeline
from revops_sales.models.deals import SalesDeal
from revops_sales.models.forecast_snapshots import SalesForecastSnapshot
from revops_sales.services import deals, forecast_snapshots

ACTOR = "demo:generator"
NEW_DEALS = 4
"""Deals created in the last week (closing this quarter)."""


def quarter_of(day: date) -> tuple[date, date]:
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    following = date(first.year + (first.month + 2) // 12, (first.month + 2) % 12 + 1, 1)
    return first, following - timedelta(days=1)


def generate_last_week(session: Session, rng: random.Random, pipeline: DemoPipeline, *, as_of: date) -> int:
    """Snapshot the quarter's forecast as of a week ago, then apply the week's changes. Returns the
    number of deals changed."""
    start, end = quarter_of(as_of)
    snapshot = forecast_snapshots.take(
        session, session, TENANT, ACTOR, pipeline_id=None, owner=None, start=start, end=end, currency="USD"
    )
    session.execute(
        update(SalesForecastSnapshot)
        .where(col(SalesForecastSnapshot.id) == snapshot.id)
        .values(taken_at=utcnow() - timedelta(days=7))
    )
    open_stage_ids = [s.id for s in pipeline.open_stages]
    candidates = list(
        session.exec(
            select(SalesDeal)
            .where(
                SalesDeal.tenant == TENANT,
                col(SalesDeal.stage_id).in_(open_stage_ids),
                col(SalesDeal.close_date) >= start,
                col(SalesDeal.close_date) <= end,
            )
            .order_by(col(SalesDeal.id))
        ).all()
    )
    rng.shuffle(candidates)
    position = {s.id: i for i, s in enumerate(pipeline.open_stages)}
    changed = 0
    for n, deal in enumerate(candidates[:16]):
        deal_id = deal.id or 0
        if n < 3:
            deals.move(session, TENANT, ACTOR, deal_id, pipeline.won.id or 0)
        elif n < 5:
            deals.move(session, TENANT, ACTOR, deal_id, pipeline.lost.id or 0)
        elif n < 10 and position[deal.stage_id] + 1 < len(pipeline.open_stages):
            deals.move(
                session, TENANT, ACTOR, deal_id, pipeline.open_stages[position[deal.stage_id] + 1].id or 0
            )
        elif n < 13:
            deals.update(
                session,
                TENANT,
                ACTOR,
                deal_id,
                changes={"close_date": end + timedelta(days=rng.choice((14, 30)))},
            )
        else:
            deals.update(
                session, TENANT, ACTOR, deal_id, changes={"amount_minor": deal.amount_minor * 12 // 10}
            )
        changed += 1
    for n in range(NEW_DEALS):
        deals.create(
            session,
            TENANT,
            ACTOR,
            pipeline_id=pipeline.id,
            name=f"New this week {n + 1}",
            amount_minor=rng.randint(50, 400) * 10_000,
            currency="USD",
            stage_id=None,
            owner=rng.choice(REPS),
            close_date=end - timedelta(days=rng.randint(0, 20)),
            company_id=None,
        )
        changed += 1
    return changed
