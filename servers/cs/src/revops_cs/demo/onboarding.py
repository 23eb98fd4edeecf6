"""Demo onboarding data: two editable templates, plans with realistic completion, training, first value.

Deterministic. Every client that started in the last year gets a plan; milestones complete with a
delay around their due date, and later milestones are less likely to be done (a real funnel).
Training sessions teach the certification modules; attendance is recorded per contact. Each client
gets a `first_value` usage event a few weeks after contract start (recent starts may not have one).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, select

from revops_core.models import CoreContact
from revops_cs.models.clients import CsClient
from revops_cs.models.onboarding import (
    CsOnboardingMilestone,
    CsOnboardingPlan,
    CsOnboardingTemplate,
    CsTrainingAttendance,
    CsTrainingSession,
)
from revops_cs.models.usage import CsUsageEvent
from revops_cs.services import thresholds

TEMPLATES = {
    "standard": [
        ("Kick-off call", 3),
        ("Admin setup", 10),
        ("Data import", 21),
        ("First report", 30),
        ("Team trained", 45),
        ("Go-live review", 60),
    ],
    "enterprise": [
        ("Kick-off call", 5),
        ("SSO configured", 15),
        ("Data import", 30),
        ("Integrations live", 45),
        ("Admins certified", 60),
        ("Executive go-live review", 90),
    ],
}
MODULES = ["basics", "reporting", "admin"]


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def generate_onboarding(session: Session, rng: random.Random, clients: list[CsClient], as_of: date) -> None:
    ids = {}
    for name, steps in TEMPLATES.items():
        tpl = CsOnboardingTemplate(
            name=name,
            milestones=json.dumps([{"name": n, "offset_days": d, "description": None} for n, d in steps]),
        )
        session.add(tpl)
        session.flush()
        ids[name] = tpl.id
    thresholds.save(
        session, "onboarding", {"certification_modules": MODULES, "value_event": "first_value"}, "demo"
    )
    for c in clients:
        start = c.contract_start or c.created_at.date()
        end = c.churned_at.date() if c.churned_at else as_of
        ttv = start + timedelta(days=max(2, round(rng.lognormvariate(3.0, 0.5))))
        if ttv <= end:
            session.add(
                CsUsageEvent(
                    client_id=c.id or 0,
                    user_ref="champion",
                    event="first_value",
                    occurred_at=_at(ttv, 11),
                    source="demo",
                )
            )
        if (as_of - start).days > 365 or start > as_of:
            continue
        name = "enterprise" if c.tier == "enterprise" else "standard"
        plan = CsOnboardingPlan(
            client_id=c.id or 0, template_id=ids[name], name=name, start_date=start, owner=c.owner
        )
        session.add(plan)
        session.flush()
        stalled = False
        for seq, (step, offset) in enumerate(TEMPLATES[name], start=1):
            due = start + timedelta(days=offset)
            done = due + timedelta(days=rng.randint(-3, 12))
            stalled = stalled or rng.random() < 0.08 * seq
            complete = not stalled and done <= min(end, as_of)
            session.add(
                CsOnboardingMilestone(
                    plan_id=plan.id or 0,
                    seq=seq,
                    name=step,
                    due_date=due,
                    completed_on=done if complete else None,
                )
            )
        contacts = list(
            session.exec(
                select(CoreContact)
                .where(CoreContact.company_id == c.company_id)
                .order_by(col(CoreContact.id))
            )
        )
        for i, module in enumerate(MODULES):
            when = start + timedelta(days=7 + 14 * i)
            if when > end:
                break
            s = CsTrainingSession(
                client_id=c.id or 0,
                title=f"{module.title()} training",
                module=module,
                scheduled_at=_at(when, 15),
                trainer=c.owner,
            )
            session.add(s)
            session.flush()
            for contact in contacts:
                session.add(
                    CsTrainingAttendance(
                        session_id=s.id or 0,
                        contact_id=contact.id or 0,
                        attended=rng.random() < 0.75,
                        recorded_at=_at(when, 17),
                    )
                )
    session.flush()
