"""Demo expansion data: 24 months of MRR per account with expansion, contraction and churn.

Deterministic. MRR starts at ARR/12 and moves month to month: occasional expansions (+10–35 %) and
contractions (−10–25 %); a churned account has no MRR from its churn month on. Recorded as
`mrr_change` billing events (the monthly rows are rebuilt from them, as `record_billing` does); the
last month's MRR is written back as ARR so the client record and the MRR history agree. Some busy accounts
also hit plan limits (`plan_limit_hit` usage events), an upsell signal.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session

from revops_cs.models.clients import CsClient
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.usage import CsUsageEvent
from revops_cs.services.billing import rebuild_mrr

MONTHS = 24


def _month_add(d: date, n: int) -> date:
    m = d.year * 12 + d.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


def generate_expansion(session: Session, rng: random.Random, clients: list[CsClient], as_of: date) -> None:
    """MRR history for every client (run after generate_retention, which sets churn dates), recorded
    the way `record_billing` records it: `mrr_change` billing events, from which the monthly MRR
    rows are rebuilt — so the churn model's as-of ARR and NRR read the same history."""
    last = as_of.replace(day=1)
    first = _month_add(last, -(MONTHS - 1))
    for c in clients:
        start = (c.contract_start or c.created_at.date()).replace(day=1)
        churn = c.churned_at.date().replace(day=1) if c.churned_at else None
        mrr = max(1, round(c.arr_minor / 12 * rng.uniform(0.7, 0.95)))
        month = max(first, start)
        recorded: int | None = None
        while month <= last and (churn is None or month < churn):
            if mrr != recorded:
                _mrr_change(session, c, month, mrr)
                recorded = mrr
            roll = rng.random()
            if roll < 0.07:
                mrr = round(mrr * rng.uniform(1.10, 1.35))
            elif roll < 0.10:
                mrr = max(1, round(mrr * rng.uniform(0.75, 0.90)))
            month = _month_add(month, 1)
        if churn is not None and recorded is not None:
            _mrr_change(session, c, churn, 0)
        mrr = recorded if recorded is not None else mrr
        if churn is None:
            c.arr_minor = mrr * 12
            session.add(c)
            if rng.random() < 0.15:
                for _ in range(rng.randint(1, 4)):
                    day = as_of - timedelta(days=rng.randint(1, 80))
                    session.add(
                        CsUsageEvent(
                            client_id=c.id or 0,
                            user_ref="admin",
                            event="plan_limit_hit",
                            occurred_at=datetime.combine(day, time(10), tzinfo=UTC),
                            source="demo",
                        )
                    )
    session.flush()
    rebuild_mrr(session, {c.id or 0 for c in clients}, until=as_of)


def _mrr_change(session: Session, client: CsClient, month: date, mrr: int) -> None:
    session.add(
        CsBillingEvent(
            client_id=client.id or 0,
            kind="mrr_change",
            amount_minor=mrr,
            currency=client.currency,
            occurred_at=datetime.combine(month, time(0), tzinfo=UTC),
        )
    )
