"""CS toolset `expansion`: upsell/cross-sell signals, renewals and forecast, NRR/GRR and LTV."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import Field
from sqlmodel import col, select

from revops_core.errors import ValidationFailed
from revops_core.server import Call
from revops_cs.analytics import revenue
from revops_cs.common import AsOf, OptClient, get_client, resolve_as_of
from revops_cs.common import MaxRows as Limit
from revops_cs.models.clients import CsClient
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.output import Out, arg
from revops_cs.services import thresholds
from revops_cs.services.signals import History, live_clients, load_histories
from revops_cs.tools.retention import assess
from revops_cs.toolsets import expansion as toolset


class Signal(Out):
    signal: str = Field(description="Signal name.")
    motion: Literal["upsell", "cross_sell", "timing"] = Field(description="What it suggests.")
    evidence: str = Field(description="Numbers behind it.")


class Opportunity(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    signals: list[Signal] = Field(description="Signals that fired.")
    not_evaluated: list[str] = Field(description="Unevaluated signals.")


class UpsellResult(Out):
    as_of: date = Field(description="As-of date.")
    evaluated: int = Field(description="Clients evaluated.")
    opportunities: list[Opportunity] = Field(description="Clients with signals.")


def _signals(h: History, day: date, cfg: thresholds.ExpansionSignals) -> Opportunity:
    c = h.client
    fired: list[Signal] = []
    missing: list[str] = []
    users = h.active_users(day, 30)
    if c.seats_purchased:
        util = 100.0 * users / c.seats_purchased
        if util >= cfg.seat_utilisation_pct:
            fired.append(
                Signal(
                    signal="seat_utilisation",
                    motion="upsell",
                    evidence=f"{users} active users in 30 days ÷ {c.seats_purchased} seats = {util:.1f} % "
                    f"(≥ {cfg.seat_utilisation_pct:g} %).",
                )
            )
    else:
        missing.append("seat_utilisation: no seats_purchased recorded")
    cur, prev = h.usage_window(day, 90), h.usage_window(day, 90, back=1)
    if prev:
        growth = 100.0 * (cur - prev) / prev
        if growth >= cfg.usage_growth_pct:
            fired.append(
                Signal(
                    signal="usage_growth",
                    motion="upsell",
                    evidence=f"{cur} usage events in the last 90 days vs {prev} before ({growth:+.1f} %).",
                )
            )
    else:
        missing.append("usage_growth: no usage in the previous quarter")
    hits = h.named_events(day, 90, cfg.plan_limit_events)
    if hits:
        fired.append(
            Signal(
                signal="plan_limits_hit",
                motion="upsell",
                evidence=f"{hits} plan-limit event(s) ({', '.join(cfg.plan_limit_events)}) in 90 days.",
            )
        )
    snap, nps = h.latest_health(day), h.latest_nps(day)
    if snap is None or nps is None:
        missing.append("healthy_promoter: " + ("no health snapshot" if snap is None else "no NPS answer"))
    elif snap.score >= cfg.health_min and nps[0] >= cfg.promoter_min_score:
        fired.append(
            Signal(
                signal="healthy_promoter",
                motion="cross_sell",
                evidence=f"Health {snap.score:.1f} on {snap.as_of.isoformat()} and NPS {nps[0]} on "
                f"{nps[1].isoformat()}.",
            )
        )
    if c.renewal_date is None:
        missing.append("renewal_window: no renewal date")
    else:
        days = (c.renewal_date - day).days
        if cfg.renewal_min_days <= days <= cfg.renewal_max_days:
            fired.append(
                Signal(
                    signal="renewal_window",
                    motion="timing",
                    evidence=f"Renewal {c.renewal_date.isoformat()} in {days} days "
                    f"({cfg.renewal_min_days}–{cfg.renewal_max_days}).",
                )
            )
    return Opportunity(client_id=c.id or 0, name=c.name, signals=fired, not_evaluated=missing)


@toolset.tool(tier="read")
def identify_upsell_opportunities(
    call: Call,
    client_id: OptClient = None,
    motion: Annotated[Literal["upsell", "cross_sell"] | None, arg("Only this motion.")] = None,
    as_of: AsOf = None,
    limit: Limit = 50,
) -> UpsellResult:
    """Upsell/cross-sell signals: seat use, usage growth, plan limits, healthy promoter, renewal timing."""
    day = resolve_as_of(as_of)
    cfg = thresholds.load(call.db, thresholds.ExpansionSignals)
    clients = [get_client(call.db, client_id)] if client_id else live_clients(call.db, call.tenant)
    opps = [_signals(h, day, cfg) for h in load_histories(call.db, clients).values()]
    if client_id is None:
        opps = [o for o in opps if any(s.motion != "timing" for s in o.signals)]
    if motion is not None:
        opps = [o for o in opps if any(s.motion == motion for s in o.signals)]
    opps.sort(key=lambda o: (-len(o.signals), o.client_id))
    return UpsellResult(as_of=day, evaluated=len(clients), opportunities=opps[:limit])


class Renewal(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    renewal_date: date = Field(description="Renewal date.")
    days_left: int = Field(description="Days until renewal.")
    arr_minor: int = Field(description="ARR, minor units.")
    currency: str = Field(description="Currency.")
    risk_score: int = Field(description="Churn-rule score.")
    risk_level: str = Field(description="Churn-rule level.")
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


@toolset.tool(tier="read")
def track_renewals(
    call: Call,
    within_days: Annotated[int, arg("Renewals due within N days.", ge=1, le=730)] = 90,
    as_of: AsOf = None,
    limit: Limit = 100,
) -> RenewalsResult:
    """Upcoming renewals with churn-rule risk, plus expected renewal ARR = sum ARR x p(health band)."""
    day = resolve_as_of(as_of)
    rules = thresholds.load(call.db, thresholds.ChurnRules)
    odds = thresholds.load(call.db, thresholds.RenewalForecast).probability_by_band
    clients = [
        c
        for c in live_clients(call.db, call.tenant)
        if c.renewal_date is not None and day <= c.renewal_date <= day + timedelta(days=within_days)
    ]
    rows: list[Renewal] = []
    for h in load_histories(call.db, clients).values():
        c, snap = h.client, h.latest_health(day)
        risk = assess(h, day, rules)
        rows.append(
            Renewal(
                client_id=c.id or 0,
                name=c.name,
                renewal_date=c.renewal_date,  # type: ignore[arg-type]
                days_left=(c.renewal_date - day).days,  # type: ignore[operator]
                arr_minor=c.arr_minor,
                currency=c.currency,
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


class Ltv(Out):
    arpa_minor: int | None = Field(description="Mean MRR in end_month.")
    monthly_revenue_churn: float | None = Field(description="Monthly revenue churn.")
    gross_margin: float = Field(description="Gross margin (config).")
    ltv_minor: int | None = Field(description="ARPA x margin / monthly churn.")
    note: str | None = Field(description="Why LTV is missing, if it is.")


class RetentionResult(Out):
    start_month: date = Field(description="Period start month.")
    end_month: date = Field(description="Period end month.")
    currency: str = Field(description="Currency of the amounts.")
    accounts: int = Field(description="Accounts with start MRR.")
    churned_accounts: int = Field(description="Of those, with no MRR at end.")
    start_mrr_minor: int = Field(description="sum start MRR.")
    end_mrr_minor: int = Field(description="sum end MRR of those accounts.")
    expansion_mrr_minor: int = Field(description="Increases.")
    contraction_mrr_minor: int = Field(description="Decreases (not to 0).")
    churned_mrr_minor: int = Field(description="MRR lost to churn.")
    nrr: float | None = Field(description="NRR (1.0 = 100%).")
    grr: float | None = Field(description="Gross revenue retention, <= 1.")
    annualised_gross_churn: float | None = Field(description="Annualised gross churn.")
    ltv: Ltv = Field(description="Customer lifetime value.")


def _month(d: date, field: str) -> date:
    if d.day != 1:
        raise ValidationFailed(
            f"{field} {d.isoformat()} is not the first day of a month.", field=field, hint="Use YYYY-MM-01."
        )
    return d


@toolset.tool(tier="read")
def analyze_revenue_retention(
    call: Call,
    start_month: Annotated[date, arg("First day of the start month.")],
    end_month: Annotated[date, arg("First day of the end month.")],
    tier: Annotated[Literal["enterprise", "mid_market", "smb"] | None, arg("Only this tier.")] = None,
    currency: Annotated[str, arg("Currency of the MRR rows.", min_length=3, max_length=3)] = "USD",
) -> RetentionResult:
    """NRR, GRR, expansion/contraction/churn MRR from monthly MRR rows; annualised churn; LTV."""
    start, end = _month(start_month, "start_month"), _month(end_month, "end_month")
    if end <= start:
        raise ValidationFailed("end_month must be after start_month.", field="end_month", hint="Swap them.")
    q = select(CsMrrMonth.client_id, CsMrrMonth.month, CsMrrMonth.mrr_minor).where(
        col(CsMrrMonth.month).in_([start, end]), CsMrrMonth.currency == currency.upper()
    )
    if tier is not None:
        q = q.join(CsClient, col(CsClient.id) == CsMrrMonth.client_id).where(CsClient.tier == tier)
    start_map: dict[int, int] = {}
    end_map: dict[int, int] = {}
    for cid, month, mrr in call.db.exec(q):
        (start_map if month == start else end_map)[cid] = mrr
    if not any(v > 0 for v in start_map.values()):
        raise ValidationFailed(
            f"No MRR rows with a positive amount for {start.isoformat()} ({currency}).",
            field="start_month",
            hint="Record MRR history (cs_mrr_month) or choose another month.",
        )
    r = revenue.retention(start_map, end_map)
    days = (end - start).days
    months = (end.year - start.year) * 12 + end.month - start.month
    lost = 1 - (r.grr or 0)
    margin = thresholds.load(call.db, thresholds.Revenue).gross_margin_pct / 100
    active_end = [v for v in end_map.values() if v > 0]
    arpa = round(sum(active_end) / len(active_end)) if active_end else None
    monthly = revenue.monthly_rate(lost, months)
    if arpa is None:
        ltv = Ltv(
            arpa_minor=None,
            monthly_revenue_churn=monthly,
            gross_margin=margin,
            ltv_minor=None,
            note="No account has MRR in end_month.",
        )
    elif monthly <= 0:
        ltv = Ltv(
            arpa_minor=arpa,
            monthly_revenue_churn=0.0,
            gross_margin=margin,
            ltv_minor=None,
            note="No revenue churn in the period: LTV = ARPA × margin ÷ 0 is unbounded; widen the period.",
        )
    else:
        ltv = Ltv(
            arpa_minor=arpa,
            monthly_revenue_churn=round(monthly, 6),
            gross_margin=margin,
            ltv_minor=round(revenue.ltv(arpa, margin, monthly)),
            note=None,
        )
    return RetentionResult(
        start_month=start,
        end_month=end,
        currency=currency.upper(),
        accounts=r.accounts,
        churned_accounts=r.churned_accounts,
        start_mrr_minor=r.start_mrr,
        end_mrr_minor=r.end_mrr,
        expansion_mrr_minor=r.expansion,
        contraction_mrr_minor=r.contraction,
        churned_mrr_minor=r.churn,
        nrr=r.nrr,
        grr=r.grr,
        annualised_gross_churn=revenue.annualise(lost, days),
        ltv=ltv,
    )
