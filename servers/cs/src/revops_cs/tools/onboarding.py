"""CS toolset `onboarding`: template-based plans, progress, training, certification, time to value."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlmodel import col, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.models import CoreContact
from revops_core.server import Call
from revops_cs.analytics import onboarding as maths
from revops_cs.common import AsOf, get_client, resolve_as_of
from revops_cs.models.onboarding import (
    CsOnboardingMilestone,
    CsOnboardingPlan,
    CsOnboardingTemplate,
    CsTrainingAttendance,
    CsTrainingSession,
)
from revops_cs.output import Out, arg
from revops_cs.services import thresholds
from revops_cs.services.signals import live_clients, load_histories
from revops_cs.toolsets import onboarding as toolset


class MilestoneSpec(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Milestone name.")
    offset_days: int = Field(ge=0, le=730, description="Days after start.")
    description: str | None = Field(default=None, max_length=1000, description="What done means.")


class MilestoneOut(Out):
    seq: int = Field(description="Position (from 1).")
    name: str = Field(description="Name.")
    due_date: date = Field(description="Due date.")
    completed_on: date | None = Field(description="Completion date.")
    status: str = Field(description="done/overdue/at_risk/on_track.")


class PlanOut(Out):
    plan_id: int | None = Field(description="Plan id.")
    template_id: int | None = Field(description="Template id.")
    client_id: int | None = Field(description="Client id.")
    start_date: date | None = Field(description="Plan start.")
    milestones: list[MilestoneOut] = Field(description="Milestones.")
    counts: dict[str, int] = Field(description="Milestones per status.")
    percent_done: float | None = Field(description="Done / all milestones x 100.")


def _template(call: Call, name: str) -> CsOnboardingTemplate:
    row = call.db.exec(select(CsOnboardingTemplate).where(CsOnboardingTemplate.name == name)).first()
    if row is None:
        raise NotFound(
            f"No onboarding template named '{name}'.",
            field="template",
            hint="Create it with create_onboarding_plan action=save_template.",
        )
    return row


def _plan_out(plan: CsOnboardingPlan, ms: list[CsOnboardingMilestone], day: date, risk_days: int) -> PlanOut:
    rows = [
        MilestoneOut(
            seq=m.seq,
            name=m.name,
            due_date=m.due_date,
            completed_on=m.completed_on,
            status=maths.milestone_status(m.due_date, m.completed_on, day, risk_days),
        )
        for m in sorted(ms, key=lambda m: m.seq)
    ]
    counts = {s: sum(r.status == s for r in rows) for s in ("done", "overdue", "at_risk", "on_track")}
    return PlanOut(
        plan_id=plan.id,
        template_id=plan.template_id,
        client_id=plan.client_id,
        start_date=plan.start_date,
        milestones=rows,
        counts=counts,
        percent_done=round(100 * counts["done"] / len(rows), 1) if rows else None,
    )


@toolset.tool(tier="write", idempotent=False)
def create_onboarding_plan(
    call: Call,
    template: Annotated[str, arg("Template name.", min_length=1, max_length=200)],
    action: Annotated[Literal["create_plan", "save_template"], arg("create_plan or save_template.")] = (
        "create_plan"
    ),
    client_id: Annotated[int | None, arg("Client (create_plan).", ge=1)] = None,
    start_date: Annotated[date | None, arg("Start (default contract start).")] = None,
    milestones: Annotated[list[MilestoneSpec] | None, arg("Milestones in order (save_template).")] = None,
) -> PlanOut:
    """Create a client's onboarding plan from a stored template (due = start + offset), or save a template."""
    if action == "save_template":
        if not milestones:
            raise ValidationFailed(
                "save_template needs milestones.", field="milestones", hint="List them in order."
            )
        body = json.dumps([m.model_dump() for m in milestones])
        row = call.db.exec(select(CsOnboardingTemplate).where(CsOnboardingTemplate.name == template)).first()
        row = row or CsOnboardingTemplate(name=template, milestones=body)
        row.milestones, row.updated_at = body, datetime.now(UTC)
        call.db.add(row)
        call.db.flush()
        call.target = f"cs_onboarding_template:{row.id}"
        return PlanOut(
            plan_id=None,
            template_id=row.id,
            client_id=None,
            start_date=None,
            milestones=[],
            counts={},
            percent_done=None,
        )
    if client_id is None:
        raise ValidationFailed("create_plan needs client_id.", field="client_id", hint="Give the client id.")
    client = get_client(call.db, client_id)
    tpl = _template(call, template)
    start = start_date or client.contract_start or datetime.now(UTC).date()
    plan = CsOnboardingPlan(
        client_id=client.id or 0, template_id=tpl.id, name=tpl.name, start_date=start, owner=client.owner
    )
    call.db.add(plan)
    call.db.flush()
    ms = [
        CsOnboardingMilestone(
            plan_id=plan.id or 0,
            seq=i,
            name=spec["name"],
            description=spec.get("description"),
            due_date=start + timedelta(days=int(spec["offset_days"])),
        )
        for i, spec in enumerate(json.loads(tpl.milestones), start=1)
    ]
    call.db.add_all(ms)
    call.db.flush()
    call.target = f"cs_onboarding_plan:{plan.id}"
    cfg = thresholds.load(call.db, thresholds.Onboarding)
    return _plan_out(plan, ms, datetime.now(UTC).date(), cfg.at_risk_days)


