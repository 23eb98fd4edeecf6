"""Upcoming renewals with churn-rule risk, and the renewal forecast: ARR × p(renew | health band).

p(renew | band) is estimated from the tenant's own renewal outcomes (`analytics.renewal_odds`: stage
moves out of `renewal`, banded by the health snapshot when the client entered it) with the
configured prior; a band with no outcomes shows the prior, labelled an assumption. A renewal whose
latest snapshot is older than `max_snapshot_age_days` gets no probability (recompute it with
calculate_health_score) rather than a stale band's.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from pydantic import Field
from sqlmodel import Session, col, or_, select

from revops_core.params import end_of_day
from revops_cs.analytics import churn_rules, renewal_odds, revenue
from revops_cs.models.clients import CsClient, CsStageChange
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.output import Out
from revops_cs.services import thresholds
from revops_cs.services.churn_risk import Level, assess
from revops_cs.services.signals import live_clients, load_histories


class Renewal(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    renewal_date: date = Field(description="Renewal date.")
    days_left: int = Field(description="Days until renewal.")
    arr_minor: int = Field(description="ARR, minor units.")
    currency: str = Field(description="Currency.")
    risk_score: int = Field(description="Churn-rule score.")
    risk_level: Level = Field(description="Churn-rule level.")
    health_band: str | None = Field(description="Latest health band.")
    health_age_days: int | None = Field(description="Its snapshot's age, days.")
    probability: float | None = Field(description="p(renew) of the band.")
    note: str | None = Field(description="Why no probability.")


class Forecast(Out):
    currency: str = Field(description="Currency.")
    renewing_arr_minor: int = Field(description="sum ARR up for renewal.")
    expected_arr_minor: int = Field(description="sum ARR x probability.")
    unforecast_arr_minor: int = Field(description="ARR with no probability.")


class BandOdds(Out):
    band: str = Field(description="Health band.")
    probability: float = Field(description="(renewed + k·prior)/(n + k).")
    renewed: int = Field(description="Renewals.")
    observations: int = Field(description="Outcomes (n).")
    prior_mean: float = Field(description="Prior (assumption).")
    prior_strength: float = Field(description="k, pseudo-outcomes.")
    source: str = Field(description="Basis.")


class RenewalsResult(Out):
    as_of: date = Field(description="As-of date.")
    renewals: list[Renewal] = Field(description="Renewals, soonest first.")
    forecast: list[Forecast] = Field(description="Per currency.")
    odds: list[BandOdds] = Field(description="p(renew) per band.")
    unbanded_outcomes: int = Field(description="Outcomes without a usable snapshot at entry.")


def odds(
    session: Session, tenant: str, day: date, cfg: thresholds.RenewalForecast
) -> tuple[list[renewal_odds.BandOdds], int]:
    """p(renew | band) from the outcomes recorded up to `day` (live clients of the tenant), and the
    number of outcomes that have no band. Two queries: the renewal moves, then their snapshots."""
    of_tenant = (
        CsClient.tenant == tenant,
        col(CsClient.deleted_at).is_(None),
        col(CsStageChange.at) < end_of_day(day),
    )
    moves = [
        renewal_odds.Move(cid, at, from_stage, to_stage)
        for cid, at, from_stage, to_stage in session.exec(
            select(
                CsStageChange.client_id, CsStageChange.at, CsStageChange.from_stage, CsStageChange.to_stage
            )
            .join(CsClient, col(CsClient.id) == col(CsStageChange.client_id))
            .where(
                *of_tenant,
                or_(
                    col(CsStageChange.from_stage) == renewal_odds.RENEWAL,
                    col(CsStageChange.to_stage) == renewal_odds.RENEWAL,
                ),
            )
            .order_by(col(CsStageChange.at), col(CsStageChange.id))
        )
    ]
    entered = (
        select(CsStageChange.client_id)
        .join(CsClient, col(CsClient.id) == col(CsStageChange.client_id))
        .where(*of_tenant, col(CsStageChange.to_stage) == renewal_odds.RENEWAL)
    )
    snapshots: dict[int, list[tuple[date, str]]] = defaultdict(list)
    for cid, as_of, band in session.exec(
        select(CsHealthSnapshot.client_id, col(CsHealthSnapshot.as_of), CsHealthSnapshot.band)
        .where(col(CsHealthSnapshot.client_id).in_(entered), CsHealthSnapshot.as_of <= day)
        .order_by(col(CsHealthSnapshot.client_id), col(CsHealthSnapshot.as_of), col(CsHealthSnapshot.id))
    ):
        snapshots[cid].append((as_of, band))
    found = renewal_odds.outcomes(moves, snapshots, cfg.max_snapshot_age_days)
    bands = renewal_odds.by_band(found, cfg.probability_by_band, cfg.prior_strength)
    return bands, len(found) - sum(b.observations for b in bands)


def upcoming(session: Session, tenant: str, *, within_days: int, day: date, limit: int) -> RenewalsResult:
    """Renewals due in [day, day + within_days]; the forecast covers all of them, the list `limit`."""
    rules = thresholds.load(session, churn_rules.ChurnRules)
    cfg = thresholds.load(session, thresholds.RenewalForecast)
    bands, unbanded = odds(session, tenant, day, cfg)
    p_of = {b.band: b.probability for b in bands}
    last = day + timedelta(days=within_days)
    due = [
        (c, c.renewal_date)
        for c in live_clients(session, tenant)
        if c.renewal_date is not None and day <= c.renewal_date <= last
    ]
    histories = load_histories(session, [c for c, _ in due])
    rows: list[Renewal] = []
    for client, renewal_date in due:
        h = histories[client.id or 0]
        snap, risk = h.latest_health(day), assess(h, day, rules)
        age = (day - snap.as_of).days if snap else None
        p: float | None = None
        if snap is None or age is None:
            note = "No health snapshot (calculate_health_score)."
        elif age > cfg.max_snapshot_age_days:
            note = (
                f"Health snapshot {age} days old (> {cfg.max_snapshot_age_days}); "
                "recompute with calculate_health_score."
            )
        elif snap.band not in p_of:
            note = f"No prior for band {snap.band}."
        else:
            p, note = p_of[snap.band], None
        rows.append(
            Renewal(
                client_id=client.id or 0,
                name=client.name,
                renewal_date=renewal_date,
                days_left=(renewal_date - day).days,
                arr_minor=client.arr_minor,
                currency=client.currency,
                risk_score=risk.score,
                risk_level=risk.level,
                health_band=snap.band if snap else None,
                health_age_days=age,
                probability=p,
                note=note,
            )
        )
    rows.sort(key=lambda r: (r.renewal_date, r.client_id))
    forecast = []
    for cur in sorted({r.currency for r in rows}):
        total, expected, unforecast = revenue.renewal_forecast(
            [(r.arr_minor, r.probability) for r in rows if r.currency == cur]
        )
        forecast.append(
            Forecast(
                currency=cur,
                renewing_arr_minor=total,
                expected_arr_minor=round(expected),
                unforecast_arr_minor=unforecast,
            )
        )
    return RenewalsResult(
        as_of=day,
        renewals=rows[:limit],
        forecast=forecast,
        odds=[BandOdds.model_validate(b) for b in bands],
        unbanded_outcomes=unbanded,
    )
