"""Sales parameter types: the core vocabulary (`revops_core.params`) applied to Sales entities."""

from __future__ import annotations

from typing import Annotated

from revops_core.params import Id

DealId = Annotated[int, Id("deal", see="list_deals")]
PipelineId = Annotated[int, Id("pipeline", see="list_pipelines")]
OptPipeline = Annotated[int | None, Id("pipeline", see="list_pipelines", optional="omit for every pipeline")]
StageId = Annotated[int, Id("stage", see="list_pipelines")]
CompanyId = Annotated[int, Id("company", see="search_companies")]
ContactId = Annotated[int, Id("contact", see="search_contacts")]
