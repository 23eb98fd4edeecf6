"""Deterministic demo data for the Sales server (same seed → same rows).

`generate_sales_demo` builds a small company's two years of selling: reps, two pipelines,
accounts and contacts, deals that walk their pipeline stage by stage (every move, amount change
and close-date push recorded as the tools would record it), the activities around them and
quarterly quotas. Each area is its own module; they are written set-based (Core bulk inserts).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

TENANT = "default"
REPS = (
    "Avery Chen",
    "Blake Okafor",
    "Carmen Ruiz",
    "Dev Patel",
    "Elin Berg",
    "Farah Haddad",
    "Gus Novak",
    "Hana Sato",
)


@dataclass(frozen=True)
class SalesDemo:
    """What the generator wrote, for the demo's summary line and for tests."""

    reps: int
    pipelines: int
    companies: int
    contacts: int
    deals: int
    stage_moves: int
    deal_changes: int
    activities: int
    quotas: int
    leads: int
    changed_last_week: int


def generate_sales_demo(
    session: Session, *, seed: int, deals: int, as_of: date, leads: int = 300, last_week: bool = True
) -> SalesDemo:
    """Insert the Sales demo in the caller's transaction (no commit). `last_week` also stores a
    forecast snapshot dated a week ago and makes the week's changes after it."""
    from revops_sales.demo.accounts import generate_accounts
    from revops_sales.demo.activities import generate_activities
    from revops_sales.demo.deals import generate_deals
    from revops_sales.demo.last_week import generate_last_week
    from revops_sales.demo.leads import generate_leads
    from revops_sales.demo.pipelines import generate_pipelines
    from revops_sales.demo.quotas import generate_quotas

    rng = random.Random(seed)
    pipelines = generate_pipelines(session)
    accounts = generate_accounts(session, rng, companies=max(20, deals // 4))
    written = generate_deals(session, rng, pipelines, accounts, reps=REPS, deals=deals, as_of=as_of)
    activities = generate_activities(session, rng, written, accounts, as_of=as_of)
    quotas = generate_quotas(session, written, reps=REPS, as_of=as_of)
    lead_count = generate_leads(session, rng, leads=leads, as_of=as_of) if leads else 0
    changed = generate_last_week(session, rng, pipelines[0], as_of=as_of) if last_week else 0
    return SalesDemo(
        reps=len(REPS),
        pipelines=len(pipelines),
        companies=len(accounts.company_ids),
        contacts=sum(len(c) for c in accounts.contacts_by_company.values()),
        deals=len(written.deals),
        stage_moves=written.stage_moves,
        deal_changes=written.deal_changes,
        activities=activities,
        quotas=quotas,
        leads=lead_count,
        changed_last_week=changed,
    )
