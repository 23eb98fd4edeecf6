"""Churn post-mortems: what churned clients' signals looked like in the months before they left."""

from __future__ import annotations

import statistics
from datetime import date, timedelta

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.params import start_of_day
from revops_cs.analytics import churn_rules
from revops_cs.models.clients import CsClient
from revops_cs.output import Out
from revops_cs.services import thresholds
from revops_cs.services.churn_risk import assess
from revops_cs.services.clients import get_client
from revops_cs.services.signals import History, load_histories

MONTH_DAYS = 30  # a "month before churn" is a 30-day window, like the rules' windows


class MonthSignals(Out):
    months_before: int = Field(description="Months before churn.")
    usage_events: int = Field(description="Usage events that month.")
    tickets: int = Field(description="Tickets opened that month.")
    failed_payments: int = Field(description="Failed payments that month.")
    nps: int | None = Field(description="Latest NPS.")
    health: float | None = Field(description="Latest health score.")


class ChurnedClient(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    churned_on: date = Field(description="Churn date.")
    months: list[MonthSignals] = Field(description="Signals per month before churn.")
    rules_before: list[str] = Field(description="Rules firing lead_days before.")
    risk_score_before: int = Field(description="Score before churn.")


class MonthMedians(Out):
    months_before: int = Field(description="Months before churn.")
    usage_events: float | None = Field(description="Median usage events.")
    tickets: float | None = Field(description="Median tickets.")
    health: float | None = Field(description="Median health (clients with a snapshot).")


class PostmortemResult(Out):
    churned_clients: int = Field(description="Churned clients analysed.")
    clients: list[ChurnedClient] = Field(description="Per client trajectories.")
    median_by_month: list[MonthMedians] = Field(description="Medians per month before churn.")
    rule_share: dict[str, float] = Field(description="Rule -> share of churned clients it flagged.")
    flagged_share: float | None = Field(description="Share scored medium/high before churn.")


def churned_clients(
    session: Session, tenant: str, client_id: int | None, since: date | None
) -> list[tuple[CsClient, date]]:
    """Live (not archived) churned clients with their churn day; one named client must have churned."""
    query = select(CsClient).where(
        CsClient.tenant == tenant, col(CsClient.churned_at).is_not(None), col(CsClient.deleted_at).is_(None)
    )
    if client_id is not None:
        if get_client(session, client_id).churned_at is None:
            raise ValidationFailed(
                f"Client {client_id} has not churned.", field="client_id", hint="Pick a churned client."
            )
        query = query.where(CsClient.id == client_id)
    if since is not None:
        query = query.where(col(CsClient.churned_at) >= start_of_day(since))
    rows = session.exec(query.order_by(col(CsClient.id)))
    return [(c, c.churned_at.date()) for c in rows if c.churned_at is not None]


def _trajectory(h: History, churned: date, months: int) -> list[MonthSignals]:
    series = []
    for m in range(1, months + 1):
        end = churned - timedelta(days=MONTH_DAYS * (m - 1))
        nps = h.latest_nps(end)
        snap = h.latest_health(end)
        series.append(
            MonthSignals(
                months_before=m,
                usage_events=h.usage_window(end, MONTH_DAYS),
                tickets=h.tickets_in(end, MONTH_DAYS),
                failed_payments=len(h.failed_payments_in(end, MONTH_DAYS)),
                nps=nps[0] if nps else None,
                health=snap.score if snap else None,
            )
        )
    return series


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def analyse(
    session: Session,
    tenant: str,
    *,
    client_id: int | None,
    since: date | None,
    months: int,
    lead_days: int,
    limit: int,
) -> PostmortemResult:
    """Each churned client's monthly signals, the rules that fired `lead_days` before, and aggregates."""
    cfg = thresholds.load(session, churn_rules.ChurnRules)
    selected = churned_clients(session, tenant, client_id, since)
    histories = load_histories(session, [c for c, _ in selected])
    out: list[ChurnedClient] = []
    for client, churned in selected:
        h = histories[client.id or 0]
        risk = assess(h, churned - timedelta(days=lead_days), cfg)
        out.append(
            ChurnedClient(
                client_id=client.id or 0,
                name=client.name,
                churned_on=churned,
                months=_trajectory(h, churned, months),
                rules_before=[r.rule for r in risk.rules if r.points],
                risk_score_before=risk.score,
            )
        )
    medians = []
    for m in range(months):
        rows = [c.months[m] for c in out]
        medians.append(
            MonthMedians(
                months_before=m + 1,
                usage_events=_median([r.usage_events for r in rows]),
                tickets=_median([r.tickets for r in rows]),
                health=_median([r.health for r in rows if r.health is not None]),
            )
        )
    share = (
        {r: round(sum(r in c.rules_before for c in out) / len(out), 4) for r in churn_rules.RULES}
        if out
        else {}
    )
    flagged = sum(c.risk_score_before >= cfg.medium_at for c in out) / len(out) if out else None
    return PostmortemResult(
        churned_clients=len(out),
        clients=out[:limit],
        median_by_month=medians,
        rule_share=share,
        flagged_share=round(flagged, 4) if flagged is not None else None,
    )