@toolset.tool(tier="write", idempotent=True)
def track_onboarding_progress(
    call: Call,
    plan_id: Annotated[int, arg("Onboarding plan id.", ge=1)],
    complete_seq: Annotated[int | None, arg("Mark this milestone (seq) done.", ge=1)] = None,
    completed_on: Annotated[date | None, arg("Completion date (default today).")] = None,
    at_risk_days: Annotated[int | None, arg("At-risk window, days.", ge=0, le=365)] = None,
    as_of: AsOf = None,
) -> PlanOut:
    """Plan progress: done/overdue/at-risk milestones (due within N days, not done); complete one."""
    plan = call.db.get(CsOnboardingPlan, plan_id)
    if plan is None:
        raise NotFound(f"No onboarding plan {plan_id}.", field="plan_id", hint="Create one first.")
    ms = list(call.db.exec(select(CsOnboardingMilestone).where(CsOnboardingMilestone.plan_id == plan_id)))
    day = resolve_as_of(as_of)
    if complete_seq is None:
        call.no_change()
    else:
        target = next((m for m in ms if m.seq == complete_seq), None)
        if target is None:
            raise NotFound(
                f"Plan {plan_id} has no milestone {complete_seq}.",
                field="complete_seq",
                hint=f"Use 1–{len(ms)}.",
            )
        when = completed_on or datetime.now(UTC).date()
        if when < plan.start_date:
            raise ValidationFailed(
                "completed_on is before the plan start.",
                field="completed_on",
                hint=f"Use {plan.start_date.isoformat()} or later.",
            )
        resolve_as_of(when)
        target.completed_on = when
        call.db.add(target)
        call.target = f"cs_onboarding_milestone:{target.id}"
    risk = (
        at_risk_days
        if at_risk_days is not None
        else thresholds.load(call.db, thresholds.Onboarding).at_risk_days
    )
    return _plan_out(plan, ms, day, risk)


class Attendee(BaseModel):
    contact_id: int = Field(ge=1, description="Contact id.")
    attended: bool = Field(description="Did they attend?")


class SessionOut(Out):
    session_id: int = Field(description="Session id.")
    title: str = Field(description="Title.")
    module: str | None = Field(description="Certification module taught.")
    scheduled_at: datetime = Field(description="Start (UTC).")
    invited: int = Field(description="Contacts recorded.")
    attended: int = Field(description="Of those, attended.")


class Certification(Out):
    contact_id: int = Field(description="Contact id.")
    email: str = Field(description="Contact email.")
    completed: list[str] = Field(description="Required modules attended.")
    required: int = Field(description="Required modules (config).")
    percent: float | None = Field(description="Completed / required x 100.")


