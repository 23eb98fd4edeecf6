"""Pipelines and stages: create with validated stages, change them (add, rename, reorder, exit
criteria), read them back in order with their criteria and defaults."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.outputs import Out
from revops_core.params import SingleLine, WholeNumber
from revops_core.records import live
from revops_sales.models.pipelines import (
    SalesPipeline,
    SalesStage,
    SalesStageCriterion,
    SalesStageDefault,
    StageKind,
)

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
        min_length=1, max_length=100, description="Unique in the pipeline."
    )
    probability_pct: Annotated[int, WholeNumber] = Field(
        ge=0, le=100, description="Win probability, percent."
    )
    kind: StageKind = "open"


class CriterionOut(Out):
    id: int = Field(description="Criterion id.")
    text: str = Field(description="What must be true before a deal leaves the stage forward.")


class StageOut(StageIn):
    id: int = Field(description="Stage id.")
    position: int = Field(description="Order in the pipeline, from 0.")
    exit_criteria: list[CriterionOut] = Field(default=[], description="Checklist to leave it forward.")
    default_forecast_category: str | None = Field(
        default=None, description="Category a deal takes on entering it; null keeps the deal's."
    )


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
    for i, stage in enumerate(stages):
        check_probability(stage.kind, stage.probability_pct, field=f"stages.{i}.probability_pct")


# A won deal is certain and a lost one impossible: anything else would make weighted pipeline
# and forecasts count closed deals at a made-up probability.
CLOSED_PROBABILITY = {"won": 100, "lost": 0}


def check_probability(kind: str, probability_pct: int, *, field: str) -> None:
    fixed = CLOSED_PROBABILITY.get(kind)
    if fixed is not None and probability_pct != fixed:
        raise ValidationFailed(
            f"A {kind} stage has probability {fixed} %, not {probability_pct}.",
            field=field,
            hint=f"Set the {kind} stage to {fixed}.",
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
    outs = stage_outs(session, list(stages))
    by_pipeline: dict[int, list[StageOut]] = {pid or 0: [] for pid in ids}
    for stage, out in zip(stages, outs, strict=True):
        by_pipeline[stage.pipeline_id].append(out)
    return [PipelineOut(id=p.id or 0, name=p.name, stages=by_pipeline[p.id or 0]) for p in pipelines]


def stage_outs(session: Session, stages: list[SalesStage]) -> list[StageOut]:
    """Stages with their live exit criteria and default category (two queries for any number)."""
    ids = [s.id or 0 for s in stages]
    criteria: dict[int, list[CriterionOut]] = {i: [] for i in ids}
    defaults: dict[int, str | None] = {}
    if ids:
        for row in session.exec(
            select(SalesStageCriterion)
            .where(col(SalesStageCriterion.stage_id).in_(ids), col(SalesStageCriterion.retired_at).is_(None))
            .order_by(col(SalesStageCriterion.position), col(SalesStageCriterion.id))
        ):
            criteria[row.stage_id].append(CriterionOut.model_validate(row))
        for default in session.exec(
            select(SalesStageDefault).where(col(SalesStageDefault.stage_id).in_(ids))
        ):
            defaults[default.stage_id] = default.forecast_category
    return [
        StageOut.model_validate(
            {
                **s.model_dump(),
                "exit_criteria": criteria[s.id or 0],
                "default_forecast_category": defaults.get(s.id or 0),
            }
        )
        for s in stages
    ]


def pipeline_out(session: Session, pipeline: SalesPipeline) -> PipelineOut:
    return PipelineOut(
        id=pipeline.id or 0,
        name=pipeline.name,
        stages=stage_outs(session, ordered_stages(session, pipeline.id or 0)),
    )


def ordered_stages(session: Session, pipeline_id: int) -> list[SalesStage]:
    return list(
        session.exec(
            select(SalesStage).where(SalesStage.pipeline_id == pipeline_id).order_by(col(SalesStage.position))
        )
    )


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


# --------------------------------------------------------------------------- changing stages


def _name_taken(stages: list[SalesStage], name: str, *, other_than: int | None = None) -> None:
    for stage in stages:
        if stage.id != other_than and stage.name.strip().lower() == name.strip().lower():
            raise Conflict(
                f"The pipeline has a stage named {stage.name!r} (id {stage.id}).",
                field="name",
                hint="Pick another name.",
            )


def _store_positions(session: Session, stages: list[SalesStage]) -> None:
    """Give `stages` positions 0… in list order. Two flushes: positions are unique per pipeline and
    PostgreSQL checks that row by row, so they pass through free positions first."""
    offset = len(stages) + 1_000
    for i, stage in enumerate(stages):
        stage.position = offset + i
        session.add(stage)
    session.flush()
    for i, stage in enumerate(stages):
        stage.position = i
        session.add(stage)
    session.flush()


def add_stage(
    session: Session, tenant: str, pipeline_id: int, *, name: str, probability_pct: int, position: int | None
) -> PipelineOut:
    """Add an open stage at `position` (default: after the last open stage). Closed stages stay last."""
    pipeline = get_pipeline(session, tenant, pipeline_id)
    stages = ordered_stages(session, pipeline_id)
    _name_taken(stages, name)
    open_count = sum(1 for s in stages if s.kind == "open")
    where = open_count if position is None else position
    if where > open_count:
        raise ValidationFailed(
            f"position {where} is past the open stages (0–{open_count}).",
            field="position",
            hint="Closed stages stay last; pick a position among the open stages.",
        )
    new = SalesStage(
        pipeline_id=pipeline_id, name=name, position=len(stages) + 2_000, probability_pct=probability_pct
    )
    session.add(new)
    session.flush()
    stages.insert(where, new)
    _store_positions(session, stages)
    return pipeline_out(session, pipeline)


def rename_stage(session: Session, tenant: str, pipeline_id: int, stage_id: int, name: str) -> PipelineOut:
    pipeline = get_pipeline(session, tenant, pipeline_id)
    stage = stage_in(session, pipeline_id, stage_id)
    _name_taken(ordered_stages(session, pipeline_id), name, other_than=stage.id)
    stage.name = name
    session.add(stage)
    session.flush()
    return pipeline_out(session, pipeline)


def reorder_stages(session: Session, tenant: str, pipeline_id: int, stage_ids: list[int]) -> PipelineOut:
    """Put the open stages in the order given (every open stage id, once); closed stages stay last."""
    pipeline = get_pipeline(session, tenant, pipeline_id)
    stages = ordered_stages(session, pipeline_id)
    open_stages = {s.id: s for s in stages if s.kind == "open"}
    if len(stage_ids) != len(set(stage_ids)) or set(stage_ids) != set(open_stages):
        raise ValidationFailed(
            "stage_ids must list every open stage of the pipeline exactly once.",
            field="stage_ids",
            hint="Open stages: " + ", ".join(f"{s.id} {s.name}" for s in open_stages.values()) + ".",
        )
    closed = [s for s in stages if s.kind != "open"]
    _store_positions(session, [open_stages[i] for i in stage_ids] + closed)
    return pipeline_out(session, pipeline)


def set_exit_criteria(
    session: Session, tenant: str, pipeline_id: int, stage_id: int, criteria: list[str]
) -> PipelineOut:
    """Replace a stage's checklist. A line kept word for word keeps its id (and deals that met it);
    a dropped line is retired; an empty list clears the checklist."""
    pipeline = get_pipeline(session, tenant, pipeline_id)
    stage = stage_in(session, pipeline_id, stage_id)
    if stage.kind != "open":
        raise ValidationFailed(
            f"Stage {stage.name!r} is closed; a deal never leaves it forward.", field="stage_id"
        )
    wanted = [c.strip() for c in criteria]
    if any(not c for c in wanted) or len({c.lower() for c in wanted}) != len(wanted):
        raise ValidationFailed("Criteria must be non-blank and distinct.", field="criteria")
    live_rows = {
        row.text: row
        for row in session.exec(
            select(SalesStageCriterion).where(
                SalesStageCriterion.stage_id == stage_id, col(SalesStageCriterion.retired_at).is_(None)
            )
        )
    }
    now = utcnow()
    for text, row in live_rows.items():
        if text not in wanted:
            row.retired_at = now
            session.add(row)
    for i, text in enumerate(wanted):
        row = live_rows.get(text) or SalesStageCriterion(stage_id=stage_id, position=i, text=text)
        row.position = i
        session.add(row)
    session.flush()
    return pipeline_out(session, pipeline)
