"""Demo activities: the calls, e-mails, meetings and notes around each deal, while it was open.

Written to `sales_activity` (the one log every touch goes through), so activity metrics, the
leaderboard and "no activity for N days" have real rows behind them. Some open deals go quiet.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from revops_sales.demo import TENANT
from revops_sales.demo.accounts import DemoAccounts
from revops_sales.demo.deals import DemoDeals
from revops_sales.models.activities import SalesActivity

KINDS = (("call", 0.3), ("email_sent", 0.3), ("email_received", 0.15), ("meeting", 0.15), ("note", 0.1))
SUBJECTS = {
    "call": "Discovery call",
    "email_sent": "Follow-up",
    "email_received": "Re: Follow-up",
    "meeting": "Demo meeting",
    "note": "Call notes",
}


def _kind(rng: random.Random) -> str:
    pick = rng.random()
    for kind, share in KINDS:
        if pick < share:
            return kind
        pick -= share
    return KINDS[-1][0]


def generate_activities(
    session: Session, rng: random.Random, deals: DemoDeals, accounts: DemoAccounts, *, as_of: date
) -> int:
    now = datetime.combine(as_of, time(8), tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for deal in deals.deals:
        end = deal.closed_at or now
        if deal.open and rng.random() < 0.25:  # gone quiet: nothing logged in the last weeks
            end = max(deal.created_at, end - (end - deal.created_at) * 0.6)
        contacts = accounts.contacts_by_company.get(deal.company_id, [None])
        for _ in range(rng.randint(2, 9)):
            kind = _kind(rng)
            rows.append(
                {
                    "tenant": TENANT,
                    "kind": kind,
                    "owner": deal.owner,
                    "deal_id": deal.id,
                    "contact_id": rng.choice(contacts),
                    "company_id": deal.company_id,
                    "subject": SUBJECTS[kind],
                    "occurred_at": deal.created_at + (end - deal.created_at) * rng.random(),
                }
            )
    if rows:
        session.execute(insert(SalesActivity), rows)
    return len(rows)
