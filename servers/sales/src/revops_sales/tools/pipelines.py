"""Sales tools: pipelines and their stages."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.params import Text
from revops_core.server import Call
from revops_sales.services import pipelines
from revops_sales.toolsets import deals as toolset


@toolset.tool(tier="write", idempotent=False, title="Create a pipeline")
def create_pipeline(
    call: Call,
    name: Annotated[str, Text("Pipeline name, unique.", max_length=100)],
    stages: Annotated[
        list[pipelines.StageIn] | None,
        Field(min_length=3, max_length=30, description="Stages in order; omit for the standard ten."),
    ] = None,
) -> pipelines.PipelineOut:
    """Create a pipeline with its stages (open stages, one won, one lost) and win probabilities."""
    created = pipelines.create(call.db, call.tenant, name, stages)
    call.target = f"sales_pipeline:{created.id}"
    return created


@toolset.tool(tier="read", title="List pipelines")
def list_pipelines(call: Call) -> list[pipelines.PipelineOut]:
    """Every pipeline with its stages, ids and win probabilities."""
    return pipelines.list_all(call.db, call.tenant)
