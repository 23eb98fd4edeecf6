"""Forecast of a period from the stored deals: the rows in, the maths in `analytics.forecast`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pydantic import Field
from sqlalchemy import ColumnElement, and_, case, func, or_
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.outputs import Out
from revops_core.params import DateRange, today
from revops_sales.analytics import forecast, time_decay
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesPipeline, SalesStage
from revops_sales.models.quotas import TEAM, SalesQuota
from revops_sales.services import pipelines, win_rates
from revops_sales.services.deal_health import won_stage_medians
from revops_sales.services.win_rates import StageProbability


class SimulationOut(Out):
    runs: int = Field(description="Simulated periods.")
    seed: int = Field(description="Random seed (fixed: the same data gives the same figures).")
    p10: float = Field(description="10th percentile of the period total, minor units.")
    p50: float = Field(description="Median period total, minor units.")
    p90: float = Field(description="90th percentile of the period total, minor units.")
    mean: float = Field(description="Mean simulated total, minor units.")
    std: float = Field(description="Standard deviation of the simulated total, minor units.")


class DecayOut(Out):
    half_life_days: int = Field(description="H: days past the stage median that halve p.")
    decayed_deals: int = Field(description="Open deals older in their stage than its median.")
    weighted_before_minor: float = Field(description="Weighted pipeline before decay.")
    stages_without_median: list[str] = Field(description="Stages no won deal has left: their deals keep p.")


class ForecastOut(Out):
    start: date = Field(description="First day of the period.")
    end: date = Field(description="Last day of the period.")
    currency: str = Field(description="Currency of every amount.")
    owner: str | None = Field(description="The rep forecast; null for the team.")
    open_deals: int = Field(description="Open deals with a close date in the period (omitted excluded).")
    open_minor: int = Field(description="Their total amount, unweighted.")
    weighted_minor: float = Field(description="Σ amount × probability (the expected value).")
    won_minor: int = Field(description="Closed won in the period (included in every total below).")
    expected_total_minor: float = Field(description="Won + weighted: the exact mean of the total.")
    exact_std_minor: float = Field(description="Exact standard deviation √Σa²p(1−p).")
    simulation: SimulationOut | None = Field(description="Monte Carlo of the total; null with no open deals.")
    quota_minor: int | None = Field(description="Quota given for the period.")
    p_reach_quota: float | None = Field(description="Share of simulated periods with total ≥ quota.")
    coverage: float | None = Field(
        description="Open pipeline ÷ (quota − won); null without quota or when met."
    )
    overdue_open_deals: int = Field(description="Open deals whose close date has already passed.")
    without_close_date: int = Field(description="Open deals left out because they have no close date.")
    omitted_deals: int = Field(description="Open deals in the period categorised omitted (left out).")
    categories: dict[str, int] = Field(
        description="Cumulative unweighted roll-ups: closed, commit, most_likely, best_case, pipeline."
    )
    stage_probabilities: list[StageProbability] = Field(
        description="Probability used per open stage, and why."
    )
    time_decay: DecayOut | None = Field(description="Decay applied; null when not asked for.")
    notes: list[str] = Field(description="What the figures assume or leave out.")


@dataclass(frozen=True)
class Scope:
    """Which deals a forecast reads: tenant, currency, and optionally a pipeline and an owner."""

    tenant: str
    currency: str
    pipeline_id: int | None
    owner: str | None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = [
            col(SalesDeal.tenant) == self.tenant,
            col(SalesDeal.deleted_at).is_(None),
            col(SalesDeal.currency) == self.currency,
        ]
        if self.pipeline_id is not None:
            found.append(col(SalesDeal.pipeline_id) == self.pipeline_id)
        if self.owner is not None:
            found.append(col(SalesDeal.owner) == self.owner)
        return found


@dataclass(frozen=True)
class ForecastDeal:
    """One open deal of the period with the probability the forecast gives it."""

    deal_id: int
    name: str
    owner: str | None
    amount_minor: int
    stage_id: int
    stage: str
    category: str
    close_date: date
    probability: float


def resolve_currency(session: Session, tenant: str, pipeline_id: int | None, requested: str | None) -> str:
    """The requested currency, else the only one the deals use (amounts are never converted).

    Checks the pipeline first: an unknown pipeline is `not_found`, not an empty forecast."""
    if pipeline_id is not None:
        pipelines.get_pipeline(session, tenant, pipeline_id)
    query = select(SalesDeal.currency).where(SalesDeal.tenant == tenant, col(SalesDeal.deleted_at).is_(None))
    if pipeline_id is not None:
        query = query.where(SalesDeal.pipeline_id == pipeline_id)
    present = sorted(set(session.exec(query.distinct()).all()))
    if requested is not None:
        return requested
    if len(present) > 1:
        raise ValidationFailed(
            f"Deals are in several currencies ({', '.join(present)}); amounts are never converted.",
            field="currency",
            hint="Pass currency to forecast one of them.",
        )
    return present[0] if present else "USD"


def resolve_period(start: date | None, end: date | None) -> DateRange:
    return DateRange.resolve(
        start, end, default_days=90, start_field="start", end_field="end", allow_future=True
    )


def open_deals(
    session: Session,
    scope: Scope,
    period: DateRange,
    probabilities: list[StageProbability],
    half_life_days: int | None,
) -> tuple[list[ForecastDeal], DecayOut | None]:
    """Open deals closing in the period (omitted ones too, category `omitted`), each with its p."""
    # Plain rows of the columns used, not ORM objects.
    rows = session.execute(
        core_select(
            col(SalesDeal.id),
            col(SalesDeal.name),
            col(SalesDeal.owner),
            col(SalesDeal.amount_minor),
            col(SalesDeal.stage_id),
            col(SalesDeal.forecast_category),
            col(SalesDeal.close_date),
            col(SalesDeal.stage_entered_at),
            col(SalesStage.name),
        )
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            *scope.conditions(),
            col(SalesStage.kind) == "open",
            col(SalesDeal.close_date).between(period.start, period.end),
        )
        .order_by(col(SalesDeal.id))
    ).all()
    used = {p.stage_id: p.used for p in probabilities}
    medians: dict[int, float] = {}
    if half_life_days is not None:
        medians, _ = won_stage_medians(session, scope.tenant, scope.pipeline_id)
    now = utcnow()
    deals, decayed, before, no_median = [], 0, 0.0, set()
    for deal_id, name, owner, amount, stage_id, category, close_date, entered, stage_name in rows:
        p = used[stage_id]
        if half_life_days is not None and category != forecast.OMITTED:
            before += amount * p
            median = medians.get(stage_id)
            days = max(0.0, (now - entered).total_seconds() / 86_400)
            if median is None:
                no_median.add(stage_name)
            elif days > median:
                decayed += 1
            p = time_decay.decayed(p, days, median, half_life_days)
        deals.append(
            ForecastDeal(
                deal_id=deal_id,
                name=name,
                owner=owner,
                amount_minor=amount,
                stage_id=stage_id,
                stage=stage_name,
                category=category,
                close_date=close_date or period.end,
                probability=p,
            )
        )
    decay = None
    if half_life_days is not None:
        decay = DecayOut(
            half_life_days=half_life_days,
            decayed_deals=decayed,
            weighted_before_minor=before,
            stages_without_median=sorted(no_median),
        )
    return deals, decay


def _period_totals(session: Session, scope: Scope, period: DateRange) -> tuple[int, int, int]:
    """(won in the period, open deals without a close date, open deals whose close date has
    passed): one aggregate over one scan of the scope's open and won deals."""
    kind, closed_at, close_date = col(SalesStage.kind), col(SalesDeal.closed_at), col(SalesDeal.close_date)
    won_here = and_(kind == "won", closed_at >= period.since, closed_at < period.until)
    is_open = kind == "open"
    row = session.execute(
        core_select(
            func.coalesce(func.sum(case((won_here, col(SalesDeal.amount_minor)))), 0),
            func.count(case((and_(is_open, close_date.is_(None)), 1))),
            func.count(case((and_(is_open, close_date < today()), 1))),
        )
        .select_from(SalesDeal)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(*scope.conditions(), or_(is_open, won_here))
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def stored_quota(session: Session, scope: Scope, period: DateRange) -> SalesQuota | None:
    """The quota set for exactly this period, owner (the team: '*') and currency."""
    return session.exec(
        select(SalesQuota).where(
            SalesQuota.tenant == scope.tenant,
            SalesQuota.owner == (scope.owner or TEAM),
            SalesQuota.start == period.start,
            SalesQuota.end == period.end,
            SalesQuota.currency == scope.currency,
        )
    ).first()


def _quota(
    session: Session, scope: Scope, period: DateRange, given: int | None
) -> tuple[int | None, str | None]:
    """The quota to measure against, and a note saying where it came from (none when given)."""
    if given is not None:
        return given, None
    whose = f"{scope.owner!r}" if scope.owner is not None else "the team ('*')"
    span = f"{period.start.isoformat()}–{period.end.isoformat()}"
    if scope.pipeline_id is not None:
        # Quotas are per rep or team, not per pipeline: one pipeline's forecast is not measured
        # against the whole quota.
        return None, (
            "Quota: none used; stored quotas cover every pipeline, not pipeline "
            f"{scope.pipeline_id}. Pass quota_minor for P(total ≥ quota) and coverage."
        )
    row = stored_quota(session, scope, period)
    if row is None:
        return None, (
            f"Quota: none stored for {whose} over {span} in {scope.currency}, so P(total ≥ quota) and "
            "coverage are null; set one with set_quota (exactly this period) or pass quota_minor."
        )
    return row.amount_minor, (
        f"Quota: the stored quota {row.id} for {whose} over {span}: {row.amount_minor} {row.currency} "
        "minor units (set_quota)."
    )


def period_forecast(
    session: Session,
    tenant: str,
    *,
    pipeline_id: int | None,
    owner: str | None = None,
    start: date | None,
    end: date | None,
    currency: str | None,
    quota_minor: int | None,
    seed: int,
    historical: bool,
    lookback_days: int,
    half_life_days: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ForecastOut:
    period = resolve_period(start, end)
    scope = Scope(tenant, resolve_currency(session, tenant, pipeline_id, currency), pipeline_id, owner)
    probabilities = stage_probabilities(session, tenant, pipeline_id, historical, lookback_days)
    rows, decay = open_deals(session, scope, period, probabilities, half_life_days)
    quota_minor, quota_note = _quota(session, scope, period, quota_minor)
    counted = [r for r in rows if r.category != forecast.OMITTED]
    won_minor, undated, overdue = _period_totals(session, scope, period)
    deals = [forecast.OpenDeal(r.amount_minor, r.probability) for r in counted]
    by_category: dict[str, int] = {"closed": won_minor}
    for row in counted:
        by_category[row.category] = by_category.get(row.category, 0) + row.amount_minor
    mean, variance = forecast.exact_moments(deals)
    simulation = (
        forecast.monte_carlo(
            deals, seed=seed, already_won_minor=won_minor, target_minor=quota_minor, progress=progress
        )
        if deals
        else None
    )
    open_minor = sum(d.amount_minor for d in deals)
    source = (
        "historical win rates by stage (see stage_probabilities)"
        if historical
        else "configured stage probabilities"
    )
    notes = [f"Probabilities: {source}; deals are won independently."]
    if quota_note is not None:
        notes.append(quota_note)
    if decay is not None:
        notes.append(
            f"Time decay: p halves every {decay.half_life_days} days a deal stays in its stage past the "
            "median days won deals spent there; overdue close dates are counted, not decayed."
        )
    coverage = None
    if quota_minor is not None:
        remaining = quota_minor - won_minor
        if remaining > 0:
            coverage = open_minor / remaining
        else:
            notes.append("The quota is already met by closed-won deals; coverage is not defined.")
    if undated:
        notes.append(f"{undated} open deal(s) have no close date and are not in the forecast.")
    omitted = len(rows) - len(counted)
    if omitted:
        notes.append(f"{omitted} open deal(s) in the period are categorised omitted and left out.")
    p_quota = None
    if quota_minor is not None:
        p_quota = simulation.p_at_least_target if simulation else float(won_minor >= quota_minor)
    return ForecastOut(
        start=period.start,
        end=period.end,
        currency=scope.currency,
        owner=owner,
        open_deals=len(deals),
        open_minor=open_minor,
        weighted_minor=mean,
        won_minor=won_minor,
        expected_total_minor=won_minor + mean,
        exact_std_minor=variance**0.5,
        simulation=SimulationOut.model_validate(simulation) if simulation else None,
        quota_minor=quota_minor,
        p_reach_quota=p_quota,
        coverage=coverage,
        overdue_open_deals=overdue,
        without_close_date=undated,
        omitted_deals=omitted,
        categories=forecast.category_rollup(by_category),
        stage_probabilities=probabilities,
        time_decay=decay,
        notes=notes,
    )


def stage_probabilities(
    session: Session, tenant: str, pipeline_id: int | None, historical: bool, lookback_days: int
) -> list[StageProbability]:
    query = select(SalesStage).join(SalesPipeline, col(SalesPipeline.id) == col(SalesStage.pipeline_id))
    query = query.where(SalesPipeline.tenant == tenant, SalesStage.kind == "open")
    if pipeline_id is not None:
        query = query.where(SalesStage.pipeline_id == pipeline_id)
    stages = list(session.exec(query.order_by(col(SalesStage.pipeline_id), col(SalesStage.position))).all())
    if historical:
        return win_rates.by_stage(session, tenant, stages, lookback_days=lookback_days)
    return [
        StageProbability(
            stage_id=s.id or 0,
            stage=s.name,
            configured_pct=s.probability_pct,
            used=s.probability_pct / 100,
            won=0,
            lost=0,
            source="configured",
        )
        for s in stages
    ]
