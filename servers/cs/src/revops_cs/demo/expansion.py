"""Demo expansion data: 24 months of MRR per account with expansion, contraction and churn.

Deterministic. MRR starts at ARR/12 and moves month to month: occasional expansions (+10–35 %) and
contractions (−10–25 %); a churned account has no MRR from its churn month on. The last month's
MRR is written back as ARR so the client record and the MRR history agree. Some busy accounts
also hit plan limits (`plan_limit_hit` usage events), an upsell signal.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session

from revops_cs.models.clients import CsClient
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.models.usage import CsUsageEvent

MONTHS = 24


def _month_add(d: date, n: int) -> date:
    m = d.year * 12 + d.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


def generate_expansion(session: Session, rng: random.Random, clients: list[CsClient], as_of: date) -> None:
    """MRR history for every client (run after generate_retention, which sets churn dates)."""
    last = as_of.replace(day=1)
    first = _month_add(last, -(MONTHS - 1))
    for c in clients:
        start = (c.contract_start or c.created_at.date()).replace(day=1)
        churn = c.churned_at.date().replace(day=1) if c.churned_at else None
        mrr = max(1, round(c.arr_minor / 12 * rng.uniform(0.7, 0.95)))
        month = max(first, start)
        while month <= last and (churn is None or month < churn):
            session.add(CsMrrMonth(client_id=c.id or 0, month=month, mrr_minor=mrr, currency=c.currency))
            roll = rng.random()
            if roll < 0.07:
                mrr = round(mrr * rng.uniform(1.10, 1.35))
            elif roll < 0.10:
                mrr = max(1, round(mrr * rng.uniform(0.75, 0.90)))
            month = _month_add(month, 1)
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
