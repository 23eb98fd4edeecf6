"""Onboarding plans: reusable milestone templates, per-client plans (due = start + offset), progress."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.params import MultiLine, SingleLine, WholeNumber, resolve_as_of
from revops_cs.analytics import onboarding as maths
from revops_cs.models.clients import CsClient
from revops_cs.models.onboarding import CsOnboardingMilestone, CsOnboardingPlan, CsOnboardingTemplate
from revops_cs.output import LeanIn, Out
from revops_cs.services import thresholds

STATUSES = ("done", "overdue", "at_risk", "on_track")


class MilestoneSpec(LeanIn):
    name: Annotated[str, SingleLine] = Field(min_length=1, max_length=200, description="Milestone name.")
    offset_days: Annotated[int, WholeNumber] = Field(ge=0, le=730, description="Days after start.")
    description: Annotated[str | None, MultiLine] = Field(
        default=None, max_length=1000, description="What done means."
    )


class TemplateOut(Out):
    template_id: int = Field(description="Template id.")
    name: str = Field(description="Template name.")
    milestones: list[MilestoneSpec] = Field(description="Milestones in order.")


class MilestoneOut(Out):
    seq: int = Field(description="Position (from 1).")
    name: str = Field(description="Name.")
    due_date: date = Field(description="Due date.")
    completed_on: date | None = Field(description="Completion date.")
    status: str = Field(description="done/overdue/at_risk/on_track.")


class PlanOut(Out):
    plan_id: int = Field(description="Plan id.")
    template_id: int | None = Field(description="Template id.")
    client_id: int = Field(description="Client id.")
    start_date: date = Field(description="Plan start.")
    milestones: list[MilestoneOut] = Field(description="Milestones.")
    counts: dict[str, int] = Field(description="Milestones per status.")
    percent_done: float | None = Field(description="Done / all milestones x 100.")


def template(session: Session, name: str) -> CsOnboardingTemplate:
    row = session.exec(select(CsOnboardingTemplate).where(CsOnboardingTemplate.name == name)).first()
    if row is None:
        raise NotFound(
            f"No onboarding template named '{name}'.",
            field="template",
            hint="Create it with save_onboarding_template.",
        )
    return row


def save_template(session: Session, name: str, milestones: list[MilestoneSpec]) -> TemplateOut:
    """Create the template, or replace the milestones of the one with this name (plans keep theirs)."""
    body = json.dumps([m.model_dump() for m in milestones])
    row = session.exec(select(CsOnboardingTemplate).where(CsOnboardingTemplate.name == name)).first()
    row = row or CsOnboardingTemplate(name=name, milestones=body)
    row.milestones, row.updated_at = body, datetime.now(UTC)
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # the same name saved concurrently
        raise Conflict(f"Template '{name}' was saved concurrently.", hint="Retry.") from exc
    return TemplateOut(template_id=row.id or 0, name=row.name, milestones=milestones)


def _plan_out(
    plan: CsOnboardingPlan, milestones: list[CsOnboardingMilestone], day: date, risk_days: int
) -> PlanOut:
    rows = [
        MilestoneOut(
            seq=m.seq,
            name=m.name,
            due_date=m.due_date,
            completed_on=m.completed_on,
            status=maths.milestone_status(m.due_date, m.completed_on, day, risk_days),
        )
        for m in sorted(milestones, key=lambda m: m.seq)
    ]
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    return PlanOut(
        plan_id=plan.id or 0,
        template_id=plan.template_id,
        client_id=plan.client_id,
        start_date=plan.start_date,
        milestones=rows,
        counts=counts,
        percent_done=round(100 * counts["done"] / len(rows), 1) if rows else None,
    )


def create_plan(session: Session, client: CsClient, template_name: str, start_date: date | None) -> PlanOut:
    """A plan for the client from the template, starting on `start_date` or else the contract start.

    With neither the plan is refused: anchoring it on today would date every milestone from a day
    nobody chose."""
    start = start_date or client.contract_start
    if start is None:
        raise ValidationFailed(
            f"Client {client.id} has no contract start recorded, so the plan has no start date.",
            field="start_date",
            hint="Pass start_date, or record the contract start with update_client_info.",
        )
    tpl = template(session, template_name)
    plan = CsOnboardingPlan(
        client_id=client.id or 0, template_id=tpl.id, name=tpl.name, start_date=start, owner=client.owner
    )
    session.add(plan)
    session.flush()
    specs = [MilestoneSpec.model_validate(spec) for spec in json.loads(tpl.milestones)]
    milestones = [
        CsOnboardingMilestone(
            plan_id=plan.id or 0,
            seq=seq,
            name=spec.name,
            description=spec.description,
            due_date=start + timedelta(days=spec.offset_days),
        )
        for seq, spec in enumerate(specs, start=1)
    ]
    session.add_all(milestones)
    session.flush()
    return _plan_out(plan, milestones, datetime.now(UTC).date(), _risk_days(session, None))


def _plan(session: Session, plan_id: int) -> tuple[CsOnboardingPlan, list[CsOnboardingMilestone]]:
    plan = session.get(CsOnboardingPlan, plan_id)
    if plan is None:
        raise NotFound(f"No onboarding plan {plan_id}.", field="plan_id", hint="Create one first.")
    query = select(CsOnboardingMilestone).where(CsOnboardingMilestone.plan_id == plan_id)
    return plan, list(session.exec(query))


def _risk_days(session: Session, at_risk_days: int | None) -> int:
    if at_risk_days is not None:
        return at_risk_days
    return thresholds.load(session, thresholds.Onboarding).at_risk_days


def progress(session: Session, plan_id: int, day: date, at_risk_days: int | None) -> PlanOut:
    """Each milestone's status on `day`: done, overdue, at risk (due within N days) or on track."""
    plan, milestones = _plan(session, plan_id)
    return _plan_out(plan, milestones, day, _risk_days(session, at_risk_days))


def complete(session: Session, plan_id: int, seq: int, completed_on: date | None) -> PlanOut:
    """Mark milestone `seq` done on `completed_on` (default today); the plan's progress today."""
    plan, milestones = _plan(session, plan_id)
    milestone = next((m for m in milestones if m.seq == seq), None)
    if milestone is None:
        raise NotFound(
            f"Plan {plan_id} has no milestone {seq}.", field="seq", hint=f"Use 1–{len(milestones)}."
        )
    when = resolve_as_of(completed_on, field="completed_on")
    if when < plan.start_date:
        raise ValidationFailed(
            "completed_on is before the plan start.",
            field="completed_on",
            hint=f"Use {plan.start_date.isoformat()} or later.",
        )
    milestone.completed_on = when
    session.add(milestone)
    return _plan_out(plan, milestones, datetime.now(UTC).date(), _risk_days(session, None))
