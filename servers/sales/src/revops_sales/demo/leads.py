"""Demo leads: an ideal customer profile, 300 leads of mixed fit with recent engagement, scored.

Scores come from `services.lead_scoring.recompute` over the stored events, as `score_leads` would
compute them, so "the best leads to call and why" has real reasons behind it.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session, col

from revops_sales.demo import REPS, TENANT
from revops_sales.demo.accounts import FIRST, LAST, SYLLABLES
from revops_sales.models.leads import SalesLead, SalesLeadEvent
from revops_sales.services import icp, lead_scoring

INDUSTRIES = ("Software", "Finance", "Retail", "Education", "Logistics")
TITLES = ("VP Sales", "Head of Revenue", "IT Director", "Office Manager", "Analyst", "CFO", "Intern")
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN")
EVENTS = (("page_view", 2.0), ("email_click", 5.0), ("webinar_attended", 15.0), ("demo_request", 40.0))
SOURCES = ("inbound", "webinar", "paid_search", "referral", "outbound")


def _profile(session: Session) -> None:
    icp.save(
        session,
        TENANT,
        [
            icp.CriterionIn(field="industry", weight=3, values=["Software", "Finance"]),
            icp.CriterionIn(field="employees", weight=2, min=50, max=1000),
            icp.CriterionIn(field="title", weight=2, keywords=["VP", "Head", "Director", "CFO"]),
            icp.CriterionIn(field="country", weight=1, values=["US", "GB", "DE"]),
        ],
        None,
    )


def generate_leads(session: Session, rng: random.Random, *, leads: int, as_of: date) -> int:
    _profile(session)
    now = datetime.combine(as_of, time(8), tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for n in range(leads):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = "".join(rng.choice(SYLLABLES) for _ in range(2)).capitalize()
        created = now - timedelta(days=rng.uniform(1, 90))
        rows.append(
            {
                "tenant": TENANT,
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}.{n}@{company.lower()}-leads.example",
                "company_name": f"{company} {n}",
                "company_domain": f"{company.lower()}{n}.example",
                "title": rng.choice(TITLES) if rng.random() > 0.1 else None,
                "industry": rng.choice(INDUSTRIES) if rng.random() > 0.15 else None,
                "country": rng.choice(COUNTRIES),
                "employees": rng.choice((8, 30, 60, 120, 400, 2500)) if rng.random() > 0.2 else None,
                "source": rng.choice(SOURCES),
                "owner": rng.choice(REPS) if rng.random() < 0.5 else None,
                "status": "new",
                "score_detail": "{}",
                "created_at": created,
                "updated_at": created,
            }
        )
    session.execute(insert(SalesLead), rows)
    ids = list(session.execute(select(col(SalesLead.id)).where(col(SalesLead.tenant) == TENANT)).scalars())
    events: list[dict[str, Any]] = []
    for lead_id in ids:
        for _ in range(rng.choice((0, 0, 1, 2, 4, 8))):
            kind, points = rng.choice(EVENTS)
            at = now - timedelta(days=rng.uniform(0, 40))
            events.append(
                {"tenant": TENANT, "lead_id": lead_id, "kind": kind, "points": points}
                | {"occurred_at": at, "created_at": at}
            )
    if events:
        session.execute(insert(SalesLeadEvent), events)
    lead_scoring.recompute(session, TENANT, as_of)
    return len(ids)
