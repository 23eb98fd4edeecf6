"""Engagement from stored usage events: DAU/WAU/MAU and feature use of one client, and usage drops
of each client against its own baseline. The maths is in `analytics.engagement`."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.params import end_of_day, start_of_day
from revops_cs.analytics import engagement as eng
from revops_cs.models.clients import CsClient
from revops_cs.models.usage import CsUsageEvent
from revops_cs.output import Out
from revops_cs.services.usage import usage_rows


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


class FeatureUse(Out):
    feature: str = Field(description="Feature.")
    events: int = Field(description="Events this period.")
    users: int = Field(description="Distinct users this period.")
    previous_events: int = Field(description="Events in the previous period.")
    change_pct: float | None = Field(description="% change; null if previous 0.")


class Engagement(Out):
    client_id: int = Field(description="Client id.")
    period: list[date] = Field(description="[first, last] day.")
    dau: float = Field(description="Mean daily login users.")
    wau: int = Field(description="Login users, last 7 days.")
    mau: int = Field(description="Login users, last 30 days.")
    stickiness_pct: float | None = Field(description="DAU/MAU·100; null when MAU is 0.")
    active_users: int = Field(description="Login users in period.")
    previous_active_users: int = Field(description="Same, previous period.")
    active_users_change_pct: float | None = Field(description="% change; null if previous 0.")
    events: int = Field(description="Events in period.")
    previous_events: int = Field(description="Events, previous period.")
    features: list[FeatureUse] = Field(description="Per feature, most used first.")


def engagement(session: Session, client: CsClient, period_days: int, end: date) -> Engagement:
    """Login-based activity and per-feature use over `period_days` ending on `end`, vs the period before."""
    start = end - timedelta(days=period_days - 1)
    prev_start = start - timedelta(days=period_days)
    rows = usage_rows(session, client.id or 0, min(prev_start, end - timedelta(days=29)), end)
    logins = [(d, u) for d, u, e, _ in rows if e == "login"]
    cur = [r for r in rows if r[0] >= start]
    prev = [r for r in rows if prev_start <= r[0] < start]
    dau = eng.mean_daily_active(logins, start, end)
    mau = len(eng.active_users(logins, end - timedelta(days=29), end))
    active = len(eng.active_users(logins, start, end))
    prev_active = len(eng.active_users(logins, prev_start, start - timedelta(days=1)))
    now_f = eng.by_key_counts((f, u) for _, u, _, f in cur if f)
    prev_f = eng.by_key_counts((f, u) for _, u, _, f in prev if f)
    features = [
        FeatureUse(
            feature=f,
            events=n,
            users=users,
            previous_events=prev_f.get(f, (0, 0))[0],
            change_pct=_r(eng.pct_change(n, prev_f.get(f, (0, 0))[0])),
        )
        for f, (n, users) in sorted(now_f.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    return Engagement(
        client_id=client.id or 0,
        period=[start, end],
        dau=round(dau, 2),
        wau=len(eng.active_users(logins, end - timedelta(days=6), end)),
        mau=mau,
        stickiness_pct=_r(eng.stickiness(dau, mau)),
        active_users=active,
        previous_active_users=prev_active,
        active_users_change_pct=_r(eng.pct_change(active, prev_active)),
        events=len(cur),
        previous_events=len(prev),
        features=features,
    )


class Pattern(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    recent_weekly_mean: float = Field(description="Recent weekly mean.")
    baseline_weekly_mean: float = Field(description="Baseline weekly mean.")
    change_pct: float = Field(description="Recent vs baseline, percent.")
    z_score: float | None = Field(description="z-score; null if std 0.")
    dropped: bool = Field(description="Drop ≥ threshold.")


class Patterns(Out):
    as_of: date = Field(description="End of the recent window.")
    recent_weeks: int = Field(description="Recent window.")
    baseline_weeks: int = Field(description="Baseline window before it.")
    drop_threshold_pct: float = Field(description="Drop that flags a client.")
    flagged: list[Pattern] = Field(description="Dropped clients, worst first.")
    checked: int = Field(description="Clients with a baseline.")
    no_baseline: list[int] = Field(description="Ids without baseline usage.")


def patterns(
    session: Session,
    clients: list[CsClient],
    day: date,
    *,
    recent_weeks: int,
    baseline_weeks: int,
    drop_threshold_pct: float,
) -> Patterns:
    """Weekly event totals per client: the recent weeks' mean against the baseline weeks before them."""
    weeks = recent_weeks + baseline_weeks
    first = day - timedelta(days=7 * weeks - 1)
    rows = session.exec(
        select(CsUsageEvent.client_id, CsUsageEvent.occurred_at).where(
            col(CsUsageEvent.client_id).in_([c.id for c in clients]),
            CsUsageEvent.occurred_at >= start_of_day(first),
            CsUsageEvent.occurred_at < end_of_day(day),
        )
    ).all()
    per_client: dict[int, list[tuple[date, float]]] = defaultdict(list)
    for cid, at in rows:
        per_client[cid].append((at.date(), 1.0))
    checked: list[Pattern] = []
    none: list[int] = []
    for c in clients:
        weekly = eng.weekly_totals(per_client.get(c.id or 0, []), day, weeks)
        res = eng.baseline_change(weekly, recent_weeks=recent_weeks, drop_threshold_pct=drop_threshold_pct)
        if res.pct_change is None:
            none.append(c.id or 0)
            continue
        checked.append(
            Pattern(
                client_id=c.id or 0,
                name=c.name,
                recent_weekly_mean=round(res.recent_mean, 2),
                baseline_weekly_mean=round(res.baseline_mean, 2),
                change_pct=round(res.pct_change, 1),
                z_score=_r(res.z_score, 2),
                dropped=res.dropped,
            )
        )
    checked.sort(key=lambda p: (p.change_pct, p.client_id))
    return Patterns(
        as_of=day,
        recent_weeks=recent_weeks,
        baseline_weeks=baseline_weeks,
        drop_threshold_pct=drop_threshold_pct,
        flagged=[p for p in checked if p.dropped],
        checked=len(checked),
        no_baseline=none,
    )
