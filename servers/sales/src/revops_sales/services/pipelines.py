"""Pipelines and stages: create with validated stages, read them back in order."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.outputs import Out
from revops_core.params import SingleLine, WholeNumber
from revops_core.records import live
from revops_sales.models.pipelines import SalesPipeline, SalesStage, StageKind

# REFERENCE.md, Sales: default stage probabilities (percent).
DEFAULT_STAGES: tuple[tuple[str, int, StageKind], ...] = (
    ("prospecting", 10, "open"),
    ("qualification", 20, "open"),
    ("needs analysis", 25, "open"),
    ("value proposition", 30, "open"),
    ("decision makers", 40, "open"),
    ("perception analysis", 50, "open"),
    ("proposal", 65, "open"),
    ("negotiation", 80, "open"),
    ("closed won", 100, "won"),
    ("closed lost", 0, "lost"),
)


class StageIn(Out):
    name: Annotated[str, SingleLine] = Field(
        min_length=1, max_length=100, description="Stage name, unique in the pipeline."
    )
    probability_pct: Annotated[int, WholeNumber] = Field(
        ge=0, le=100, description="Win probability of a deal in this stage, percent."
    )
    kind: StageKind = Field(default="open", description="open, won (closed won) or lost (closed lost).")


class StageOut(StageIn):
    id: int = Field(description="Stage id.")
    position: int = Field(description="Order in the pipeline, from 0.")


class PipelineOut(Out):
    id: int = Field(description="Pipeline id.")
    name: str = Field(description="Pipeline name.")
    stages: list[StageOut] = Field(description="Stages in order.")


def _check_stages(stages: list[StageIn]) -> None:
    names = [s.name.strip().lower() for s in stages]
    if len(set(names)) != len(names):
        raise ValidationFailed(
            "Stage names must be unique.", field="stages", hint="Rename the repeated stage."
        )
    kinds = [s.kind for s in stages]
    if kinds.count("won") != 1 or kinds.count("lost") != 1 or "open" not in kinds:
        raise ValidationFailed(
            "A pipeline needs open stages, exactly one won stage and exactly one lost stage.",
            field="stages",
            hint="Mark one stage kind=won and one kind=lost.",
        )


def create(session: Session, tenant: str, name: str, stages: list[StageIn] | None) -> PipelineOut:
    chosen = stages or [StageIn(name=n, probability_pct=p, kind=k) for n, p, k in DEFAULT_STAGES]
    _check_stages(chosen)
    taken = session.exec(
        select(SalesPipeline.id).where(SalesPipeline.tenant == tenant, SalesPipeline.name == name)
    ).first()
    if taken is not None:
        raise Conflict(
            f"A pipeline named {name!r} exists (id {taken}).", field="name", hint="Pick another name."
        )
    pipeline = SalesPipeline(tenant=tenant, name=name)
    session.add(pipeline)
    session.flush()
    rows = [
        SalesStage(
            pipeline_id=pipeline.id or 0,
            name=s.name,
            position=i,
            probability_pct=s.probability_pct,
            kind=s.kind,
        )
        for i, s in enumerate(chosen)
    ]
    session.add_all(rows)
    session.flush()
    return PipelineOut(
        id=pipeline.id or 0, name=pipeline.name, stages=[StageOut.model_validate(r) for r in rows]
    )


def list_all(session: Session, tenant: str) -> list[PipelineOut]:
    pipelines = session.exec(
        select(SalesPipeline).where(SalesPipeline.tenant == tenant).order_by(col(SalesPipeline.id))
    ).all()
    ids = [p.id for p in pipelines]
    stages = session.exec(
        select(SalesStage)
        .join(SalesPipeline, col(SalesPipeline.id) == col(SalesStage.pipeline_id))
        .where(SalesPipeline.tenant == tenant)
        .order_by(col(SalesStage.pipeline_id), col(SalesStage.position))
    ).all()
    by_pipeline: dict[int, list[StageOut]] = {pid or 0: [] for pid in ids}
    for stage in stages:
        by_pipeline[stage.pipeline_id].append(StageOut.model_validate(stage))
    return [PipelineOut(id=p.id or 0, name=p.name, stages=by_pipeline[p.id or 0]) for p in pipelines]


def get_pipeline(session: Session, tenant: str, pipeline_id: int) -> SalesPipeline:
    return live(
        session,
        SalesPipeline,
        pipeline_id,
        tenant=tenant,
        field="pipeline_id",
        what="pipeline",
        see="list_pipelines",
    )


def stages_of(session: Session, pipeline_id: int) -> dict[int, SalesStage]:
    rows = session.exec(select(SalesStage).where(SalesStage.pipeline_id == pipeline_id)).all()
    return {row.id or 0: row for row in rows}


def stage_in(session: Session, pipeline_id: int, stage_id: int, *, field: str = "stage_id") -> SalesStage:
    stage = session.get(SalesStage, stage_id)
    if stage is None or stage.pipeline_id != pipeline_id:
        raise NotFound(
            f"Pipeline {pipeline_id} has no stage {stage_id}.",
            field=field,
            hint="See the pipeline's stages with list_pipelines.",
        )
    return stage


def first_open_stage(session: Session, pipeline_id: int) -> SalesStage:
    stage = session.exec(
        select(SalesStage)
        .where(SalesStage.pipeline_id == pipeline_id, SalesStage.kind == "open")
        .order_by(col(SalesStage.position))
    ).first()
    if stage is None:  # a pipeline is created with open stages; this guards hand-edited data
        raise ValidationFailed(f"Pipeline {pipeline_id} has no open stage.", field="pipeline_id")
    return stage
