"""Demo accounts: companies (the shared `core_company`) with one to four contacts each."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlmodel import Session, col

from revops_core.db import utcnow
from revops_core.models import CoreCompany, CoreContact
from revops_sales.demo import TENANT

INDUSTRIES = ("Software", "Retail", "Manufacturing", "Healthcare", "Logistics", "Finance", "Education")
FIRST = ("Ana", "Ben", "Chloe", "Diego", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam")
LAST = ("Silva", "Meyer", "Dubois", "Rossi", "Novak", "Kim", "Larsen", "Moreau", "Ortiz", "Weber")
TITLES = ("CEO", "CFO", "VP Sales", "Head of Operations", "IT Director", "Procurement Manager")
SYLLABLES = ("ac", "me", "glo", "bex", "ini", "tech", "sol", "ar", "nova", "ly", "tri", "on", "vex", "ra")


@dataclass(frozen=True)
class DemoAccounts:
    company_ids: list[int]
    contacts_by_company: dict[int, list[int]]


def _names(rng: random.Random, count: int) -> list[str]:
    """`count` distinct company names; past the syllable combinations, numbered ("Acmeon 2")."""
    seen: set[str] = set()
    names: list[str] = []
    while len(names) < count:
        base = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base} {n}"
        seen.add(name)
        names.append(name)
    return names


DOMAIN_SUFFIX = ".sales-demo.example"


def _domain(name: str) -> str:
    return f"{name.lower().replace(' ', '-')}{DOMAIN_SUFFIX}"


def generate_accounts(session: Session, rng: random.Random, *, companies: int) -> DemoAccounts:
    now = utcnow()
    names = _names(rng, companies)
    session.execute(
        insert(CoreCompany),
        [
            {
                "tenant": TENANT,
                "name": f"{name} {rng.choice(('Inc', 'GmbH', 'Ltd', 'Co'))}",
                "domain": _domain(name),
                "industry": rng.choice(INDUSTRIES),
                "employees": rng.choice((12, 25, 40, 80, 150, 300, 700)),
                "created_at": now,
                "updated_at": now,
            }
            for name in names
        ],
    )
    # Only the companies and contacts written here: in the suite's shared database CS has its own,
    # and the same seed must give the same Sales demo whatever else is stored.
    mine = col(CoreCompany.domain).endswith(DOMAIN_SUFFIX)
    rows = session.execute(
        select(col(CoreCompany.id), col(CoreCompany.domain)).where(col(CoreCompany.tenant) == TENANT, mine)
    ).all()
    ids = {domain: company_id for company_id, domain in rows}
    contacts = []
    for name in names:
        company_id = ids[_domain(name)]
        for n in range(rng.randint(1, 4)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            contacts.append(
                {
                    "tenant": TENANT,
                    "company_id": company_id,
                    "email": f"{first.lower()}.{last.lower()}{n}@{_domain(name)}",
                    "first_name": first,
                    "last_name": last,
                    "title": rng.choice(TITLES),
                    "is_primary": n == 0,
                    "created_at": now,
                }
            )
    session.execute(insert(CoreContact), contacts)
    by_company: dict[int, list[int]] = {}
    for contact_id, company_id in session.execute(
        select(col(CoreContact.id), col(CoreContact.company_id))
        .where(col(CoreContact.tenant) == TENANT, col(CoreContact.company_id).in_(ids.values()))
        .order_by(col(CoreContact.id))
    ):
        by_company.setdefault(company_id, []).append(contact_id)
    return DemoAccounts(company_ids=sorted(ids.values()), contacts_by_company=by_company)
