"""Expansion signals: seat use, usage growth, plan limits, healthy promoters and renewal timing.

Each signal states the numbers behind it; a signal that cannot be measured (no seats recorded, no
previous quarter, no snapshot or one older than `max_snapshot_age_days`) is listed under
`not_evaluated` with the reason, never guessed.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field
from sqlmodel import Session

from revops_cs.output import Out
from revops_cs.services import thresholds
from revops_cs.services.churn_risk import select_clients
from revops_cs.services.signals import History, load_histories

Motion = Literal["upsell", "cross_sell", "timing"]
ACTIVE_DAYS = 30  # active users: distinct users with a usage event in the last 30 days
QUARTER_DAYS = 90


class Signal(Out):
    signal: str = Field(description="Signal name.")
    motion: Motion = Field(description="What it suggests.")
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


def signals(h: History, day: date, cfg: thresholds.ExpansionSignals) -> Opportunity:
    c = h.client
    fired: list[Signal] = []
    missing: list[str] = []
    users = h.active_users(day, ACTIVE_DAYS)
    if c.seats_purchased:
        util = 100.0 * users / c.seats_purchased
        if util >= cfg.seat_utilisation_pct:
            fired.append(
                Signal(
                    signal="seat_utilisation",
                    motion="upsell",
                    evidence=f"{users} active users in {ACTIVE_DAYS} days ÷ {c.seats_purchased} seats = "
                    f"{util:.1f} % (≥ {cfg.seat_utilisation_pct:g} %).",
                )
            )
    else:
        missing.append("seat_utilisation: no seats_purchased recorded")
    cur, prev = h.usage_window(day, QUARTER_DAYS), h.usage_window(day, QUARTER_DAYS, back=1)
    if prev:
        growth = 100.0 * (cur - prev) / prev
        if growth >= cfg.usage_growth_pct:
            fired.append(
                Signal(
                    signal="usage_growth",
                    motion="upsell",
                    evidence=f"{cur} usage events in the last {QUARTER_DAYS} days vs {prev} before "
                    f"({growth:+.1f} %).",
                )
            )
    else:
        missing.append("usage_growth: no usage in the previous quarter")
    hits = h.named_events(day, QUARTER_DAYS, cfg.plan_limit_events)
    if hits:
        fired.append(
            Signal(
                signal="plan_limits_hit",
                motion="upsell",
                evidence=f"{hits} plan-limit event(s) ({', '.join(cfg.plan_limit_events)}) in "
                f"{QUARTER_DAYS} days.",
            )
        )
    snap, nps = h.latest_health(day), h.latest_nps(day)
    age = (day - snap.as_of).days if snap else 0
    if snap is None or nps is None:
        missing.append("healthy_promoter: " + ("no health snapshot" if snap is None else "no NPS answer"))
    elif age > cfg.max_snapshot_age_days:
        missing.append(
            f"healthy_promoter: health snapshot {age} days old (> {cfg.max_snapshot_age_days}); "
            "recompute with calculate_health_score"
        )
    elif snap.score >= cfg.health_min and nps[0] >= cfg.promoter_min_score:
        fired.append(
            Signal(
                signal="healthy_promoter",
                motion="cross_sell",
                evidence=f"Health {snap.score:.1f} on {snap.as_of.isoformat()} ({age} days old) and NPS "
                f"{nps[0]} on {nps[1].isoformat()}.",
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


def opportunities(
    session: Session,
    tenant: str,
    *,
    client_id: int | None,
    motion: Literal["upsell", "cross_sell"] | None,
    day: date,
    limit: int,
) -> UpsellResult:
    """Clients with expansion signals, most signals first. Across the portfolio a client whose only
    signal is renewal timing is not an opportunity; one named client is always shown."""
    cfg = thresholds.load(session, thresholds.ExpansionSignals)
    clients = select_clients(session, tenant, client_id, None)
    found = [signals(h, day, cfg) for h in load_histories(session, clients).values()]
    if client_id is None:
        found = [o for o in found if any(s.motion != "timing" for s in o.signals)]
    if motion is not None:
        found = [o for o in found if any(s.motion == motion for s in o.signals)]
    found.sort(key=lambda o: (-len(o.signals), o.client_id))
    return UpsellResult(as_of=day, evaluated=len(clients), opportunities=found[:limit])
