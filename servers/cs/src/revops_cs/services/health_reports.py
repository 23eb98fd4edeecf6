"""Health across the portfolio: score every client, fit trends on stored snapshots, report by band."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import Date, Integer, cast, func, literal, or_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_cs.analytics import health as maths
from revops_cs.models.clients import CsClient
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.output import Out
from revops_cs.services.clients import get_client
from revops_cs.services.health import (
    HealthResult,
    Scored,
    compute_health,
    evaluate,
    latest_snapshot_id,
    store,
)
from revops_cs.services.health_facts import Scope, gather, portfolio_ids
from revops_cs.services.health_settings import HealthSettings

Progress = Callable[[int, int], None]


class PortfolioScore(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    score: float | None = Field(description="Health score; null when there is too little data.")
    band: str | None = Field(description="Band; null when unscored.")
    missing: list[str] = Field(description="Components without data.")
    reused: bool = Field(description="Snapshot reused.")


class HealthCalc(Out):
    scope: str = Field(description="client or portfolio.")
    as_of: date = Field(description="Date scored.")
    client: HealthResult | None = Field(description="Explained score (client).")
    portfolio: list[PortfolioScore] = Field(description="Per client (portfolio).")
    changed: int = Field(description="Snapshots written (inputs changed).")


def score_client(session: Session, client: CsClient, day: date, hs: HealthSettings) -> HealthCalc:
    result = compute_health(session, client, day, hs)
    return HealthCalc(
        scope="client",
        as_of=day,
        client=result,
        portfolio=[],
        changed=1 if result.snapshot_id is not None and not result.reused else 0,
    )


def score_portfolio(
    read: Session, write: Session, tenant: str, day: date, hs: HealthSettings, progress: Progress
) -> HealthCalc:
    """Score every live, non-churned client and store (or reuse) each snapshot.

    The facts are gathered set-based and scored in `read` (no write lock held); only `store` runs
    in `write`, in bulk. `progress(done, total)` after gathering, every 1 000 clients scored, and
    when stored.
    """
    scope = Scope(tenant)
    clients = scope.clients(read)
    if not clients:
        raise NotFound("There are no live clients to score.", field="scope", hint="Register clients first.")
    total = len(clients)
    facts = gather(read, scope, day, hs)
    progress(0, total)
    results: list[Scored] = []
    for i, client in enumerate(clients, start=1):
        results.append(evaluate(client, day, facts, hs))
        if i % 1000 == 0:
            progress(i, total)
    store(write, scope, day, results)
    progress(total, total)
    lines = [
        PortfolioScore(
            client_id=r.client_id, name=c.name, score=r.score, band=r.band, missing=r.missing, reused=r.reused
        )
        for c, r in zip(clients, results, strict=True)
    ]
    changed = sum(1 for line in lines if line.score is not None and not line.reused)  # unscored: none stored
    return HealthCalc(scope="portfolio", as_of=day, client=None, portfolio=lines, changed=changed)


class ClientTrend(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    points: int = Field(description="Weekly snapshots used.")
    first_score: float = Field(description="Oldest score in the window.")
    latest_score: float = Field(description="Newest score in the window.")
    slope_per_week: float = Field(description="Points per week (least squares).")
    trend: str = Field(description="improving, declining or stable.")


class Trends(Out):
    as_of: date = Field(description="End of the window.")
    weeks: int = Field(description="Window in weeks.")
    stable_within: float = Field(description="|slope| at or below this is stable.")
    clients: list[ClientTrend] = Field(description="Biggest movers first.")
    insufficient_data: list[int] = Field(description="Ids with too few snapshots.")
    min_points: int = Field(description="Snapshots needed.")


def trends(
    session: Session,
    tenant: str,
    client_id: int | None,
    day: date,
    *,
    weeks: int,
    top: int,
    hs: HealthSettings,
) -> Trends:
    """Least-squares slope over the latest stored snapshot of each week; biggest movers first.

    One client (`not_found` when unknown) or the portfolio (`health_facts.portfolio_ids`). SQL
    reduces each client's snapshots to its weekly points and their least-squares sums, one row a
    client (`_weekly_slopes`), which ranks the movers; only the top `top` movers' snapshots are read
    back, and their figures come from the weekly points with `maths.slope`, as for one client.
    """
    if weeks < hs.trend_min_points:
        raise ValidationFailed(
            f"A trend needs {hs.trend_min_points} weekly snapshots; {weeks} weeks cannot hold them.",
            field="weeks",
            hint=f"Use weeks ≥ {hs.trend_min_points}.",
        )
    if client_id is not None:
        get_client(session, client_id)
    first = day - timedelta(days=7 * weeks - 1)
    ranked: list[tuple[float, int]] = []
    short: list[int] = []
    scope = Scope(tenant, client_id)
    weekly = _weekly_slopes(session, scope, first, day)
    for cid in session.exec(select(CsClient.id).where(scope.matches(CsClient.id)).order_by(col(CsClient.id))):
        n, slope = weekly.get(cid or 0, (0, None))
        if n < hs.trend_min_points or slope is None:
            short.append(cid or 0)
        else:
            ranked.append((-abs(round(slope, 3)), cid or 0))
    ranked.sort()
    movers = [
        _trend(cid, name, points, first, hs)
        for cid, name, points in _points(session, ranked[:top], first, day)
    ]
    movers.sort(key=lambda t: (-abs(t.slope_per_week), t.client_id))
    return Trends(
        as_of=day,
        weeks=weeks,
        stable_within=hs.trend_stable_within,
        clients=movers,
        insufficient_data=short,
        min_points=hs.trend_min_points,
    )


def _trend(
    client_id: int, name: str, snapshots: list[tuple[date, float]], first: date, hs: HealthSettings
) -> ClientTrend:
    points = maths.weekly_latest(snapshots, first)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    slope = maths.slope(xs, ys)
    return ClientTrend(
        client_id=client_id,
        name=name,
        points=len(points),
        first_score=ys[0],
        latest_score=ys[-1],
        slope_per_week=round(slope, 3),
        trend=maths.trend(slope, stable_within=hs.trend_stable_within),
    )


def _weekly_slopes(
    session: Session, scope: Scope, first: date, day: date
) -> dict[int, tuple[int, float | None]]:
    """Per client in scope with snapshots in the window: (weekly points, least-squares slope a week).

    A weekly point is the latest snapshot (by date, then id) of a 7-day bucket from `first`
    (`maths.weekly_latest`); d = its days since `first`, y = its score. One statement: a GROUP BY
    over the (client, as_of) index sums every snapshot of the window; a client whose buckets each
    hold one snapshot (scored once a week) is done, and only the others' snapshots go through a
    window that keeps those whose next one falls in a later bucket (or that have none).
    """
    snap = CsHealthSnapshot
    days = _days_since(session, col(snap.as_of), first)
    in_window = (col(snap.as_of) >= first, col(snap.as_of) <= day)
    every = sa_select(col(snap.client_id).label("client_id"), days.label("d"), col(snap.score).label("y"))
    rows = every.where(scope.matches(snap.client_id), *in_window).subquery("in_window")
    per_client = (
        _slopes(rows).add_columns(func.count(func.distinct(rows.c.d // 7)).label("weeks")).cte("per_client")
    )
    several = sa_select(per_client.c.client_id).where(per_client.c.n > per_client.c.weeks)
    next_d = func.lead(days, type_=Integer).over(
        partition_by=col(snap.client_id), order_by=(col(snap.as_of), col(snap.id))
    )
    reduced = every.add_columns(next_d.label("next_d")).where(col(snap.client_id).in_(several), *in_window)
    weekly = reduced.subquery("weekly")
    latest_of_week = or_(weekly.c.next_d.is_(None), weekly.c.next_d // 7 != weekly.c.d // 7)
    query = union_all(
        sa_select(per_client.c.client_id, per_client.c.n, per_client.c.slope).where(
            per_client.c.n == per_client.c.weeks
        ),
        _slopes(weekly).where(latest_of_week),
    )
    return {cid: (n, slope) for cid, n, slope in session.execute(query)}


def _slopes(rows: Any) -> Any:
    """SQL: per client of `rows` (client_id, d, y): n and `maths.slope` of y on weeks (x = d/7),
    7·(nΣdy − ΣdΣy) / (nΣd² − (Σd)²), NULL when every d is equal."""
    d, y, n = rows.c.d, rows.c.y, func.count()
    sum_d = func.sum(d)
    spread = func.nullif(n * func.sum(d * d) - sum_d * sum_d, 0)
    slope = 7.0 * (n * func.sum(d * y) - sum_d * func.sum(y)) / spread
    return sa_select(rows.c.client_id, n.label("n"), slope.label("slope")).group_by(rows.c.client_id)


def _points(
    session: Session, ranked: list[tuple[float, int]], first: date, day: date
) -> list[tuple[int, str, list[tuple[date, float]]]]:
    """The movers' names and snapshots in the window, in stored order (date, then id).

    Bounded by `top` (≤ 200 clients), so binding their ids is safe on every backend."""
    if not ranked:
        return []
    ids = [cid for _, cid in ranked]
    found: dict[int, tuple[str, list[tuple[date, float]]]] = {}
    query = (
        select(col(CsClient.id), col(CsClient.name), col(CsHealthSnapshot.as_of), col(CsHealthSnapshot.score))
        .join(CsHealthSnapshot, col(CsHealthSnapshot.client_id) == col(CsClient.id))
        .where(col(CsClient.id).in_(ids), CsHealthSnapshot.as_of >= first, CsHealthSnapshot.as_of <= day)
        .order_by(col(CsHealthSnapshot.as_of), col(CsHealthSnapshot.id))
    )
    for cid, name, as_of, score in session.exec(query):
        found.setdefault(cid or 0, (name, []))[1].append((as_of, score))
    return [(cid, *found[cid]) for cid in ids]


def _days_since(session: Session, column: Any, first: date) -> Any:
    """SQL: whole days from `first` to a date column (SQLite stores dates as ISO text)."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(column) - func.julianday(first.isoformat()), Integer)
    return cast(column - literal(first, Date), Integer)


