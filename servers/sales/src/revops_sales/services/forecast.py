"""Forecast of a period from the stored deals: the rows in, the maths in `analytics.forecast`."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field
from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.outputs import Out
from revops_core.params import DateRange, today
from revops_sales.analytics import forecast
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesPipeline, SalesStage
from revops_sales.services import win_rates
from revops_sales.services.win_rates import StageProbability


class SimulationOut(Out):
    runs: int = Field(description="Simulated periods.")
    seed: int = Field(description="Random seed (fixed: the same data gives the same figures).")
    p10: float = Field(description="10th percentile of the period total, minor units.")
    p50: float = Field(description="Median period total, minor units.")
    p90: float = Field(description="90th percentile of the period total, minor units.")
    mean: float = Field(description="Mean simulated total, minor units.")
    std: float = Field(description="Standard deviation of the simulated total, minor units.")


class ForecastOut(Out):
    start: date = Field(description="First day of the period.")
    end: date = Field(description="Last day of the period.")
    currency: str = Field(description="Currency of every amount.")
    open_deals: int = Field(description="Open deals with a close date in the period.")
    open_minor: int = Field(description="Their total amount, unweighted.")
    weighted_minor: float = Field(description="Σ amount × stage probability (the expected value).")
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
    categories: dict[str, int] = Field(
        description="Cumulative unweighted roll-ups: closed, commit, most_likely, best_case, pipeline."
    )
    stage_probabilities: list[StageProbability] = Field(
        description="Probability used per open stage, and why."
    )
    notes: list[str] = Field(description="What the figures assume or leave out.")


def _currency(session: Session, tenant: str, pipeline_id: int | None, requested: str | None) -> str:
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


def period_forecast(
    session: Session,
    tenant: str,
    *,
    pipeline_id: int | None,
    start: date | None,
    end: date | None,
    currency: str | None,
    quota_minor: int | None,
    seed: int,
    historical: bool,
    lookback_days: int,
) -> ForecastOut:
    period = DateRange.resolve(
        start, end, default_days=90, start_field="start", end_field="end", allow_future=True
    )
    money = _currency(session, tenant, pipeline_id, currency)
    scope: list[ColumnElement[bool]] = [
        col(SalesDeal.tenant) == tenant,
        col(SalesDeal.deleted_at).is_(None),
        col(SalesDeal.currency) == money,
    ]
    if pipeline_id is not None:
        scope.append(col(SalesDeal.pipeline_id) == pipeline_id)
    is_open = SalesStage.kind == "open"

    def scalar(expression: Any, *conditions: Any) -> int:
        query = (
            select(expression)
            .select_from(SalesDeal)
            .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        )
        return int(session.exec(query.where(*scope, *conditions)).one())

    open_rows = session.exec(
        select(SalesDeal.amount_minor, SalesDeal.stage_id, SalesDeal.forecast_category)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(*scope, is_open, col(SalesDeal.close_date).between(period.start, period.end))
    ).all()
    probabilities = _stage_probabilities(session, tenant, pipeline_id, historical, lookback_days)
    used = {p.stage_id: p.used for p in probabilities}
    won_minor = scalar(
        func.coalesce(func.sum(SalesDeal.amount_minor), 0),
        SalesStage.kind == "won",
        col(SalesDeal.closed_at) >= period.since,
        col(SalesDeal.closed_at) < period.until,
    )
    undated = scalar(func.count(), is_open, col(SalesDeal.close_date).is_(None))
    overdue = scalar(func.count(), is_open, col(SalesDeal.close_date) < today())
    deals = [forecast.OpenDeal(amount, used[stage_id]) for amount, stage_id, _ in open_rows]
    by_category: dict[str, int] = {"closed": won_minor}
    for amount, _, category in open_rows:
        by_category[category] = by_category.get(category, 0) + amount
    mean, variance = forecast.exact_moments(deals)
    simulation = (
        forecast.monte_carlo(deals, seed=seed, already_won_minor=won_minor, target_minor=quota_minor)
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
    coverage = None
    if quota_minor is not None:
        remaining = quota_minor - won_minor
        if remaining > 0:
            coverage = open_minor / remaining
        else:
            notes.append("The quota is already met by closed-won deals; coverage is not defined.")
    if undated:
        notes.append(f"{undated} open deal(s) have no close date and are not in the forecast.")
    p_quota = None
    if quota_minor is not None:
        p_quota = simulation.p_at_least_target if simulation else float(won_minor >= quota_minor)
    return ForecastOut(
        start=period.start,
        end=period.end,
        currency=money,
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
        categories=forecast.category_rollup(by_category),
        stage_probabilities=probabilities,
        notes=notes,
    )


def _stage_probabilities(
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
