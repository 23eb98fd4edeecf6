"""Demo retention data: extra churned accounts (with stage changes), billing history, escalations.

Deterministic (everything from the `random.Random` passed in). Some live accounts are churned at a
date in the past 24 months — usage after that date is removed and the decline before it is
thinned — so `train_churn_model` has real outcomes to learn from. Monthly payments succeed, with a
few failures (more often in the months before a churn). Run before `generate_expansion`.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, delete, select

from revops_cs.models.clients import CsClient, CsStageChange
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.usage import CsUsageEvent

CHURN_SHARE = 0.22
ESCALATIONS = (
    ("urgent", "Production outage during month-end close"),
    ("high", "Data sync missing records"),
    ("normal", "Renewal pricing dispute"),
    ("low", "Request for an executive business review"),
)
RESOLUTION_MINUTES = {"urgent": 120, "high": 480, "normal": 1440, "low": 4320}


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def generate_retention(session: Session, rng: random.Random, clients: list[CsClient], as_of: date) -> None:
    """Churn some accounts in the past, then write payments and escalations for every account."""
    for c in clients:
        start = c.contract_start or c.created_at.date()
        if c.churned_at is None and (as_of - start).days > 200 and rng.random() < CHURN_SHARE:
            _churn(session, rng, c, start, as_of)
    session.flush()
    for c in clients:
        _billing(session, rng, c, as_of)
        if rng.random() < 0.3:
            severity, title = rng.choice(ESCALATIONS)
            opened = _at(as_of - timedelta(days=rng.randint(0, 120)), rng.randint(8, 17))
            end = c.churned_at or _at(as_of, 23)
            if opened >= end:
                continue
            due = opened + timedelta(minutes=RESOLUTION_MINUTES[severity])
            late = rng.random() < 0.3
            resolved = due + timedelta(minutes=rng.randint(10, 600)) if late else opened + (due - opened) / 2
            done = resolved < end
            session.add(
                CsEscalation(
                    client_id=c.id or 0,
                    severity=severity,
                    title=title,
                    owner=c.owner,
                    status="resolved" if done else "open",
                    opened_at=opened,
                    due_at=due,
                    resolved_at=resolved if done else None,
                    resolution="Fixed and confirmed with the customer." if done else None,
                )
            )
    session.flush()


def _churn(session: Session, rng: random.Random, c: CsClient, start: date, as_of: date) -> None:
    earliest = max(start + timedelta(days=150), as_of - timedelta(days=720))
    latest = as_of - timedelta(days=15)
    if earliest >= latest:
        return
    day = earliest + timedelta(days=rng.randint(0, (latest - earliest).days))
    churned_at = _at(day, 12)
    session.exec(
        delete(CsUsageEvent).where(
            col(CsUsageEvent.client_id) == c.id, col(CsUsageEvent.occurred_at) >= churned_at
        )
    )
    # Usage fades over the 60 days before churn: drop a growing share of those events. Ordered, so
    # each random draw meets the same event on every backend (same seed, same rows).
    fading = session.exec(
        select(CsUsageEvent)
        .where(
            CsUsageEvent.client_id == c.id,
            col(CsUsageEvent.occurred_at) >= churned_at - timedelta(days=60),
        )
        .order_by(col(CsUsageEvent.id))
    )
    for e in fading:
        closeness = 1 - (churned_at - e.occurred_at).days / 60
        if rng.random() < 0.9 * closeness:
            session.delete(e)
    session.add(
        CsStageChange(
            client_id=c.id or 0,
            from_stage=c.stage,
            to_stage="churned",
            reason="did not renew",
            actor="demo",
            at=churned_at,
        )
    )
    c.stage, c.churned_at, c.stage_changed_at = "churned", churned_at, churned_at
    session.add(c)


def _billing(session: Session, rng: random.Random, c: CsClient, as_of: date) -> None:
    start = c.contract_start or c.created_at.date()
    end = c.churned_at.date() if c.churned_at else as_of
    day = max(start, as_of - timedelta(days=730)).replace(day=1)
    monthly = round(c.arr_minor / 12)
    while day <= end:
        days_left = (end - day).days if c.churned_at else 10_000
        p_fail = 0.25 if days_left < 120 else 0.03
        if day >= start:
            kind = "payment_failed" if rng.random() < p_fail else "payment_succeeded"
            session.add(
                CsBillingEvent(
                    client_id=c.id or 0,
                    kind=kind,
                    amount_minor=monthly,
                    currency=c.currency,
                    occurred_at=_at(day + timedelta(days=rng.randint(0, 4)), 6),
                )
            )
        day = (day + timedelta(days=32)).replace(day=1)
