"""Forecast snapshots: store the forecast of a period as of now, and say what moved between two.

Taking one reads the period's open deals (with the probability the forecast gives them) and its
won deals, and stores one row per deal. Comparing reads both snapshots' rows, and for deals that
entered or left the forecast the deal as it is now plus its close-date changes between the two —
three set-based queries whatever the number of deals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import Field
from sqlalchemy import insert
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import NotFound, ValidationFailed
from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.analytics import forecast as maths
from revops_sales.models.deals import SalesDeal, SalesDealChange
from revops_sales.models.forecast_snapshots import SalesForecastSnapshot, SalesForecastSnapshotDeal
from revops_sales.models.pipelines import SalesStage
from revops_sales.services import forecast

BASELINE_DAYS = 7
"""The default baseline: the snapshot of the same scope taken closest to this many days earlier."""
CLOSED = "closed"


class SnapshotOut(Out):
    id: int = Field(description="Snapshot id.")
    start: date = Field(description="First day of the period.")
    end: date = Field(description="Last day of the period.")
    currency: str = Field(description="Currency.")
    pipeline_id: int | None = Field(description="Pipeline; null for all.")
    owner: str | None = Field(description="Rep; null for the team.")
    won_minor: int = Field(description="Won in the period when taken.")
    open_minor: int = Field(description="Open (not omitted) closing in the period, unweighted.")
    weighted_minor: float = Field(description="Σ amount × probability of those.")
    deals: int = Field(description="Deals stored (open in the period, omitted included, and won).")
    taken_by: str = Field(description="Who took it.")
    taken_at: datetime = Field(description="When (UTC).")


class DealMove(Out):
    deal_id: int = Field(description="Deal id.")
    name: str = Field(description="Deal name.")
    changes: list[str] = Field(
        description="new, removed, won, lost, pushed_out, pulled_in, amount, stage, category, "
        "close_date, probability."
    )
    reasons: list[str] = Field(description="What happened, in words, one per change.")
    amount_before_minor: int | None = Field(description="Amount in the baseline; null if not in it.")
    amount_after_minor: int | None = Field(description="Amount in the later snapshot; null if not in it.")
    total_change_minor: int = Field(description="Change of its share of won + open (omitted count 0).")
    weighted_change_minor: float = Field(description="Change of its share of won + weighted.")


class SnapshotComparison(Out):
    baseline: SnapshotOut = Field(description="The earlier snapshot.")
    later: SnapshotOut = Field(description="The later snapshot.")
    won_change_minor: int = Field(description="later.won − baseline.won.")
    open_change_minor: int = Field(description="later.open − baseline.open.")
    weighted_change_minor: float = Field(description="later.weighted − baseline.weighted.")
    categories_before: dict[str, int] = Field(description="Cumulative roll-ups in the baseline.")
    categories_after: dict[str, int] = Field(description="Cumulative roll-ups in the later snapshot.")
    counts: dict[str, int] = Field(description="Deals per kind of change.")
    moved: list[DealMove] = Field(description="Every deal that changed, largest total change first.")
    reconciles: bool = Field(description="Σ per-deal total changes = change of won + open.")
    notes: list[str] = Field(description="How reasons were found.")


def take(
    read: Session,
    write: Session,
    tenant: str,
    actor: str,
    *,
    pipeline_id: int | None,
    owner: str | None,
    start: date | None,
    end: date | None,
    currency: str | None,
) -> SnapshotOut:
    """Store the forecast of the period as of now: read on `read`, stored on `write`.

    Probabilities are the configured stage probabilities, so two snapshots differ only by what
    happened to the deals (historical win rates would move with every deal closed elsewhere)."""
    period = forecast.resolve_period(start, end)
    scope = forecast.Scope(
        tenant, forecast.resolve_currency(read, tenant, pipeline_id, currency), pipeline_id, owner
    )
    probabilities = forecast.stage_probabilities(read, tenant, pipeline_id, False, 0)
    open_rows, _ = forecast.open_deals(read, scope, period, probabilities, None)
    won_rows = read.exec(
        select(SalesDeal, SalesStage.name)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            *scope.conditions(),
            SalesStage.kind == "won",
            col(SalesDeal.closed_at) >= period.since,
            col(SalesDeal.closed_at) < period.until,
        )
    ).all()
    counted = [r for r in open_rows if r.category != maths.OMITTED]
    snapshot = SalesForecastSnapshot(
        tenant=tenant,
        start=period.start,
        end=period.end,
        currency=scope.currency,
        pipeline_id=pipeline_id,
        owner=owner,
        won_minor=sum(d.amount_minor for d, _ in won_rows),
        open_minor=sum(r.amount_minor for r in counted),
        weighted_minor=float(sum(r.amount_minor * r.probability for r in counted)),
        deals=len(open_rows) + len(won_rows),
        taken_by=actor,
        taken_at=utcnow(),
    )
    write.add(snapshot)
    write.flush()
    rows = [
        {
            "snapshot_id": snapshot.id,
            "deal_id": r.deal_id,
            "name": r.name,
            "owner": r.owner,
            "amount_minor": r.amount_minor,
            "stage_id": r.stage_id,
            "stage": r.stage,
            "category": r.category,
            "close_date": r.close_date,
            "probability": r.probability,
        }
        for r in open_rows
    ] + [
        {
            "snapshot_id": snapshot.id,
            "deal_id": d.id,
            "name": d.name,
            "owner": d.owner,
            "amount_minor": d.amount_minor,
            "stage_id": d.stage_id,
            "stage": stage,
            "category": CLOSED,
            "close_date": d.close_date,
            "probability": 1.0,
        }
        for d, stage in won_rows
    ]
    if rows:
        write.connection().execute(insert(SalesForecastSnapshotDeal), rows)
    return SnapshotOut.model_validate(snapshot)


def _snapshot(session: Session, tenant: str, snapshot_id: int, field: str) -> SalesForecastSnapshot:
    row = session.get(SalesForecastSnapshot, snapshot_id)
    if row is None or row.tenant != tenant:
        raise NotFound(
            f"No forecast snapshot with id {snapshot_id}.",
            field=field,
            hint="Take one with save_forecast_snapshot.",
        )
    return row


def _same_scope(a: SalesForecastSnapshot, b: SalesForecastSnapshot) -> bool:
    return (a.start, a.end, a.currency, a.pipeline_id, a.owner) == (
        b.start,
        b.end,
        b.currency,
        b.pipeline_id,
        b.owner,
    )


def _pick(
    session: Session, tenant: str, later_id: int | None, baseline_id: int | None
) -> tuple[SalesForecastSnapshot, SalesForecastSnapshot]:
    if later_id is not None:
        later = _snapshot(session, tenant, later_id, "snapshot_id")
    else:
        found = session.exec(
            select(SalesForecastSnapshot)
            .where(SalesForecastSnapshot.tenant == tenant)
            .order_by(col(SalesForecastSnapshot.taken_at).desc(), col(SalesForecastSnapshot.id).desc())
        ).first()
        if found is None:
            raise NotFound(
                "No forecast snapshot yet.", field="snapshot_id", hint="Take one with save_forecast_snapshot."
            )
        later = found
    if baseline_id is not None:
        baseline = _snapshot(session, tenant, baseline_id, "baseline_id")
        if not _same_scope(baseline, later):
            raise ValidationFailed(
                f"Snapshot {baseline_id} forecasts another period or scope than snapshot {later.id}.",
                field="baseline_id",
                hint="Compare snapshots of the same period, currency, pipeline and owner.",
            )
        if (baseline.taken_at, baseline.id or 0) >= (later.taken_at, later.id or 0):
            raise ValidationFailed(
                f"Snapshot {baseline_id} is not earlier than snapshot {later.id}.", field="baseline_id"
            )
        return baseline, later
    target = later.taken_at - timedelta(days=BASELINE_DAYS)
    candidates = session.exec(
        select(SalesForecastSnapshot).where(
            SalesForecastSnapshot.tenant == tenant,
            SalesForecastSnapshot.start == later.start,
            SalesForecastSnapshot.end == later.end,
            SalesForecastSnapshot.currency == later.currency,
            col(SalesForecastSnapshot.id) != later.id,
            col(SalesForecastSnapshot.taken_at) <= later.taken_at,
        )
    ).all()
    earlier = [
        c
        for c in candidates
        if _same_scope(c, later) and (c.taken_at, c.id or 0) < (later.taken_at, later.id or 0)
    ]
    if not earlier:
        raise NotFound(
            f"No earlier snapshot of the same period and scope as snapshot {later.id}.",
            field="baseline_id",
            hint="Take snapshots regularly with save_forecast_snapshot.",
        )
    baseline = min(earlier, key=lambda c: (abs((c.taken_at - target).total_seconds()), -(c.id or 0)))
    return baseline, later


@dataclass(frozen=True)
class _Now:
    """A deal as it is now (for deals that left or entered the forecast)."""

    kind: str
    close_date: date | None
    created_at: datetime
    closed_at: datetime | None
    deleted: bool
    owner: str | None
    currency: str


def _share(row: SalesForecastSnapshotDeal | None) -> tuple[int, float]:
    if row is None or row.category == maths.OMITTED:
        return 0, 0.0
    weight = 1.0 if row.category == CLOSED else row.probability
    return row.amount_minor, row.amount_minor * weight


def _rollup(rows: dict[int, SalesForecastSnapshotDeal]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows.values():
        totals[row.category] = totals.get(row.category, 0) + row.amount_minor
    return maths.category_rollup(totals)


def compare(
    session: Session, tenant: str, *, snapshot_id: int | None, baseline_id: int | None
) -> SnapshotComparison:
    baseline, later = _pick(session, tenant, snapshot_id, baseline_id)
    rows = session.exec(
        select(SalesForecastSnapshotDeal).where(
            col(SalesForecastSnapshotDeal.snapshot_id).in_((baseline.id, later.id))
        )
    ).all()
    before = {r.deal_id: r for r in rows if r.snapshot_id == baseline.id}
    after = {r.deal_id: r for r in rows if r.snapshot_id == later.id}
    in_either = select(SalesForecastSnapshotDeal.deal_id).where(
        col(SalesForecastSnapshotDeal.snapshot_id).in_((baseline.id, later.id))
    )
    now = {
        deal.id or 0: _Now(
            kind,
            deal.close_date,
            deal.created_at,
            deal.closed_at,
            deal.deleted_at is not None,
            deal.owner,
            deal.currency,
        )
        for deal, kind in session.exec(
            select(SalesDeal, SalesStage.kind)
            .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
            .where(col(SalesDeal.id).in_(in_either))
        ).all()
    }
    # Close-date changes between the two snapshots: the earliest old and the latest new value.
    moves: dict[int, tuple[str | None, str | None]] = {}
    for deal_id, old, new in session.exec(
        select(SalesDealChange.deal_id, SalesDealChange.old_value, SalesDealChange.new_value)
        .where(
            col(SalesDealChange.deal_id).in_(in_either),
            SalesDealChange.field == "close_date",
            col(SalesDealChange.at) > baseline.taken_at,
            col(SalesDealChange.at) <= later.taken_at,
        )
        .order_by(col(SalesDealChange.at), col(SalesDealChange.id))
    ).all():
        first = moves.get(deal_id, (old, new))[0]
        moves[deal_id] = (first, new)
    period = DateRange(later.start, later.end)
    moved: list[DealMove] = []
    for deal_id in sorted(set(before) | set(after)):
        a, b = before.get(deal_id), after.get(deal_id)
        changes, reasons = _explain(a, b, now.get(deal_id), moves.get(deal_id), baseline, period)
        if not changes:
            continue
        (total_a, weighted_a), (total_b, weighted_b) = _share(a), _share(b)
        moved.append(
            DealMove(
                deal_id=deal_id,
                name=b.name if b else (a.name if a else ""),
                changes=changes,
                reasons=reasons,
                amount_before_minor=a.amount_minor if a else None,
                amount_after_minor=b.amount_minor if b else None,
                total_change_minor=total_b - total_a,
                weighted_change_minor=weighted_b - weighted_a,
            )
        )
    moved.sort(key=lambda m: (-abs(m.total_change_minor), m.deal_id))
    counts: dict[str, int] = {}
    for move in moved:
        for change in move.changes:
            counts[change] = counts.get(change, 0) + 1
    total_change = (later.won_minor + later.open_minor) - (baseline.won_minor + baseline.open_minor)
    return SnapshotComparison(
        baseline=SnapshotOut.model_validate(baseline),
        later=SnapshotOut.model_validate(later),
        won_change_minor=later.won_minor - baseline.won_minor,
        open_change_minor=later.open_minor - baseline.open_minor,
        weighted_change_minor=later.weighted_minor - baseline.weighted_minor,
        categories_before=_rollup(before),
        categories_after=_rollup(after),
        counts=counts,
        moved=moved,
        reconciles=sum(m.total_change_minor for m in moved) == total_change,
        notes=[
            "Deals that left or entered the forecast are explained from the deal as it is now and "
            "its close-date changes between the two snapshots."
        ],
    )


def _explain(
    a: SalesForecastSnapshotDeal | None,
    b: SalesForecastSnapshotDeal | None,
    now: _Now | None,
    close_move: tuple[str | None, str | None] | None,
    baseline: SalesForecastSnapshot,
    period: DateRange,
) -> tuple[list[str], list[str]]:
    changes: list[str] = []
    reasons: list[str] = []

    def add(change: str, reason: str) -> None:
        changes.append(change)
        reasons.append(reason)

    if a is None and b is not None:
        if now is not None and now.created_at > baseline.taken_at:
            add("new", f"created {now.created_at.date().isoformat()}")
        elif close_move is not None:
            add(
                "pulled_in",
                f"close date moved into the period: {close_move[0] or 'none'} → {close_move[1] or 'none'}",
            )
        elif b.category == CLOSED:
            add("won", "won in the period (it was not in the baseline's forecast)")
        else:
            add("new", "entered the forecast (reopened, reassigned or re-scoped)")
        return changes, reasons
    if a is not None and b is None:
        if now is None or now.deleted:
            add("removed", "deal deleted")
        elif now.kind == "lost":
            add("lost", f"closed lost {now.closed_at.date().isoformat() if now.closed_at else ''}".strip())
        elif now.kind == "won":
            add("removed", "won outside the period")
        elif close_move is not None or (
            now.close_date is None or not period.start <= now.close_date <= period.end
        ):
            new = close_move[1] if close_move else (now.close_date.isoformat() if now.close_date else None)
            if new is None:
                add("pushed_out", "close date cleared")
            elif date.fromisoformat(new) > period.end:
                add("pushed_out", f"close date pushed out of the period to {new}")
            else:
                add("pushed_out", f"close date moved before the period to {new}")
        else:
            add("removed", "left the forecast scope (owner or currency changed)")
        return changes, reasons
    if a is None or b is None:  # in neither: nothing moved
        return changes, reasons
    if a.category != CLOSED and b.category == CLOSED:
        add("won", f"won at {b.amount_minor} (was {a.stage})")
    else:
        if a.stage_id != b.stage_id:
            add("stage", f"stage {a.stage} → {b.stage}")
        if a.category != b.category:
            add("category", f"category {a.category} → {b.category}")
        if a.close_date != b.close_date:
            add("close_date", f"close date {a.close_date} → {b.close_date} (still in the period)")
    if a.amount_minor != b.amount_minor:
        add("amount", f"amount {a.amount_minor} → {b.amount_minor}")
    if not changes and a.probability != b.probability:
        add("probability", f"probability {a.probability:.3f} → {b.probability:.3f} (win rates changed)")
    return changes, reasons
