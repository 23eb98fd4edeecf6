"""Sales parameter types: the core vocabulary (`revops_core.params`) applied to Sales entities."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import Id, SingleLine

DealId = Annotated[int, Id("deal", see="list_deals")]
PipelineId = Annotated[int, Id("pipeline", see="list_pipelines")]
OptPipeline = Annotated[int | None, Id("pipeline", see="list_pipelines", optional="omit for every pipeline")]
StageId = Annotated[int, Id("stage", see="list_pipelines")]
CompanyId = Annotated[int, Id("company", see="search_companies")]
ContactId = Annotated[int, Id("contact", see="search_contacts")]

# The scope of a forecast (forecast_period, save_forecast_snapshot): one definition for both.
PeriodStart = Annotated[date | None, Field(description="First day; default 89 days before end.")]
PeriodEnd = Annotated[date | None, Field(description="Last day; default today.")]
OptRep = Annotated[
    str | None, Field(min_length=1, max_length=200, description="One rep; omit for the team."), SingleLine
]
OptCurrency = Annotated[
    str | None, Field(pattern=r"^[A-Z]{3}$", description="Needed when deals use several.")
]
