"""Sales configuration per pipeline: stage win probabilities and each stage's default forecast
category (the category a deal takes when it enters the stage)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from sqlmodel import Session

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.outputs import Out
from revops_core.params import Id, WholeNumber
from revops_sales.models.pipelines import SalesStageDefault
from revops_sales.services import pipelines

CategorySetting = Literal["pipeline", "best_case", "most_likely", "commit", "omitted", "none"]
"""A forecast category of an open deal, or "none" to clear the stage's default."""


class StageSetting(Out):
    stage_id: Annotated[int, Id("stage", see="list_pipelines")]
    probability_pct: Annotated[int | None, WholeNumber] = Field(
        default=None, ge=0, le=100, description="Percent; omit to keep."
    )
    forecast_category: CategorySetting | None = Field(
        default=None, description="Default on entering; 'none' clears; omit to keep."
    )


def default_category(session: Session, stage_id: int) -> str | None:
    row = session.get(SalesStageDefault, stage_id)
    return row.forecast_category if row is not None else None


def set_stage_settings(
    session: Session, tenant: str, pipeline_id: int, settings: list[StageSetting]
) -> pipelines.PipelineOut:
    """Apply every setting or none: each is checked before anything is written."""
    pipeline = pipelines.get_pipeline(session, tenant, pipeline_id)
    ids = [s.stage_id for s in settings]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("A stage is listed twice.", field="stages", hint="List each stage once.")
    stages = [
        pipelines.stage_in(session, pipeline_id, s.stage_id, field=f"stages.{i}.stage_id")
        for i, s in enumerate(settings)
    ]
    for i, (stage, setting) in enumerate(zip(stages, settings, strict=True)):
        if setting.probability_pct is None and setting.forecast_category is None:
            raise ValidationFailed(
                f"Nothing to change for stage {stage.id}.",
                field=f"stages.{i}",
                hint="Give probability_pct or forecast_category.",
            )
        if setting.probability_pct is not None:
            pipelines.check_probability(
                stage.kind, setting.probability_pct, field=f"stages.{i}.probability_pct"
            )
        if setting.forecast_category not in (None, "none") and stage.kind != "open":
            raise ValidationFailed(
                f"Stage {stage.name!r} is closed: its deals are closed or lost, not forecast.",
                field=f"stages.{i}.forecast_category",
            )
    now = utcnow()
    for stage, setting in zip(stages, settings, strict=True):
        if setting.probability_pct is not None:
            stage.probability_pct = setting.probability_pct
            session.add(stage)
        if setting.forecast_category is not None:
            row = session.get(SalesStageDefault, stage.id) or SalesStageDefault(stage_id=stage.id or 0)
            row.forecast_category = None if setting.forecast_category == "none" else setting.forecast_category
            row.updated_at = now
            session.add(row)
    session.flush()
    return pipelines.pipeline_out(session, pipeline)
