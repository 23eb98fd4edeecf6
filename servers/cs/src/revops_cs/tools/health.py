"""CS toolset `health`: Usage, engagement, health scores, segments, adoption and lifecycle."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import func
from sqlmodel import col, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.server import Call
from revops_cs.analytics import engagement as eng
from revops_cs.analytics import health as hmath
from revops_cs.analytics import segmentation as seg
from revops_cs.common import (
    AsOf,
    ClientId,
    OptClient,
    end_of_day,
    get_client,
    require_all,
    resolve_as_of,
    start_of_day,
)
from revops_cs.models.clients import STAGES, CsClient, CsStageChange, Stage, Tier
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.usage import CsFeature, CsHealthSnapshot, CsMilestoneDef, CsSegmentRule, CsUsageEvent
from revops_cs.output import Out
from revops_cs.services import lifecycle
from revops_cs.services.clients import live_clients
from revops_cs.services.health import HealthResult, compute_health, latest_snapshots
from revops_cs.services.health_settings import health_settings
from revops_cs.services.segments import CONDITION_FIELDS, Condition, evaluate, rule_conditions
from revops_cs.services.usage import IngestReport, UsageEventIn, ingest_usage_events, usage_rows
from revops_cs.toolsets import health as toolset


def _clients(call: Call, client_id: int | None) -> list[CsClient]:
    """One client, or the portfolio: live clients that have not churned (a churned account has no health
    to manage and would only add noise: no usage reads as a 100 % drop, its ARR as ARR at risk)."""
    if client_id is not None:
        return [get_client(call.db, client_id)]
    return [c for c in live_clients(call.db, call.tenant) if c.stage != "churned"]


# --------------------------------------------------------------------------- usage


@toolset.tool(tier="write", idempotent=False)  # events without external_id are not deduplicated
def record_usage_events(
    call: Call,
    events: Annotated[list[UsageEventIn], Field(min_length=1, max_length=1000, description="1–1000 events.")],
    source: Annotated[str, Field(min_length=1, max_length=30, description="Where they come from.")] = "api",
) -> IngestReport:
    """Store product usage events (one or a batch); repeats of (source, external_id) are skipped."""
    report = ingest_usage_events(call.db, events, source=source)
    call.target = f"cs_usage_event:{source}"
    call.audit_details.update(inserted=report.inserted, duplicates=report.duplicates)
    if report.inserted == 0:
        call.no_change()
    return report


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


@toolset.tool(tier="read")
def track_usage_engagement(
    call: Call,
    client_id: ClientId,
    period_days: Annotated[int, Field(ge=7, le=365, description="Period length in days.")] = 30,
    as_of: AsOf = None,
) -> Engagement:
    """DAU/WAU/MAU and stickiness from login events, per-feature use, and change vs the prior period."""
    client = get_client(call.db, client_id)
    end = resolve_as_of(as_of)
    start = end - timedelta(days=period_days - 1)
    prev_start = start - timedelta(days=period_days)
    rows = usage_rows(call.db, client.id or 0, min(prev_start, end - timedelta(days=29)), end)
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


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------- health score


class PortfolioScore(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    score: float = Field(description="Health score.")
    band: str = Field(description="Band.")
    missing: list[str] = Field(description="Components without data.")
    reused: bool = Field(description="Snapshot reused.")


class HealthCalc(Out):
    scope: str = Field(description="client or portfolio.")
    as_of: date = Field(description="Date scored.")
    client: HealthResult | None = Field(description="Explained score (client).")
    portfolio: list[PortfolioScore] = Field(description="Per client (portfolio).")
    changed: int = Field(description="Snapshots written (inputs changed).")


@toolset.tool(tier="write", idempotent=True)
def calculate_health_score(
    call: Call,
    scope: Annotated[
        Literal["client", "portfolio"], Field(description="One client or all live clients.")
    ] = "client",
    client_id: OptClient = None,
    as_of: AsOf = None,
) -> HealthCalc:
    """Compute health (weighted sub-scores with inputs), store a snapshot; same inputs → same score."""
    day = resolve_as_of(as_of)
    hs = health_settings()
    if scope == "client":
        if client_id is None:
            raise ValidationFailed(
                "client_id is required for scope=client.",
                field="client_id",
                hint="Give a client id, or scope=portfolio.",
            )
        result = compute_health(call.db, get_client(call.db, client_id), day, hs)
        call.target = f"cs_client:{client_id}"
        if result.reused:
            call.no_change()
        return HealthCalc(
            scope=scope, as_of=day, client=result, portfolio=[], changed=0 if result.reused else 1
        )
    clients = _clients(call, None)
    if not clients:
        raise NotFound("There are no live clients to score.", field="scope", hint="Register clients first.")
    lines: list[PortfolioScore] = []
    for i, client in enumerate(clients, start=1):
        r = compute_health(call.db, client, day, hs)
        lines.append(
            PortfolioScore(
                client_id=r.client_id,
                name=client.name,
                score=r.score,
                band=r.band,
                missing=r.missing,
                reused=r.reused,
            )
        )
        if i % 10 == 0 or i == len(clients):
            call.progress(i, len(clients), f"scored {i}/{len(clients)} clients")
    changed = sum(1 for line in lines if not line.reused)
    call.target = "cs_health_snapshot:portfolio"
    call.audit_details["changed"] = changed
    if changed == 0:
        call.no_change()
    return HealthCalc(scope=scope, as_of=day, client=None, portfolio=lines, changed=changed)


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


@toolset.tool(tier="read")
def analyze_health_trends(
    call: Call,
    client_id: OptClient = None,
    weeks: Annotated[int, Field(ge=4, le=52, description="Weeks of snapshots to fit.")] = 12,
    top: Annotated[int, Field(ge=1, le=200, description="How many movers to return.")] = 10,
    as_of: AsOf = None,
) -> Trends:
    """Health trend per client: least-squares slope over weekly snapshots; biggest movers first."""
    day = resolve_as_of(as_of)
    hs = health_settings()
    if weeks < hs.trend_min_points:
        raise ValidationFailed(
            f"A trend needs {hs.trend_min_points} weekly snapshots; {weeks} weeks cannot hold them.",
            field="weeks",
            hint=f"Use weeks ≥ {hs.trend_min_points}.",
        )
    clients = _clients(call, client_id)
    first = day - timedelta(days=7 * weeks - 1)
    snaps = call.db.exec(
        select(CsHealthSnapshot)
        .where(
            col(CsHealthSnapshot.client_id).in_([c.id for c in clients]),
            CsHealthSnapshot.as_of >= first,
            CsHealthSnapshot.as_of <= day,
        )
        .order_by(col(CsHealthSnapshot.as_of), col(CsHealthSnapshot.id))
    ).all()
    weekly: dict[int, dict[int, CsHealthSnapshot]] = defaultdict(dict)
    for s in snaps:  # the latest snapshot of each week wins (ordered ascending)
        weekly[s.client_id][(s.as_of - first).days // 7] = s
    out: list[ClientTrend] = []
    short: list[int] = []
    for c in clients:
        points = sorted(weekly.get(c.id or 0, {}).items())
        if len(points) < hs.trend_min_points:
            short.append(c.id or 0)
            continue
        xs = [(s.as_of - first).days / 7 for _, s in points]
        ys = [s.score for _, s in points]
        slope = hmath.slope(xs, ys)
        out.append(
            ClientTrend(
                client_id=c.id or 0,
                name=c.name,
                points=len(points),
                first_score=ys[0],
                latest_score=ys[-1],
                slope_per_week=round(slope, 3),
                trend=hmath.trend(slope, stable_within=hs.trend_stable_within),
            )
        )
    out.sort(key=lambda t: (-abs(t.slope_per_week), t.client_id))
    return Trends(
        as_of=day,
        weeks=weeks,
        stable_within=hs.trend_stable_within,
        clients=out[:top],
        insufficient_data=short,
        min_points=hs.trend_min_points,
    )


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


@toolset.tool(tier="read")
def generate_health_report(call: Call, as_of: AsOf = None) -> HealthReport:
    """Portfolio health (non-churned clients): clients and ARR per band, ARR at risk, who has no score."""
    day = resolve_as_of(as_of)
    clients = _clients(call, None)
    snaps = latest_snapshots(call.db, [c.id or 0 for c in clients], day)
    lines = {b: BandLine(band=b, clients=0, arr_minor={}) for b in hmath.BAND_NAMES}
    risk: dict[str, int] = {}
    for c in clients:
        s = snaps.get(c.id or 0)
        if s is None:
            continue
        line = lines[s.band]
        line.clients += 1
        line.arr_minor[c.currency] = line.arr_minor.get(c.currency, 0) + c.arr_minor
        if s.band in ("at_risk", "critical"):
            risk[c.currency] = risk.get(c.currency, 0) + c.arr_minor
    scores = [s.score for s in snaps.values()]
    return HealthReport(
        as_of=day,
        bands=list(lines.values()),
        arr_at_risk_minor=risk,
        scored=len(snaps),
        unscored=[c.id or 0 for c in clients if (c.id or 0) not in snaps],
        average_score=round(statistics.fmean(scores), 1) if scores else None,
    )


# --------------------------------------------------------------------------- segmentation


class Member(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    segment: str = Field(description="Segment label.")
    facts: dict[str, Any] = Field(description="Values used.")


class Segmentation(Out):
    by: str = Field(description="Segmentation used.")
    counts: dict[str, int] = Field(description="Clients per segment.")
    arr_minor: dict[str, dict[str, int]] = Field(description="ARR per segment and currency.")
    members: list[Member] = Field(description="Clients and segment (≤ limit).")
    no_data: list[int] = Field(description="Ids without data.")
    rule: str | None = Field(default=None, description="Rule used (custom).")


def _segmentation(
    by: str,
    clients: list[CsClient],
    labels: dict[int, tuple[str, dict[str, Any]]],
    limit: int,
    rule: str | None = None,
) -> Segmentation:
    counts: dict[str, int] = defaultdict(int)
    arr: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    members = []
    for c in clients:
        if (c.id or 0) not in labels:
            continue
        label, facts = labels[c.id or 0]
        counts[label] += 1
        arr[label][c.currency] += c.arr_minor
        members.append(Member(client_id=c.id or 0, name=c.name, segment=label, facts=facts))
    return Segmentation(
        by=by,
        counts=dict(counts),
        arr_minor={k: dict(v) for k, v in arr.items()},
        members=members[:limit],
        no_data=[c.id or 0 for c in clients if (c.id or 0) not in labels],
        rule=rule,
    )


def _value_tiers(
    clients: list[CsClient], method: str, a_min: int | None, b_min: int | None
) -> dict[int, tuple[str, dict[str, Any]]]:
    values = {c.id or 0: c.arr_minor for c in clients}
    if method == "thresholds":
        if a_min is None or b_min is None or b_min > a_min:
            raise ValidationFailed(
                "thresholds need a_min_minor ≥ b_min_minor.",
                field="a_min_minor",
                hint="Give both thresholds, A at or above B.",
            )
        tiers = seg.threshold_tiers(values, a_min=a_min, b_min=b_min)
    else:
        tiers = seg.abc_tiers(values)
    return {k: (v, {"arr_minor": values[k]}) for k, v in tiers.items()}


def _rfm(call: Call, clients: list[CsClient], day: date) -> dict[int, tuple[str, dict[str, Any]]]:
    rows = call.db.exec(
        select(
            CsBillingEvent.client_id,
            func.max(CsBillingEvent.occurred_at),
            func.count(),
            func.sum(CsBillingEvent.amount_minor),
        )
        .where(
            col(CsBillingEvent.client_id).in_([c.id for c in clients]),
            CsBillingEvent.kind == "payment_succeeded",
            CsBillingEvent.occurred_at < end_of_day(day),
        )
        .group_by(CsBillingEvent.client_id)
    ).all()
    r = {cid: float((day - last.date()).days) for cid, last, _, _ in rows}
    f = {cid: float(n) for cid, _, n, _ in rows}
    m = {cid: float(total or 0) for cid, _, _, total in rows}
    scores = seg.rfm(r, f, m)
    return {
        cid: (
            f"R{rs}F{fs}M{ms}",
            {"recency_days": int(r[cid]), "payments": int(f[cid]), "paid_minor": int(m[cid])},
        )
        for cid, (rs, fs, ms) in scores.items()
    }


@toolset.tool(tier="read")
def segment_by_value_tier(
    call: Call,
    method: Annotated[
        Literal["abc", "thresholds"], Field(description="abc: cumulative ARR 80/15/5.")
    ] = "abc",
    a_min_minor: Annotated[int | None, Field(ge=0, description="thresholds: ARR for tier A.")] = None,
    b_min_minor: Annotated[int | None, Field(ge=0, description="thresholds: ARR for tier B.")] = None,
    limit: Annotated[int, Field(ge=1, le=500, description="Members to list.")] = 200,
) -> Segmentation:
    """Value tiers A/B/C by ARR: ABC by cumulative share (80/15/5) or fixed ARR thresholds."""
    clients = live_clients(call.db, call.tenant)
    return _segmentation(
        f"value_tier:{method}", clients, _value_tiers(clients, method, a_min_minor, b_min_minor), limit
    )


@toolset.tool(tier="write", idempotent=True)
def segment_customers(
    call: Call,
    by: Annotated[
        Literal["value_tier", "rfm", "lifecycle", "health_band", "custom"],
        Field(description="rfm: succeeded payments (R days since last, F count, M sum)."),
    ],
    conditions: Annotated[list[Condition] | None, Field(max_length=20, description="custom: ANDed.")] = None,
    rule_name: Annotated[
        str | None,
        Field(max_length=100, description="custom: saved rule to apply."),
    ] = None,
    save_as: Annotated[
        str | None,
        Field(max_length=100, description="custom: save conditions as a rule."),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=500, description="Members to list.")] = 200,
    as_of: AsOf = None,
) -> Segmentation:
    """Segment live clients by value tier, RFM quintiles, lifecycle, health band or a custom rule."""
    day = resolve_as_of(as_of)
    clients = live_clients(call.db, call.tenant)
    if by != "custom" and (conditions or rule_name or save_as):
        raise ValidationFailed(
            "conditions/rule_name/save_as only apply to by=custom.",
            field="by",
            hint="Use by=custom or drop those parameters.",
        )
    if not save_as:
        call.no_change()  # only saving a rule writes
    if by == "value_tier":
        return _segmentation(by, clients, _value_tiers(clients, "abc", None, None), limit)
    if by == "rfm":
        return _segmentation(by, clients, _rfm(call, clients, day), limit)
    if by == "lifecycle":
        labels = {
            c.id or 0: (
                seg.lifecycle_segment(
                    stage=c.stage, contract_start=c.contract_start, renewal_date=c.renewal_date, as_of=day
                ),
                {
                    "stage": c.stage,
                    "contract_start": str(c.contract_start),
                    "renewal_date": str(c.renewal_date),
                },
            )
            for c in clients
        }
        return _segmentation(by, clients, labels, limit)
    snaps = latest_snapshots(call.db, [c.id or 0 for c in clients], day)
    if by == "health_band":
        labels = {cid: (s.band, {"score": s.score, "snapshot": str(s.as_of)}) for cid, s in snaps.items()}
        return _segmentation(by, clients, labels, limit)
    return _custom(call, clients, snaps, day, conditions, rule_name, save_as, limit)


def _custom(
    call: Call,
    clients: list[CsClient],
    snaps: dict[int, CsHealthSnapshot],
    day: date,
    conditions: list[Condition] | None,
    rule_name: str | None,
    save_as: str | None,
    limit: int,
) -> Segmentation:
    if bool(conditions) == bool(rule_name):
        raise ValidationFailed(
            "Give either conditions or rule_name.",
            field="conditions",
            hint=f"Condition fields: {', '.join(CONDITION_FIELDS)}.",
        )
    if rule_name:
        rule = call.db.exec(
            select(CsSegmentRule).where(CsSegmentRule.tenant == call.tenant, CsSegmentRule.name == rule_name)
        ).first()
        if rule is None:
            raise NotFound(f"No saved rule '{rule_name}'.", field="rule_name", hint="Save one with save_as.")
        conditions = rule_conditions(rule.conditions)
    assert conditions is not None
    if save_as:
        exists = call.db.exec(
            select(CsSegmentRule.id).where(CsSegmentRule.tenant == call.tenant, CsSegmentRule.name == save_as)
        ).first()
        if exists is not None:
            raise Conflict(f"A rule named '{save_as}' exists.", field="save_as", hint="Choose another name.")
        call.db.add(
            CsSegmentRule(
                tenant=call.tenant,
                name=save_as,
                created_by=call.actor,
                conditions=json.dumps([c.model_dump() for c in conditions]),
            )
        )
        call.db.flush()
        call.target = f"cs_segment_rule:{save_as}"
    labels: dict[int, tuple[str, dict[str, Any]]] = {}
    for c in clients:
        matched, facts = evaluate(conditions, c, snaps.get(c.id or 0), day)
        labels[c.id or 0] = ("match" if matched else "no_match", facts)
    return _segmentation("custom", clients, labels, limit, rule=rule_name or save_as)


# --------------------------------------------------------------------------- adoption


class FeatureAdoption(Out):
    feature: str = Field(description="Feature key.")
    eligible_clients: int = Field(description="Eligible live clients.")
    adopters: int = Field(description="Clients that used it.")
    adoption_pct: float | None = Field(description="adopters ÷ eligible, %.")
    median_days_to_adopt: float | None = Field(description="Median days contract start → first use.")
    timed_adopters: int = Field(description="Adopters with a contract start.")


class AdoptionReport(Out):
    as_of: date = Field(description="Uses on or before this date.")
    features: list[FeatureAdoption] = Field(description="Per catalogue feature.")


@toolset.tool(tier="read")
def track_feature_adoption(call: Call, as_of: AsOf = None) -> AdoptionReport:
    """Per catalogue feature: adopters ÷ eligible clients and median days from contract start to first use."""
    day = resolve_as_of(as_of)
    features = list(
        call.db.exec(select(CsFeature).where(CsFeature.tenant == call.tenant).order_by(col(CsFeature.key)))
    )
    if not features:
        raise NotFound(
            "The feature catalogue is empty.",
            field="features",
            hint="Add features with track_adoption_milestones(action=define_feature).",
        )
    clients = live_clients(call.db, call.tenant)
    firsts = call.db.exec(
        select(CsUsageEvent.client_id, CsUsageEvent.feature, func.min(CsUsageEvent.occurred_at))
        .where(
            col(CsUsageEvent.feature).in_([f.key for f in features]),
            CsUsageEvent.occurred_at < end_of_day(day),
        )
        .group_by(CsUsageEvent.client_id, CsUsageEvent.feature)
    ).all()
    first_use = {(cid, feat): at.date() for cid, feat, at in firsts}
    out = []
    for f in features:
        tiers = json.loads(f.tiers)
        eligible = [c for c in clients if not tiers or c.tier in tiers]
        adopters = [c for c in eligible if (c.id, f.key) in first_use]
        waits = [(first_use[(c.id, f.key)] - c.contract_start).days for c in adopters if c.contract_start]
        out.append(
            FeatureAdoption(
                feature=f.key,
                eligible_clients=len(eligible),
                adopters=len(adopters),
                adoption_pct=round(100 * len(adopters) / len(eligible), 1) if eligible else None,
                median_days_to_adopt=float(statistics.median(waits)) if waits else None,
                timed_adopters=len(waits),
            )
        )
    return AdoptionReport(as_of=day, features=out)


class MilestoneStatus(Out):
    key: str = Field(description="Milestone key.")
    name: str = Field(description="Milestone name.")
    achieved_at: str | None = Field(description="When reached; null if not yet.")


class ClientMilestones(Out):
    client_id: int = Field(description="Client id.")
    achieved: int = Field(description="Milestones reached.")
    milestones: list[MilestoneStatus] = Field(description="Each milestone.")


class Milestones(Out):
    action: str = Field(description="Action performed.")
    definitions: list[dict[str, Any]] = Field(description="Definitions used.")
    defaults_used: bool = Field(description="Defaults used (none defined).")
    clients: list[ClientMilestones] = Field(description="Per client (report).")


DEFAULT_MILESTONES: tuple[dict[str, Any], ...] = (
    {"key": "first_login", "name": "First login", "kind": "logins", "threshold": 1, "event": None},
    {
        "key": "ten_active_users",
        "name": "10 active users",
        "kind": "active_users",
        "threshold": 10,
        "event": None,
    },
    {
        "key": "three_features",
        "name": "3 features used",
        "kind": "features_used",
        "threshold": 3,
        "event": None,
    },
)
MILESTONE_KINDS = ("logins", "active_users", "features_used", "event_count")


@toolset.tool(tier="write", idempotent=False)
def track_adoption_milestones(
    call: Call,
    action: Annotated[
        Literal["report", "define_milestone", "define_feature"], Field(description="What to do.")
    ] = "report",
    client_id: OptClient = None,
    key: Annotated[
        str | None,
        Field(pattern=r"^[a-z0-9_.:-]{1,100}$", description="define_*: key."),
    ] = None,
    name: Annotated[str | None, Field(max_length=200, description="define_*: display name.")] = None,
    kind: Annotated[
        Literal[MILESTONE_KINDS] | None,
        Field(description="define_milestone: counted thing."),  # type: ignore[valid-type]
    ] = None,
    threshold: Annotated[int, Field(ge=1, le=1_000_000, description="define_milestone: count to reach.")] = 1,
    event: Annotated[
        str | None,
        Field(max_length=100, description="define_milestone: event (event_count)."),
    ] = None,
    tiers: Annotated[
        list[Tier] | None,
        Field(description="define_feature: eligible tiers; omit for all."),
    ] = None,
    as_of: AsOf = None,
) -> Milestones:
    """Adoption milestones per client (first login, N users, N features); define milestones or features."""
    if action == "define_feature":
        require_all(action, key=key, name=name)
        if call.db.exec(
            select(CsFeature.id).where(CsFeature.tenant == call.tenant, CsFeature.key == key)
        ).first():
            raise Conflict(f"Feature '{key}' already exists.", field="key", hint="Use another key.")
        call.db.add(
            CsFeature(tenant=call.tenant, key=key or "", name=name or "", tiers=json.dumps(tiers or []))
        )
        call.target = f"cs_feature:{key}"
        return Milestones(
            action=action,
            definitions=[{"key": key, "name": name, "tiers": tiers or []}],
            defaults_used=False,
            clients=[],
        )
    if action == "define_milestone":
        require_all(action, key=key, name=name, kind=kind)
        if kind == "event_count" and not event:
            raise ValidationFailed(
                "event is required for kind=event_count.", field="event", hint="e.g. 'report_run'."
            )
        if call.db.exec(
            select(CsMilestoneDef.id).where(CsMilestoneDef.tenant == call.tenant, CsMilestoneDef.key == key)
        ).first():
            raise Conflict(f"Milestone '{key}' already exists.", field="key", hint="Use another key.")
        row = CsMilestoneDef(
            tenant=call.tenant,
            key=key or "",
            name=name or "",
            kind=kind or "",
            threshold=threshold,
            event=event,
        )
        call.db.add(row)
        call.target = f"cs_milestone_def:{key}"
        return Milestones(action=action, definitions=[_def(row)], defaults_used=False, clients=[])
    call.no_change()
    day = resolve_as_of(as_of)
    rows = [
        _def(r)
        for r in call.db.exec(
            select(CsMilestoneDef)
            .where(CsMilestoneDef.tenant == call.tenant)
            .order_by(col(CsMilestoneDef.id))
        )
    ]
    defs = rows or [dict(d) for d in DEFAULT_MILESTONES]
    out = []
    for c in _clients(call, client_id):
        statuses = [
            MilestoneStatus(key=d["key"], name=d["name"], achieved_at=_achieved(call, c.id or 0, d, day))
            for d in defs
        ]
        out.append(
            ClientMilestones(
                client_id=c.id or 0, achieved=sum(1 for s in statuses if s.achieved_at), milestones=statuses
            )
        )
    return Milestones(action=action, definitions=defs, defaults_used=not rows, clients=out)


def _def(row: CsMilestoneDef) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "kind": row.kind,
        "threshold": row.threshold,
        "event": row.event,
    }


def _achieved(call: Call, client_id: int, d: dict[str, Any], day: date) -> str | None:
    """The time the threshold-th login / distinct user / distinct feature / named event happened."""
    base = (CsUsageEvent.client_id == client_id) & (CsUsageEvent.occurred_at < end_of_day(day))
    n = int(d["threshold"])
    if d["kind"] in ("logins", "event_count"):
        name = "login" if d["kind"] == "logins" else d["event"]
        at = call.db.exec(
            select(CsUsageEvent.occurred_at)
            .where(base, CsUsageEvent.event == name)
            .order_by(col(CsUsageEvent.occurred_at))
            .offset(n - 1)
            .limit(1)
        ).first()
        return at.isoformat() if at else None
    column = CsUsageEvent.user_ref if d["kind"] == "active_users" else CsUsageEvent.feature
    extra = (
        (CsUsageEvent.event == "login")
        if d["kind"] == "active_users"
        else col(CsUsageEvent.feature).is_not(None)
    )
    query = select(func.min(CsUsageEvent.occurred_at)).where(base, extra).group_by(column)
    firsts = sorted(call.db.exec(query).all())
    return firsts[n - 1].isoformat() if len(firsts) >= n else None


# --------------------------------------------------------------------------- lifecycle


class StageChange(Out):
    at: str = Field(description="When (ISO time).")
    from_stage: str | None = Field(description="Previous stage.")
    to_stage: str = Field(description="New stage.")
    reason: str | None = Field(description="Why.")
    actor: str = Field(description="Who.")


class Lifecycle(Out):
    client_id: int = Field(description="Client id.")
    stage: str = Field(description="Current stage.")
    allowed_next: list[str] = Field(description="Allowed next stages.")
    history: list[StageChange] = Field(description="Stage changes, newest first.")


@toolset.tool(tier="write", idempotent=False)
def manage_lifecycle_stages(
    call: Call,
    client_id: ClientId,
    action: Annotated[
        Literal["history", "transition"], Field(description="Read history or change stage.")
    ] = "history",
    to_stage: Annotated[Stage | None, Field(description="transition: target stage.")] = None,
    reason: Annotated[
        str | None,
        Field(max_length=500, description="Why; required for churned."),
    ] = None,
) -> Lifecycle:
    """Lifecycle stage history, or a rule-checked transition (allowed moves only; churn needs a reason)."""
    client = get_client(call.db, client_id)
    if action == "transition":
        if to_stage is None:
            raise ValidationFailed(
                "to_stage is required to transition.", field="to_stage", hint=f"One of: {', '.join(STAGES)}."
            )
        lifecycle.transition(call.db, client, to_stage, actor=call.actor, reason=reason)
        call.target = f"cs_client:{client_id}"
    else:
        call.no_change()
    rows = call.db.exec(
        select(CsStageChange)
        .where(CsStageChange.client_id == client_id)
        .order_by(col(CsStageChange.at).desc(), col(CsStageChange.id).desc())
    ).all()
    return Lifecycle(
        client_id=client_id,
        stage=client.stage,
        allowed_next=sorted(lifecycle.ALLOWED.get(client.stage, ())),
        history=[
            StageChange(
                at=r.at.isoformat(),
                from_stage=r.from_stage,
                to_stage=r.to_stage,
                reason=r.reason,
                actor=r.actor,
            )
            for r in rows
        ],
    )


# --------------------------------------------------------------------------- engagement patterns


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


@toolset.tool(tier="read")
def analyze_engagement_patterns(
    call: Call,
    client_id: OptClient = None,
    recent_weeks: Annotated[int, Field(ge=1, le=12, description="Recent window in weeks.")] = 4,
    baseline_weeks: Annotated[int, Field(ge=2, le=52, description="Baseline weeks before it.")] = 12,
    drop_threshold_pct: Annotated[float, Field(gt=0, le=100, description="Drop to flag, percent.")] = 30.0,
    as_of: AsOf = None,
) -> Patterns:
    """Usage drops against each client's own baseline (recent vs prior weekly mean, % and z-score)."""
    day = resolve_as_of(as_of)
    clients = _clients(call, client_id)
    weeks = recent_weeks + baseline_weeks
    first = day - timedelta(days=7 * weeks - 1)
    rows = call.db.exec(
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
