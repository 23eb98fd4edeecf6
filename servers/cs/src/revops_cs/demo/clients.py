"""Demo clients with a year of believable product usage.

Everything derives from the `random.Random` passed in, so a seed reproduces the same portfolio.
Patterns per client: steady, growing, declining (activity falls in the last ~8 weeks — the
accounts `analyze_engagement_patterns` should flag) and churned (usage stops at the churn date).
Usage events are bulk-inserted (core INSERT in chunks): a year for dozens of clients is ~10⁵ rows.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, select

from revops_core.models import CoreCompany, CoreContact
from revops_cs.models.clients import CsClient, CsStageChange
from revops_cs.models.usage import CsFeature, CsUsageEvent

ADJECTIVES = (
    "Blue",
    "North",
    "Bright",
    "Quiet",
    "Rapid",
    "Silver",
    "Prime",
    "Clever",
    "Urban",
    "Solid",
    "Lucky",
)
NOUNS = (
    "Harbor",
    "Pine",
    "Falcon",
    "Orbit",
    "Maple",
    "Summit",
    "Beacon",
    "Anchor",
    "Meadow",
    "Forge",
    "Lantern",
)
SUFFIXES = ("Labs", "Logistics", "Health", "Studio", "Foods", "Partners", "Analytics", "Retail", "Energy")
FIRST = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena")
LAST = ("Ng", "Okafor", "Silva", "Berg", "Kaur", "Rossi", "Tanaka", "Novak", "Diaz", "Moreau")
OWNERS = ("maya@csm.example", "liam@csm.example", "zoe@csm.example", "omar@csm.example")
TIER_WEIGHTS = {"smb": 50, "mid_market": 35, "enterprise": 15}
SEATS = {"smb": (5, 15), "mid_market": (15, 40), "enterprise": (40, 100)}
PRICE_PER_SEAT_MINOR = {"smb": 60_000, "mid_market": 90_000, "enterprise": 120_000}
FEATURES: dict[str, tuple[str, list[str]]] = {
    "reports": ("Reports", []),
    "dashboards": ("Dashboards", []),
    "export": ("Data export", []),
    "integrations": ("Integrations", []),
    "api": ("Public API", ["mid_market", "enterprise"]),
    "sso": ("Single sign-on", ["enterprise"]),
}
PATTERNS = {"steady": 45, "growing": 25, "declining": 20, "churned": 10}
CHUNK = 5_000


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ensure_features(session: Session, tenant: str) -> None:
    have = set(session.exec(select(CsFeature.key).where(CsFeature.tenant == tenant)))
    for key, (name, tiers) in FEATURES.items():
        if key not in have:
            session.add(CsFeature(tenant=tenant, key=key, name=name, tiers=json.dumps(tiers)))


def _activity(pattern: str, day: date, start: date, as_of: date, churn_day: date | None) -> float:
    """Relative activity of a client on a day (1 = its normal level)."""
    if churn_day is not None and day >= churn_day:
        return 0.0
    weekend = 0.15 if day.weekday() >= 5 else 1.0
    if pattern == "growing":
        return weekend * (0.5 + 0.5 * min(1.0, (day - start).days / 240))
    if pattern == "declining" and (as_of - day).days < 56:
        return weekend * 0.35
    if pattern == "churned" and churn_day is not None and (churn_day - day).days < 60:
        return weekend * 0.4  # fading before it leaves
    return weekend


def _stage_history(start: date, as_of: date, renewal: date, churn_day: date | None) -> list[tuple[str, date]]:
    steps = [("onboarding", start)]
    for stage, offset in (("adoption", 30), ("mature", 180)):
        if start + timedelta(days=offset) <= as_of:
            steps.append((stage, start + timedelta(days=offset)))
    if churn_day is None and (renewal - as_of).days <= 90 and steps[-1][0] != "onboarding":
        steps.append(("renewal", max(steps[-1][1] + timedelta(days=1), renewal - timedelta(days=90))))
    if churn_day is not None:
        steps = [s for s in steps if s[1] < churn_day] + [("churned", churn_day)]
    return steps


def _at(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(8 + rng.randrange(10), rng.randrange(60)), tzinfo=UTC)


def generate_clients_and_usage(
    session: Session, rng: random.Random, *, clients: int, as_of: date, tenant: str = "default"
) -> list[CsClient]:
    """Insert `clients` demo clients (company, contacts, stage history, a year of usage). No commit."""
    _ensure_features(session, tenant)
    used_names = set(session.exec(select(CsClient.name)))
    created: list[CsClient] = []
    events: list[dict[str, Any]] = []
    for index in range(clients):
        name = ""
        while not name or name in used_names:
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(SUFFIXES)}"
            if name in used_names:
                name = f"{name} {index + 1}"
        used_names.add(name)
        slug = name.lower().replace(" ", "")
        tier = _pick(rng, TIER_WEIGHTS)
        pattern = _pick(rng, PATTERNS)
        seats = rng.randint(*SEATS[tier])
        start = as_of - timedelta(days=rng.randint(20, 900))
        renewal = start + timedelta(days=365)
        while renewal <= as_of:
            renewal += timedelta(days=365)
        churn_day = as_of - timedelta(days=rng.randint(10, 80)) if pattern == "churned" else None
        if churn_day is not None and churn_day <= start + timedelta(days=30):
            churn_day, pattern = None, "steady"
        history = _stage_history(start, as_of, renewal, churn_day)
        company = CoreCompany(tenant=tenant, name=name, domain=f"{slug}.example", employees=seats * 4)
        session.add(company)
        session.flush()
        client = CsClient(
            tenant=tenant,
            company_id=company.id or 0,
            name=name,
            tier=tier,
            stage=history[-1][0],
            plan={"smb": "starter", "mid_market": "growth", "enterprise": "scale"}[tier],
            arr_minor=seats * PRICE_PER_SEAT_MINOR[tier],
            owner=rng.choice(OWNERS),
            seats_purchased=seats,
            contract_start=start,
            renewal_date=renewal,
            stage_changed_at=_at(history[-1][1], rng),
            churned_at=_at(churn_day, rng) if churn_day else None,
            created_at=_at(start, rng),
        )
        session.add(client)
        session.flush()
        cid = client.id or 0
        prev: str | None = None
        for stage, day in history:
            reason = (
                "registered" if prev is None else ("moved to a competitor" if stage == "churned" else None)
            )
            session.add(
                CsStageChange(
                    client_id=cid,
                    from_stage=prev,
                    to_stage=stage,
                    reason=reason,
                    actor="demo",
                    at=_at(day, rng),
                )
            )
            prev = stage
        users = [
            f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{i}@{slug}.example"
            for i in range(max(2, int(seats * rng.uniform(0.4, 0.95))))
        ]
        for i, email in enumerate(users[: rng.randint(1, 3)]):
            session.add(CoreContact(tenant=tenant, company_id=company.id, email=email, is_primary=i == 0))
        events.extend(_usage(rng, cid, tier, users, pattern, start, as_of, churn_day, len(events)))
        created.append(client)
    for offset in range(0, len(events), CHUNK):
        session.connection().execute(insert(CsUsageEvent), events[offset : offset + CHUNK])
    session.flush()
    return created


def _usage(
    rng: random.Random,
    cid: int,
    tier: str,
    users: list[str],
    pattern: str,
    start: date,
    as_of: date,
    churn_day: date | None,
    serial: int,
) -> list[dict[str, Any]]:
    """A year (or since the contract start) of logins and feature events for one client."""
    features = [k for k, (_, tiers) in FEATURES.items() if not tiers or tier in tiers]
    # Each user has a habit (how often they log in) and favourite features: adoption is uneven.
    habits = {u: rng.uniform(0.15, 0.7) for u in users}
    favourites = {u: rng.sample(features, k=rng.randint(1, min(3, len(features)))) for u in users}
    first = max(start, as_of - timedelta(days=364))
    rows: list[dict[str, Any]] = []
    day = first
    while day <= as_of:
        level = _activity(pattern, day, start, as_of, churn_day)
        if level > 0:
            for user in users:
                if rng.random() < habits[user] * level:
                    at = _at(day, rng)
                    rows.append(_row(cid, user, "login", None, at, serial + len(rows)))
                    if rng.random() < 0.6:
                        feature = rng.choice(favourites[user])
                        rows.append(
                            _row(
                                cid,
                                user,
                                "feature_used",
                                feature,
                                at + timedelta(minutes=5),
                                serial + len(rows),
                            )
                        )
        day += timedelta(days=1)
    return rows


def _row(cid: int, user: str, event: str, feature: str | None, at: datetime, n: int) -> dict[str, Any]:
    return {
        "client_id": cid,
        "user_ref": user,
        "event": event,
        "feature": feature,
        "quantity": 1.0,
        "occurred_at": at,
        "source": "demo",
        "external_id": f"demo-{cid}-{n}",
    }
