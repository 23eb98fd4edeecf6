"""Demo deals: each walks its pipeline stage by stage until it is won, lost or still open today.

Every step is written as the tools would write it: a `sales_stage_move` per move (the first one at
creation), a `sales_deal_change` per amount change or close-date push, `closed_at` when a deal
reaches won or lost. Reps differ in how often their deals advance, so win rates, cycles and the
leaderboard have something to rank.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session, col

from revops_sales.demo import TENANT
from revops_sales.demo.accounts import DemoAccounts
from revops_sales.demo.pipelines import DemoPipeline
from revops_sales.models.deals import SalesDeal, SalesDealChange, SalesStageMove

HISTORY_DAYS = 730
SOURCES = (
    ("inbound", "Website demo request", 0.30),
    ("outbound", None, 0.25),
    ("webinar", "Q-webinar series", 0.15),
    ("referral", None, 0.12),
    ("paid_search", "Search – brand", 0.10),
    ("partner", "Partner programme", 0.08),
)
ACTOR = "demo:generator"


@dataclass
class DemoDeal:
    id: int
    owner: str
    company_id: int
    created_at: datetime
    closed_at: datetime | None
    open: bool


@dataclass
class DemoDeals:
    deals: list[DemoDeal] = field(default_factory=list)
    stage_moves: int = 0
    deal_changes: int = 0


def _at(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(9 + rng.randint(0, 8), rng.randint(0, 59)), tzinfo=UTC)


def _source(rng: random.Random) -> tuple[str | None, str | None]:
    if rng.random() < 0.08:  # nobody recorded where it came from
        return None, None
    pick = rng.random()
    for source, campaign, share in SOURCES:
        if pick < share:
            return source, campaign
        pick -= share
    return SOURCES[-1][0], SOURCES[-1][1]


def _category(probability_pct: int, rng: random.Random) -> str:
    if rng.random() < 0.03:
        return "omitted"
    if probability_pct >= 80:
        return "commit"
    if probability_pct >= 60:
        return "most_likely"
    if probability_pct >= 30:
        return "best_case"
    return "pipeline"


class _Walk:
    """One deal's life: the moves, changes and final state, before anything is inserted."""

    def __init__(
        self, rng: random.Random, pipeline: DemoPipeline, advance: float, created: datetime, now: datetime
    ):
        self.moves: list[tuple[int | None, int, datetime]] = [
            (None, pipeline.open_stages[0].id or 0, created)
        ]
        self.stage = pipeline.open_stages[0]
        self.entered = created
        self.closed_at: datetime | None = None
        at = created
        for index, stage in enumerate(pipeline.open_stages):
            dwell = timedelta(days=rng.gammavariate(2.0, (4 + 2 * index) / 2.0), hours=rng.randint(0, 23))
            if at + dwell >= now:  # still sitting in this stage today
                return
            at += dwell
            is_last = index == len(pipeline.open_stages) - 1
            target = pipeline.won if is_last and rng.random() < 0.9 else None
            if target is None:
                target = (
                    pipeline.open_stages[index + 1]
                    if not is_last and rng.random() < advance
                    else pipeline.lost
                )
            self.moves.append((stage.id, target.id or 0, at))
            self.stage, self.entered = target, at
            if target.kind != "open":
                self.closed_at = at
                return


def generate_deals(
    session: Session,
    rng: random.Random,
    pipelines: list[DemoPipeline],
    accounts: DemoAccounts,
    *,
    reps: tuple[str, ...],
    deals: int,
    as_of: date,
) -> DemoDeals:
    now = datetime.combine(as_of, time(8), tzinfo=UTC)
    advance = {rep: 0.78 + 0.02 * i for i, rep in enumerate(reps)}  # later reps convert better
    rows: list[dict[str, Any]] = []
    walks: list[_Walk] = []
    changes: list[list[dict[str, Any]]] = []
    for n in range(deals):
        pipeline = pipelines[0] if rng.random() < pipelines[0].share else pipelines[1]
        owner = rng.choice(reps)
        company_id = rng.choice(accounts.company_ids)
        created = now - timedelta(days=rng.uniform(1, HISTORY_DAYS))
        walk = _Walk(rng, pipeline, advance[owner], created, now)
        amount = int(round(math.exp(rng.gauss(math.log(12_000), 0.7)), -2)) * 100
        close_date = (created + timedelta(days=rng.randint(45, 120))).date()
        deal_changes: list[dict[str, Any]] = []
        last = walk.closed_at or now
        if rng.random() < 0.3:  # the close date was pushed once or twice
            for _ in range(rng.randint(1, 2)):
                pushed = close_date + timedelta(days=rng.choice((14, 30, 45)))
                at = created + (last - created) * rng.uniform(0.3, 0.95)
                deal_changes.append(_change("close_date", close_date.isoformat(), pushed.isoformat(), at))
                close_date = pushed
        if rng.random() < 0.15:  # the amount was revised
            revised = max(100, int(amount * rng.uniform(0.7, 1.3)) // 100 * 100)
            at = created + (last - created) * rng.uniform(0.2, 0.9)
            deal_changes.append(_change("amount_minor", str(amount), str(revised), at))
            amount = revised
        deal_changes.sort(key=lambda c: c["at"])
        source, campaign = _source(rng)
        stage = walk.stage
        rows.append(
            {
                "tenant": TENANT,
                "pipeline_id": pipeline.id,
                "stage_id": stage.id,
                "company_id": company_id,
                "name": f"Deal {n + 1:04d}",
                "owner": owner,
                "amount_minor": amount,
                "currency": "USD",
                "close_date": walk.closed_at.date() if walk.closed_at else close_date,
                "forecast_category": "closed"
                if stage.kind == "won"
                else _category(stage.probability_pct, rng),
                "source": source,
                "campaign": campaign,
                "created_at": created,
                "updated_at": max([created, walk.entered, *(c["at"] for c in deal_changes)]),
                "stage_entered_at": walk.entered,
                "closed_at": walk.closed_at,
            }
        )
        walks.append(walk)
        changes.append(deal_changes)
    session.execute(insert(SalesDeal), rows)
    ids = list(
        session.execute(
            select(col(SalesDeal.id)).where(col(SalesDeal.tenant) == TENANT).order_by(col(SalesDeal.id))
        ).scalars()
    )
    ids = ids[-deals:]  # the rows just inserted, in insertion order
    moves = [
        {"deal_id": deal_id, "from_stage_id": a, "to_stage_id": b, "actor": ACTOR, "at": at}
        for deal_id, walk in zip(ids, walks, strict=True)
        for a, b, at in walk.moves
    ]
    session.execute(insert(SalesStageMove), moves)
    change_rows = [{**c, "deal_id": deal_id} for deal_id, cs in zip(ids, changes, strict=True) for c in cs]
    if change_rows:
        session.execute(insert(SalesDealChange), change_rows)
    written = DemoDeals(stage_moves=len(moves), deal_changes=len(change_rows))
    for deal_id, row, walk in zip(ids, rows, walks, strict=True):
        written.deals.append(
            DemoDeal(
                id=deal_id,
                owner=row["owner"],
                company_id=row["company_id"],
                created_at=row["created_at"],
                closed_at=walk.closed_at,
                open=walk.closed_at is None,
            )
        )
    return written


def _change(name: str, old: str, new: str, at: datetime) -> dict[str, Any]:
    return {"field": name, "old_value": old, "new_value": new, "actor": ACTOR, "at": at}
