"""Qualification scorecards of deals and leads, and the framework each pipeline uses.

A deal is scored with its pipeline's framework (configure_prospecting action=framework; BANT when
none is set) unless the caller names one; a lead with the framework named, else BANT.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.outputs import Out
from revops_core.params import MultiLine, SingleLine, WholeNumber
from revops_sales.analytics import qualification
from revops_sales.models.deals import SalesDeal
from revops_sales.models.leads import SalesPipelineFramework, SalesScorecard
from revops_sales.services import deals, leads, pipelines

Framework = Literal["BANT", "MEDDIC", "MEDDPICC", "CHAMP"]


class ElementIn(BaseModel):
    element: Annotated[str, SingleLine] = Field(
        min_length=1, max_length=40, description="e.g. budget, economic_buyer."
    )
    value: Annotated[int, WholeNumber] = Field(ge=0, le=2, description="0 unknown · 1 partial · 2 validated.")
    evidence: Annotated[str, MultiLine] | None = Field(default=None, max_length=2000)


class ElementOut(Out):
    element: str = Field(description="Framework element.")
    value: int = Field(description="0 unknown · 1 partial · 2 validated.")
    evidence: str | None = Field(description="Evidence recorded.")


class ScorecardOut(Out):
    deal_id: int | None = Field(description="Deal scored.")
    lead_id: int | None = Field(description="Lead scored.")
    framework: str = Field(description="BANT, MEDDIC, MEDDPICC or CHAMP.")
    framework_source: str = Field(description="requested, pipeline or default.")
    elements: list[ElementOut] = Field(description="Every element of the framework, in order.")
    points: int = Field(description="Σ element values.")
    max_points: int = Field(description="2 × elements.")
    score_pct: float = Field(description="100 × points / max_points.")
    missing: list[str] = Field(description="Elements still unknown (0).")
    partial: list[str] = Field(description="Elements only partly validated (1).")
    updated_at: datetime | None = Field(description="Last scored (UTC); null: never scored.")
    updated_by: str | None = Field(description="Who scored it last.")


class FrameworkOut(Out):
    pipeline_id: int = Field(description="Pipeline.")
    framework: str = Field(description="Framework its deals are scored with.")


def set_framework(session: Session, tenant: str, pipeline_id: int, framework: str) -> FrameworkOut:
    pipelines.get_pipeline(session, tenant, pipeline_id)
    row = session.exec(
        select(SalesPipelineFramework).where(
            SalesPipelineFramework.tenant == tenant, SalesPipelineFramework.pipeline_id == pipeline_id
        )
    ).first() or SalesPipelineFramework(tenant=tenant, pipeline_id=pipeline_id, framework=framework)
    row.framework = framework
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return FrameworkOut(pipeline_id=pipeline_id, framework=framework)


def _resolve(session: Session, tenant: str, deal: SalesDeal | None, framework: str | None) -> tuple[str, str]:
    if framework is not None:
        return framework, "requested"
    if deal is not None:
        row = session.exec(
            select(SalesPipelineFramework).where(
                SalesPipelineFramework.tenant == tenant,
                SalesPipelineFramework.pipeline_id == deal.pipeline_id,
            )
        ).first()
        if row is not None:
            return row.framework, "pipeline"
    return qualification.DEFAULT_FRAMEWORK, "default"


def _target(
    session: Session, tenant: str, deal_id: int | None, lead_id: int | None
) -> tuple[SalesDeal | None, int | None]:
    if (deal_id is None) == (lead_id is None):
        raise ValidationFailed("Give exactly one of deal_id and lead_id.", field="deal_id")
    if deal_id is not None:
        return deals.get(session, tenant, deal_id), None
    return None, leads.get(session, tenant, lead_id or 0).id


def _row(
    session: Session, tenant: str, deal_id: int | None, lead_id: int | None, framework: str
) -> SalesScorecard | None:
    query = select(SalesScorecard).where(
        SalesScorecard.tenant == tenant, SalesScorecard.framework == framework
    )
    query = query.where(
        SalesScorecard.deal_id == deal_id if deal_id is not None else SalesScorecard.lead_id == lead_id
    )
    return session.exec(query).first()


def _out(
    row: SalesScorecard | None,
    deal_id: int | None,
    lead_id: int | None,
    framework: str,
    source: str,
) -> ScorecardOut:
    stored: dict[str, dict[str, object]] = json.loads(row.elements) if row else {}
    values = {name: int(str(e.get("value", 0))) for name, e in stored.items()}
    result = qualification.score(framework, values)
    elements = [
        ElementOut(
            element=name,
            value=values.get(name, 0),
            evidence=str(stored[name]["evidence"]) if stored.get(name, {}).get("evidence") else None,
        )
        for name in qualification.FRAMEWORKS[framework]
    ]
    return ScorecardOut(
        deal_id=deal_id,
        lead_id=lead_id,
        framework=framework,
        framework_source=source,
        elements=elements,
        points=result.points,
        max_points=result.max_points,
        score_pct=result.score_pct,
        missing=result.missing,
        partial=result.partial,
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else None,
    )


def save(
    session: Session,
    tenant: str,
    actor: str,
    *,
    deal_id: int | None,
    lead_id: int | None,
    framework: str | None,
    elements: list[ElementIn],
) -> ScorecardOut:
    """Set the given elements (others keep their values); evidence is kept unless replaced."""
    deal, lead = _target(session, tenant, deal_id, lead_id)
    name, source = _resolve(session, tenant, deal, framework)
    allowed = qualification.FRAMEWORKS[name]
    if not elements:
        raise ValidationFailed("Give at least one element.", field="elements")
    seen: set[str] = set()
    for e in elements:
        if e.element not in allowed:
            raise ValidationFailed(
                f"{e.element!r} is not a {name} element.",
                field="elements",
                hint="Use one of: " + ", ".join(allowed) + ".",
            )
        if e.element in seen:
            raise ValidationFailed(f"{e.element!r} is given twice.", field="elements")
        seen.add(e.element)
    row = _row(session, tenant, deal_id, lead, name) or SalesScorecard(
        tenant=tenant, deal_id=deal_id, lead_id=lead, framework=name, elements="{}", updated_by=actor
    )
    stored: dict[str, dict[str, object]] = json.loads(row.elements)
    for e in elements:
        previous = stored.get(e.element, {})
        stored[e.element] = {"value": e.value, "evidence": e.evidence or previous.get("evidence")}
    row.elements = json.dumps(stored, sort_keys=True)
    row.updated_by = actor
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return _out(row, deal_id, lead, name, source)


def read(
    session: Session, tenant: str, *, deal_id: int | None, lead_id: int | None, framework: str | None
) -> ScorecardOut:
    deal, lead = _target(session, tenant, deal_id, lead_id)
    name, source = _resolve(session, tenant, deal, framework)
    return _out(_row(session, tenant, deal_id, lead, name), deal_id, lead, name, source)
