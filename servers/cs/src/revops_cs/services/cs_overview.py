"""The one-screen CS overview: clients by stage, survey scores, open tickets, SLA and health.

Each figure comes from the service that owns it (support_metrics, feedback); health reads the
latest stored snapshot per portfolio client (live, not churned: `health_facts.portfolio_ids`, the
clients generate_health_report covers), aggregated in SQL, averaged as the report does.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_cs.analytics.health import portfolio_average
from revops_cs.models.clients import STAGES, CsClient
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.output import Out
from revops_cs.services.feedback import Surveys, feedback_rows, survey_scores
from revops_cs.services.health_facts import portfolio_ids
from revops_cs.services.support_metrics import performance, period


class HealthSummary(Out):
    clients_scored: int = Field(description="Non-churned clients with a snapshot on or before as_of.")
    average: float | None = Field(description="Mean of their latest scores.")
    by_band: dict[str, int] = Field(description="Latest band → clients.")


class CsOverview(Out):
    as_of: date = Field(description="Evaluation date.")
    days: int = Field(description="Look-back window for surveys and SLA.")
    clients: int = Field(description="Live clients.")
    clients_by_stage: dict[str, int] = Field(description="Live clients per lifecycle stage.")
    surveys: Surveys = Field(description="NPS, CSAT, CES in the window.")
    open_tickets: int = Field(description="Tickets open at as_of.")
    first_response_compliance: float | None = Field(description="SLA % in the window.")
    resolution_compliance: float | None = Field(description="SLA % in the window.")
    health: HealthSummary = Field(description="From the latest stored health snapshots.")


def health_summary(session: Session, tenant: str, as_of: date) -> HealthSummary:
    latest = (
        select(CsHealthSnapshot.client_id, func.max(CsHealthSnapshot.as_of).label("d"))
        .where(CsHealthSnapshot.as_of <= as_of, col(CsHealthSnapshot.client_id).in_(portfolio_ids(tenant)))
        .group_by(col(CsHealthSnapshot.client_id))
        .subquery()
    )
    rows = session.exec(
        select(CsHealthSnapshot.client_id, CsHealthSnapshot.score, CsHealthSnapshot.band, CsHealthSnapshot.id)
        .join(
            latest,
            (col(CsHealthSnapshot.client_id) == latest.c.client_id)
            & (col(CsHealthSnapshot.as_of) == latest.c.d),
        )
        .order_by(col(CsHealthSnapshot.id))
    ).all()
    per_client = {cid: (score, band) for cid, score, band, _ in rows}  # later id wins on a same-day tie
    bands: dict[str, int] = defaultdict(int)
    for _, band in per_client.values():
        bands[band] += 1
    return HealthSummary(
        clients_scored=len(per_client),
        average=portfolio_average([s for s, _ in per_client.values()]),
        by_band=dict(sorted(bands.items())),
    )


def overview(session: Session, tenant: str, as_of: date, days: int) -> CsOverview:
    window = period(None, as_of, as_of, days)
    stages = dict(
        session.exec(
            select(CsClient.stage, func.count())
            .where(col(CsClient.deleted_at).is_(None))
            .group_by(CsClient.stage)
        ).all()
    )
    support = performance(session, None, window, as_of)
    return CsOverview(
        as_of=as_of,
        days=days,
        clients=sum(stages.values()),
        clients_by_stage={s: int(stages.get(s, 0)) for s in STAGES} | {k: int(v) for k, v in stages.items()},
        surveys=survey_scores(feedback_rows(session, None, window)),
        open_tickets=sum(sum(b.values()) for b in support.backlog.values()),
        first_response_compliance=support.first_response_compliance,
        resolution_compliance=support.resolution_compliance,
        health=health_summary(session, tenant, as_of),
    )