class BandLine(Out):
    band: str = Field(description="Band.")
    clients: int = Field(description="Clients (latest snapshot).")
    arr_minor: dict[str, int] = Field(description="ARR per currency, minor units.")


class HealthReport(Out):
    as_of: date = Field(description="Snapshots up to this date.")
    bands: list[BandLine] = Field(description="Portfolio by band.")
    arr_at_risk_minor: dict[str, int] = Field(description="ARR in at_risk + critical.")
    scored: int = Field(description="Clients with a snapshot.")
    unscored: list[int] = Field(description="Live client ids without a snapshot.")
    average_score: float | None = Field(description="Mean score; null if none.")


def report(session: Session, tenant: str, day: date) -> HealthReport:
    """Clients and ARR per band of their latest stored snapshot (on or before `day`); who has none.

    Aggregated in SQL over the portfolio (`health_facts.portfolio_ids`): each client joins its
    latest snapshot through a correlated subquery on the (client, as_of) index, grouped by band and
    currency — no client or snapshot is loaded, and no id list is bound.
    """
    latest = latest_snapshot_id(day)
    in_portfolio = col(CsClient.id).in_(portfolio_ids(tenant))
    grouped = session.execute(  # five columns: SQLAlchemy's select (SQLModel's types stop at four)
        sa_select(
            col(CsHealthSnapshot.band),
            col(CsClient.currency),
            func.count(),
            func.sum(CsClient.arr_minor),
            func.sum(CsHealthSnapshot.score),
        )
        .select_from(CsClient)
        .join(CsHealthSnapshot, col(CsHealthSnapshot.id) == latest)
        .where(in_portfolio)
        .group_by(col(CsHealthSnapshot.band), col(CsClient.currency))
        .order_by(col(CsHealthSnapshot.band), col(CsClient.currency))
    ).all()
    lines = {b: BandLine(band=b, clients=0, arr_minor={}) for b in maths.BAND_NAMES}
    risk: dict[str, int] = {}
    scored, score_sum = 0, 0.0
    for band, currency, n, arr, scores in grouped:
        line = lines[band]
        line.clients += int(n)
        line.arr_minor[currency] = line.arr_minor.get(currency, 0) + int(arr or 0)
        if band in ("at_risk", "critical"):
            risk[currency] = risk.get(currency, 0) + int(arr or 0)
        scored, score_sum = scored + int(n), score_sum + float(scores or 0)
    unscored = session.exec(
        select(CsClient.id).where(in_portfolio, latest.is_(None)).order_by(col(CsClient.id))
    ).all()
    return HealthReport(
        as_of=day,
        bands=list(lines.values()),
        arr_at_risk_minor=risk,
        scored=scored,
        unscored=[cid or 0 for cid in unscored],
        average_score=maths.mean_to_one_decimal(score_sum, scored),
    )