class TrainingResult(Out):
    client_id: int = Field(description="Client id.")
    sessions: list[SessionOut] = Field(description="Sessions.")
    attendance_rate: float | None = Field(description="Attended / invited.")
    certification: list[Certification] = Field(description="Per contact (report).")


@toolset.tool(tier="write", idempotent=False)
def manage_training(
    call: Call,
    action: Annotated[Literal["schedule", "attendance", "report"], arg("What to do.")],
    client_id: Annotated[int, arg("Client id.", ge=1)],
    title: Annotated[str | None, arg("Session title (schedule).", max_length=200)] = None,
    module: Annotated[str | None, arg("Module taught.", max_length=100)] = None,
    scheduled_at: Annotated[datetime | None, arg("Start time with zone (schedule).")] = None,
    session_id: Annotated[int | None, arg("Session (attendance).", ge=1)] = None,
    attendees: Annotated[list[Attendee] | None, arg("Attendance rows (attendance).", max_length=500)] = None,
) -> TrainingResult:
    """Training: schedule sessions, record attendance; report attendance rate and certification."""
    client = get_client(call.db, client_id)
    if action == "schedule":
        if not title or scheduled_at is None or scheduled_at.tzinfo is None:
            raise ValidationFailed(
                "schedule needs title and scheduled_at with a timezone.",
                field="scheduled_at",
                hint="e.g. 2026-03-01T15:00:00Z",
            )
        s = CsTrainingSession(client_id=client_id, title=title, module=module, scheduled_at=scheduled_at)
        call.db.add(s)
        call.db.flush()
        call.target = f"cs_training_session:{s.id}"
        return TrainingResult(
            client_id=client_id, sessions=[_session_out(call, s)], attendance_rate=None, certification=[]
        )
    if action == "attendance":
        s = call.db.get(CsTrainingSession, session_id) if session_id else None
        if s is None or s.client_id != client_id:
            raise NotFound(
                f"No session {session_id} for client {client_id}.",
                field="session_id",
                hint="Use action=report to list sessions.",
            )
        if not attendees:
            raise ValidationFailed("attendance needs attendees.", field="attendees", hint="List contacts.")
        for a in attendees:
            contact = call.db.get(CoreContact, a.contact_id)
            if contact is None or contact.company_id != client.company_id:
                raise NotFound(
                    f"Contact {a.contact_id} is not a contact of client {client_id}.",
                    field="attendees",
                    hint="Use the client's contact ids.",
                )
            row = call.db.exec(
                select(CsTrainingAttendance).where(
                    CsTrainingAttendance.session_id == s.id, CsTrainingAttendance.contact_id == a.contact_id
                )
            ).first()
            row = row or CsTrainingAttendance(
                session_id=s.id or 0, contact_id=a.contact_id, attended=a.attended
            )
            row.attended = a.attended
            call.db.add(row)
        try:
            call.db.flush()
        except DbIntegrityError as exc:
            raise Conflict("Attendance was recorded concurrently.", hint="Retry.") from exc
        call.target = f"cs_training_session:{s.id}"
        return TrainingResult(
            client_id=client_id, sessions=[_session_out(call, s)], attendance_rate=None, certification=[]
        )
    call.no_change()
    sessions = list(
        call.db.exec(
            select(CsTrainingSession)
            .where(CsTrainingSession.client_id == client_id)
            .order_by(col(CsTrainingSession.scheduled_at))
        )
    )
    outs = [_session_out(call, s) for s in sessions]
    invited = sum(o.invited for o in outs)
    required = thresholds.load(call.db, thresholds.Onboarding).certification_modules
    return TrainingResult(
        client_id=client_id,
        sessions=outs,
        attendance_rate=round(sum(o.attended for o in outs) / invited, 4) if invited else None,
        certification=_certification(call, client.company_id, sessions, required),
    )


def _session_out(call: Call, s: CsTrainingSession) -> SessionOut:
    rows = list(call.db.exec(select(CsTrainingAttendance).where(CsTrainingAttendance.session_id == s.id)))
    return SessionOut(
        session_id=s.id or 0,
        title=s.title,
        module=s.module,
        scheduled_at=s.scheduled_at,
        invited=len(rows),
        attended=sum(r.attended for r in rows),
    )


