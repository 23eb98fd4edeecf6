"""Upcoming renewals with churn-rule risk, and the renewal forecast: ARR × p(renew | health band)."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field
from sqlmodel import Session

from revops_cs.analytics import churn_rules, revenue
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
    health_band: str | None = Field(description="Health band.")
    probability: float | None = Field(description="p(renew) from band.")


class Forecast(Out):
    currency: str = Field(description="Currency.")
    renewing_arr_minor: int = Field(description="sum ARR up for renewal.")
    expected_arr_minor: int = Field(description="sum ARR x probability.")
    unforecast_arr_minor: int = Field(description="ARR without snapshot.")


class RenewalsResult(Out):
    as_of: date = Field(description="As-of date.")
    renewals: list[Renewal] = Field(description="Renewals, soonest first.")
    forecast: list[Forecast] = Field(description="Per currency.")
    probability_by_band: dict[str, float] = Field(description="Band -> p(renew) (config).")


def upcoming(session: Session, tenant: str, *, within_days: int, day: date, limit: int) -> RenewalsResult:
    """Renewals due in [day, day + within_days]; the forecast covers all of them, the list `limit`."""
    rules = thresholds.load(session, churn_rules.ChurnRules)
    odds = thresholds.load(session, thresholds.RenewalForecast).probability_by_band
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
                probability=odds.get(snap.band) if snap else None,
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
    return RenewalsResult(as_of=day, renewals=rows[:limit], forecast=forecast, probability_by_band=odds)
