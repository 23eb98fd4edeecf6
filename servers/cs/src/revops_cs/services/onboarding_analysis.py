"""Onboarding analysis: milestone funnel across plans, and time from contract start to first value."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import NotFound
from revops_cs.analytics import onboarding as maths
from revops_cs.models.onboarding import CsOnboardingMilestone, CsOnboardingPlan
from revops_cs.output import Out
from revops_cs.services import thresholds
from revops_cs.services.churn_risk import select_clients
from revops_cs.services.onboarding import template
from revops_cs.services.signals import load_histories


class TtvClient(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    contract_start: date | None = Field(description="Contract start.")
    first_value_at: datetime | None = Field(description="First value event.")
    days: int | None = Field(description="Days to value.")


class TtvResult(Out):
    value_event: str = Field(description="Value event.")
    clients: list[TtvClient] = Field(description="Per client.")
    reached: int = Field(description="Reached value.")
    not_reached: int = Field(description="Not yet.")
    median_days: float | None = Field(description="Median days to value.")


class FunnelStepOut(Out):
    seq: int = Field(description="Milestone position.")
    name: str = Field(description="Milestone name.")
    plans: int = Field(description="Plans with this milestone.")
    completed: int = Field(description="Plans that completed it.")
    conversion_from_previous: float | None = Field(description="Conversion from previous step.")
    median_days_from_start: float | None = Field(description="Median days from start.")


class FunnelResult(Out):
    plans: int = Field(description="Plans included.")
    steps: list[FunnelStepOut] = Field(description="Steps.")


class OnboardingAnalysis(Out):
    funnel: FunnelResult | None = Field(description="view=funnel.")
    time_to_value: TtvResult | None = Field(description="view=time_to_value.")


def time_to_value(
    session: Session, tenant: str, client_id: int | None, value_event: str | None, day: date
) -> TtvResult:
    """Days from contract start to each client's first value event (a configured usage event)."""
    event = value_event or thresholds.load(session, thresholds.Onboarding).value_event
    rows: list[TtvClient] = []
    for h in load_histories(session, select_clients(session, tenant, client_id, None)).values():
        c = h.client
        first = h.first_event(event, since=c.contract_start)
        if first is not None and first.date() > day:
            first = None
        rows.append(
            TtvClient(
                client_id=c.id or 0,
                name=c.name,
                contract_start=c.contract_start,
                first_value_at=first,
                days=(first.date() - c.contract_start).days if first and c.contract_start else None,
            )
        )
    return TtvResult(
        value_event=event,
        clients=rows,
        reached=sum(r.first_value_at is not None for r in rows),
        not_reached=sum(r.first_value_at is None for r in rows),
        median_days=maths.median_or_none([float(r.days) for r in rows if r.days is not None]),
    )


def funnel(session: Session, template_name: str | None, day: date) -> FunnelResult:
    """Completions per milestone across plans started by `day`, step conversion, median days."""
    query = select(CsOnboardingPlan).where(CsOnboardingPlan.start_date <= day)
    if template_name is not None:
        query = query.where(CsOnboardingPlan.template_id == template(session, template_name).id)
    plans = list(session.exec(query.order_by(col(CsOnboardingPlan.id))))
    if not plans:
        raise NotFound("No onboarding plans to analyse.", field="template", hint="Create plans first.")
    by_plan: dict[int, list[tuple[int, str, date | None]]] = {p.id or 0: [] for p in plans}
    for m in session.exec(
        select(CsOnboardingMilestone).where(col(CsOnboardingMilestone.plan_id).in_(list(by_plan)))
    ):
        done = m.completed_on if m.completed_on and m.completed_on <= day else None
        by_plan[m.plan_id].append((m.seq, m.name, done))
    steps = maths.funnel([(p.start_date, by_plan[p.id or 0]) for p in plans])
    return FunnelResult(plans=len(plans), steps=[FunnelStepOut.model_validate(s) for s in steps])