def _certification(
    call: Call, company_id: int, sessions: list[CsTrainingSession], required: list[str]
) -> list[Certification]:
    module_of = {s.id: s.module for s in sessions if s.module}
    done: dict[int, set[str]] = {}
    if module_of:
        for a in call.db.exec(
            select(CsTrainingAttendance).where(
                col(CsTrainingAttendance.session_id).in_(list(module_of)), CsTrainingAttendance.attended
            )
        ):
            done.setdefault(a.contact_id, set()).add(module_of[a.session_id] or "")
    contacts = call.db.exec(
        select(CoreContact)
        .where(CoreContact.company_id == company_id, col(CoreContact.deleted_at).is_(None))
        .order_by(col(CoreContact.id))
    )
    return [
        Certification(
            contact_id=c.id or 0,
            email=c.email,
            completed=sorted(done.get(c.id or 0, set()) & set(required)),
            required=len(required),
            percent=round(100 * len(done.get(c.id or 0, set()) & set(required)) / len(required), 1)
            if required
            else None,
        )
        for c in contacts
    ]


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


def _time_to_value(call: Call, client_id: int | None, value_event: str | None, day: date) -> TtvResult:
    """Days from contract start to each client's first value event (a configured usage event)."""
    event = value_event or thresholds.load(call.db, thresholds.Onboarding).value_event
    clients = [get_client(call.db, client_id)] if client_id else live_clients(call.db, call.tenant)
    rows: list[TtvClient] = []
    for h in load_histories(call.db, clients).values():
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
    days = [float(r.days) for r in rows if r.days is not None]
    return TtvResult(
        value_event=event,
        clients=rows,
        reached=sum(r.first_value_at is not None for r in rows),
        not_reached=sum(r.first_value_at is None for r in rows),
        median_days=maths.median_or_none(days),
    )


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


def _funnel(call: Call, template: str | None, day: date) -> FunnelResult:
    """Completions per milestone across plans, step conversion, median days from start."""
    q = select(CsOnboardingPlan).where(CsOnboardingPlan.start_date <= day)
    if template is not None:
        q = q.where(CsOnboardingPlan.template_id == _template(call, template).id)
    plans = list(call.db.exec(q.order_by(col(CsOnboardingPlan.id))))
    if not plans:
        raise NotFound("No onboarding plans to analyse.", field="template", hint="Create plans first.")
    ms = call.db.exec(
        select(CsOnboardingMilestone).where(col(CsOnboardingMilestone.plan_id).in_([p.id for p in plans]))
    )
    by_plan: dict[int, list[tuple[int, str, date | None]]] = {p.id or 0: [] for p in plans}
    for m in ms:
        by_plan[m.plan_id].append(
            (m.seq, m.name, m.completed_on if m.completed_on and m.completed_on <= day else None)
        )
    steps = maths.funnel([(p.start_date, by_plan[p.id or 0]) for p in plans])
    return FunnelResult(plans=len(plans), steps=[FunnelStepOut(**s.__dict__) for s in steps])


class OnboardingAnalysis(Out):
    funnel: FunnelResult | None = Field(description="view=funnel.")
    time_to_value: TtvResult | None = Field(description="view=time_to_value.")


@toolset.tool(tier="read")
def analyze_onboarding(
    call: Call,
    view: Annotated[Literal["funnel", "time_to_value"], arg("funnel or time_to_value.")],
    template: Annotated[str | None, arg("funnel: only this template.", max_length=200)] = None,
    client_id: Annotated[int | None, arg("time_to_value: one client.", ge=1)] = None,
    value_event: Annotated[str | None, arg("time_to_value: event (default config).", max_length=100)] = None,
    as_of: AsOf = None,
) -> OnboardingAnalysis:
    """Onboarding funnel (milestone conversion, median days) or time to first value event."""
    day = resolve_as_of(as_of)
    if view == "funnel":
        return OnboardingAnalysis(funnel=_funnel(call, template, day), time_to_value=None)
    return OnboardingAnalysis(funnel=None, time_to_value=_time_to_value(call, client_id, value_event, day))
