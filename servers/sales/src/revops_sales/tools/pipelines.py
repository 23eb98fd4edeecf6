"""Sales tools: pipelines and their stages (order, probabilities, exit criteria)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import Count, Id, IdValue, SingleLine, Text, WholeNumber, require
from revops_core.server import Call
from revops_sales.params import PipelineId
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
    """Every pipeline with its stages: ids, probabilities, exit criteria, default categories."""
    return pipelines.list_all(call.db, call.tenant)


CriterionText = Annotated[str, Field(min_length=1, max_length=300), SingleLine]


@toolset.tool(
    tier="write", idempotent=False, title="Change a pipeline's stages", target="sales_pipeline:{pipeline_id}"
)
def configure_pipeline(
    call: Call,
    pipeline_id: PipelineId,
    action: Annotated[
        Literal["add_stage", "rename_stage", "reorder_stages", "set_exit_criteria"],
        Field(description="What to change."),
    ],
    stage_id: Annotated[
        int | None, Id("stage", see="list_pipelines", optional="rename_stage, set_exit_criteria")
    ] = None,
    name: Annotated[str | None, Text("add_stage, rename_stage: stage name.", max_length=100)] = None,
    probability_pct: Annotated[
        int | None, Field(ge=0, le=100, description="add_stage: win probability, percent."), WholeNumber
    ] = None,
    position: Annotated[int | None, Count("add_stage: 0-based among open stages; omit: last.", le=29)] = None,
    stage_ids: Annotated[
        list[IdValue] | None,
        Field(min_length=1, max_length=30, description="reorder_stages: every open stage id, in order."),
    ] = None,
    criteria: Annotated[
        list[CriterionText] | None,
        Field(max_length=20, description="set_exit_criteria: the whole checklist; [] clears it."),
    ] = None,
) -> pipelines.PipelineOut:
    """Add an open stage, rename one, reorder the open stages, or set a stage's exit criteria."""
    if action == "add_stage":
        return pipelines.add_stage(
            call.db,
            call.tenant,
            pipeline_id,
            name=require(name, "name", when="action=add_stage"),
            probability_pct=require(probability_pct, "probability_pct", when="action=add_stage"),
            position=position,
        )
    if action == "rename_stage":
        return pipelines.rename_stage(
            call.db,
            call.tenant,
            pipeline_id,
            require(stage_id, "stage_id", when="action=rename_stage"),
            require(name, "name", when="action=rename_stage"),
        )
    if action == "reorder_stages":
        ids = require(stage_ids, "stage_ids", when="action=reorder_stages")
        return pipelines.reorder_stages(call.db, call.tenant, pipeline_id, ids)
    if criteria is None:
        require(None, "criteria", when="action=set_exit_criteria")
    return pipelines.set_exit_criteria(
        call.db,
        call.tenant,
        pipeline_id,
        require(stage_id, "stage_id", when="action=set_exit_criteria"),
        criteria or [],
    )
