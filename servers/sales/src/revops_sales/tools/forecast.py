"""Sales tools: the forecast of a period."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import MAX_MINOR, WholeNumber
from revops_core.server import Call
from revops_sales.analytics.forecast import DEFAULT_SEED
from revops_sales.params import OptCurrency, OptPipeline, OptRep, PeriodEnd, PeriodStart
from revops_sales.services import forecast
from revops_sales.toolsets import forecasting as toolset


@toolset.tool(tier="read", title="Forecast a period")
def forecast_period(
    call: Call,
    start: PeriodStart = None,
    end: PeriodEnd = None,
    pipeline_id: OptPipeline = None,
    owner: OptRep = None,
    currency: OptCurrency = None,
    quota_minor: Annotated[
        int | None, Field(ge=1, le=MAX_MINOR, description="Quota for the period, minor units."), WholeNumber
    ] = None,
    seed: Annotated[
        int, Field(ge=0, le=2**32 - 1, description="Monte Carlo seed."), WholeNumber
    ] = DEFAULT_SEED,
    probabilities: Annotated[
        Literal["configured", "historical"], Field(description="Stage probabilities or win rates by stage.")
    ] = "configured",
    lookback_days: Annotated[
        int, Field(ge=30, le=1830, description="Win-rate look-back (historical)."), WholeNumber
    ] = 365,
    decay_half_life_days: Annotated[
        int | None,
        Field(
            ge=1, le=365, description="Halve p per this many days past the stage's median age; omit: none."
        ),
        WholeNumber,
    ] = None,
) -> forecast.ForecastOut:
    """Weighted pipeline, won to date and a 10 000-run Monte Carlo (P10/P50/P90, P(total ≥ quota))."""
    return forecast.period_forecast(
        call.db,
        call.tenant,
        pipeline_id=pipeline_id,
        owner=owner,
        start=start,
        end=end,
        currency=currency,
        quota_minor=quota_minor,
        seed=seed,
        historical=probabilities == "historical",
        lookback_days=lookback_days,
        half_life_days=decay_half_life_days,
        progress=lambda done, total: call.progress(done, total, f"{done}/{total} runs"),
    )
