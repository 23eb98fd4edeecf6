"""Demo survey answers (NPS, CSAT, CES), free-text comments and feature requests for a year.

Deterministic from the `random.Random` passed in. Scores depend on the client's lifecycle stage
(churned and renewal-window accounts answer lower), comments are drawn from templates per NPS
category so themes and detractor reasons are meaningful, and each comment's sentiment is VADER's
score of its text — computed exactly as `collect_feedback` does.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session

from revops_cs.analytics import sentiment
from revops_cs.analytics.surveys import nps_category
from revops_cs.models.clients import CsClient
from revops_cs.models.feedback import CsFeedback

STAGE_MEAN_NPS = {"onboarding": 8.0, "adoption": 8.2, "mature": 8.6, "renewal": 7.0, "churned": 4.5}
COMMENTS = {
    "promoter": (
        "Support is fast and friendly, great team.",
        "The dashboards save us hours every week. Love it!",
        "Onboarding was smooth and the product is easy to use.",
        "Reliable and the reports are excellent.",
    ),
    "passive": (
        "Good product but the CSV export is slow.",
        "Works fine, reports could be more flexible.",
        "Decent, though the mobile app lacks features.",
        "OK overall; pricing feels high for small teams.",
    ),
    "detractor": (
        "The CSV export keeps timing out and support is slow to respond.",
        "Too expensive for what we get, and pricing keeps going up.",
        "SSO login breaks every few weeks, very frustrating.",
        "Reports are confusing and the numbers do not match our data.",
    ),
}
FEATURES = {
    "dark mode": "Please add a dark mode, our team works late.",
    "salesforce sync": "We need a two-way Salesforce sync.",
    "scheduled reports": "Scheduled reports by email every Monday would help a lot.",
    "sso with okta": "Okta SSO support is a must for our security team.",
    "api webhooks": "Webhooks for new events would let us automate more.",
}


def _at(rng: random.Random, day: date) -> datetime:
    return datetime.combine(day, time(8 + rng.randrange(10), rng.randrange(60)), tzinfo=UTC)


def _row(
    client: CsClient,
    kind: str,
    score: int | None,
    comment: str | None,
    when: datetime,
    feature: str | None = None,
    source: str = "survey",
) -> CsFeedback:
    compound = sentiment.compound(comment) if comment else None
    return CsFeedback(
        client_id=client.id or 0,
        kind=kind,
        score=score,
        comment=comment,
        sentiment=compound,
        sentiment_label=sentiment.label(compound) if compound is not None else None,
        feature=feature,
        source=source,
        submitted_at=when,
    )


def generate_feedback(
    session: Session, rng: random.Random, clients: list[CsClient], as_of: date
) -> dict[str, int]:
    """Insert a year of quarterly NPS, monthly CSAT, occasional CES and feature requests. No commit."""
    counts = {"nps": 0, "csat": 0, "ces": 0, "feature_requests": 0}
    start = as_of - timedelta(days=364)  # the default analysis window: 365 days ending on as_of
    for client in clients:
        last = min(as_of - timedelta(days=1), client.churned_at.date() if client.churned_at else as_of)
        first = max(start, client.contract_start or start)
        if last <= first:
            continue
        mean = STAGE_MEAN_NPS.get(client.stage, 8.0)
        # Quarterly NPS waves, 1–4 respondents each.
        wave = first
        while wave <= last:
            for _ in range(rng.randint(1, 4)):
                score = min(10, max(0, round(rng.gauss(mean, 1.8))))
                day = min(last, wave + timedelta(days=rng.randrange(14)))
                comment = rng.choice(COMMENTS[nps_category(score)]) if rng.random() < 0.6 else None
                session.add(_row(client, "nps", score, comment, _at(rng, day)))
                counts["nps"] += 1
            wave += timedelta(days=91)
        for month in range(12):
            day = first + timedelta(days=30 * month + rng.randrange(28))
            if day > last or rng.random() < 0.4:
                continue
            csat = min(5, max(1, round(rng.gauss(mean / 2, 0.9))))
            session.add(_row(client, "csat", csat, None, _at(rng, day), source="ticket_survey"))
            counts["csat"] += 1
        for _ in range(rng.randint(0, 3)):
            ces = min(7, max(1, round(rng.gauss(9 - mean * 0.7, 1.2))))
            day = first + timedelta(days=rng.randrange(max(1, (last - first).days)))
            session.add(_row(client, "ces", ces, None, _at(rng, day)))
            counts["ces"] += 1
        if rng.random() < 0.45:
            for feature in rng.sample(sorted(FEATURES), rng.randint(1, 2)):
                day = first + timedelta(days=rng.randrange(max(1, (last - first).days)))
                session.add(_row(client, "text", None, FEATURES[feature], _at(rng, day), feature=feature))
                counts["feature_requests"] += 1
    session.flush()
    return counts
