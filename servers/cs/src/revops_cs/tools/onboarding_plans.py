"""Onboarding tools: milestone templates, per-client plans, progress and completion, analysis."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import AsOf, Count, Id, Text, resolve_as_of
from revops_core.server import Call
from revops_cs.params import ClientId, OptClient
from revops_cs.services import onboarding, onboarding_analysis
from revops_cs.services.clients import get_client
from revops_cs.toolsets import onboarding as toolset

TemplateName = Annotated[str, Text("Template name.")]
PlanId = Annotated[int, Id("onboarding_plan", see="create_onboarding_plan")]


@toolset.tool(
    tier="write",
    idempotent=True,
    title="Save onboarding template",
    replaces="create_onboarding_plan action=save_template",
)
def save_onboarding_template(
    call: Call,
    template: TemplateName,
    milestones: Annotated[
        list[onboarding.MilestoneSpec],
        Field(min_length=1, max_length=100, description="Milestones in order."),
    ],
) -> onboarding.TemplateOut:
    """Create a milestone template, or replace the milestones of an existing one."""
    saved = onboarding.save_template(call.db, template, milestones)
    call.target = f"cs_onboarding_template:{saved.template_id}"
    return saved


@toolset.tool(tier="write", idempotent=False, title="Create onboarding plan")
def create_onboarding_plan(
    call: Call,
    template: TemplateName,
    client_id: ClientId,
    start_date: Annotated[
        date | None, Field(description="Start (default contract start; needed without one).")
    ] = None,
) -> onboarding.PlanOut:
    """A client's plan from a template: each milestone due start + its offset."""
    plan = onboarding.create_plan(call.db, get_client(call.db, client_id), template, start_date)
    call.target = f"cs_onboarding_plan:{plan.plan_id}"
    return plan


@toolset.tool(tier="read", title="Track onboarding progress")
def track_onboarding_progress(
    call: Call,
    plan_id: PlanId,
    at_risk_days: Annotated[int | None, Count("At-risk window in days (default config).", le=365)] = None,
    as_of: AsOf = None,
) -> onboarding.PlanOut:
    """Plan progress: done, overdue, at-risk (due within N days) and on-track milestones."""
    return onboarding.progress(call.db, plan_id, resolve_as_of(as_of), at_risk_days)


@toolset.tool(
    tier="write",
    idempotent=True,
    title="Complete a milestone",
    target="cs_onboarding_plan:{plan_id}",
    replaces="track_onboarding_progress complete_seq=…",
)
def complete_onboarding_milestone(
    call: Call,
    plan_id: PlanId,
    seq: Annotated[int, Count("Milestone position (from 1).", ge=1)],
    completed_on: Annotated[date | None, Field(description="Completion date (default today).")] = None,
) -> onboarding.PlanOut:
    """Mark one milestone of a plan done; returns the plan's progress today."""
    return onboarding.complete(call.db, plan_id, seq, completed_on)


@toolset.tool(tier="read", title="Analyse onboarding")
def analyze_onboarding(
    call: Call,
    view: Annotated[Literal["funnel", "time_to_value"], Field(description="funnel or time_to_value.")],
    template: Annotated[str | None, Text("funnel: only this template.")] = None,
    client_id: OptClient = None,
    value_event: Annotated[str | None, Text("time_to_value: event (default config).", max_length=100)] = None,
    as_of: AsOf = None,
) -> onboarding_analysis.OnboardingAnalysis:
    """Onboarding funnel (milestone conversion, median days) or time to the first value event."""
    day = resolve_as_of(as_of)
    if view == "funnel":
        return onboarding_analysis.OnboardingAnalysis(
            funnel=onboarding_analysis.funnel(call.db, template, day), time_to_value=None
        )
    ttv = onboarding_analysis.time_to_value(call.db, call.tenant, client_id, value_event, day)
    return onboarding_analysis.OnboardingAnalysis(funnel=None, time_to_value=ttv)
