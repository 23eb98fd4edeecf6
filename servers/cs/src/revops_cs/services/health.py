"""Compute a client's health score from stored rows, explain it, and store it as a snapshot.

Other toolsets call `compute_health` (churn rule "renewal within 90 days and health < 70",
expansion signal "health ≥ 80"); `latest_snapshots` gives the stored bands without recomputing.
The recipe per component is documented in `revops_cs.services.health_settings`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.params import end_of_day, start_of_day
from revops_core.settings import Settings
from revops_cs.analytics import health as maths
from revops_cs.models.clients import CsClient
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsFeature, CsUsageEvent
from revops_cs.output import Out
from revops_cs.services.health_settings import COMPONENTS, HealthSettings, health_settings


class ComponentScore(Out):
    name: str = Field(description="Component name.")
    score: float | None = Field(description="0–100; null = no data.")
    weight: float = Field(description="Configured weight.")
    effective_weight_pct: float | None = Field(
        description="Share of the score, % (after spreading missing weight)."
    )
    inputs: dict[str, Any] = Field(description="Stored facts used.")
    explanation: str = Field(description="Recipe applied, or why data is missing.")


class HealthResult(Out):
    client_id: int = Field(description="Client id.")
    as_of: date = Field(description="Scored date.")
    score: float | None = Field(
        description="Weighted mean of sub-scores with data; null without enough data."
    )
    band: str | None = Field(
        description="excellent ≥90, good ≥70, at_risk ≥50, else critical; null unscored."
    )
    unscored_reason: str | None = Field(description="Why there is no score (too few components with data).")
    components: list[ComponentScore] = Field(description="Sub-scores with inputs and recipe.")
    missing: list[str] = Field(description="Components without data (weight spread).")
    inputs_hash: str = Field(description="SHA-256 of the inputs.")
    snapshot_id: int | None = Field(description="Snapshot id (none is stored without a score).")
    reused: bool = Field(description="Same date and inputs: snapshot reused.")


def resolve_health_settings(settings: Settings | HealthSettings | None) -> HealthSettings:
    return settings if isinstance(settings, HealthSettings) else health_settings()


def _window(as_of: date, days: int) -> tuple[Any, Any]:
    return start_of_day(as_of - timedelta(days=days - 1)), end_of_day(as_of)


def _usage(session: Session, client: CsClient, as_of: date, hs: HealthSettings) -> ComponentScore:
    upper = end_of_day(as_of)
    cid = client.id
    any_event = session.exec(
        select(func.count()).where(CsUsageEvent.client_id == cid, CsUsageEvent.occurred_at < upper)
    ).one()
    start, end = _window(as_of, hs.usage_window_days)
    active = session.exec(
        select(func.count(func.distinct(CsUsageEvent.user_ref))).where(
            CsUsageEvent.client_id == cid,
            CsUsageEvent.event == "login",
            CsUsageEvent.occurred_at >= start,
            CsUsageEvent.occurred_at < end,
        )
    ).one()
    target = hs.usage_target_share.get(client.tier)
    inputs = {
        "seats_purchased": client.seats_purchased,
        "active_users": int(active),
        "window_days": hs.usage_window_days,
        "target_active_share": target,
        "events_ever": int(any_event),
    }
    if not client.seats_purchased or target is None or target <= 0:
        why = (
            "seats_purchased is not set"
            if not client.seats_purchased
            else f"no target for tier {client.tier}"
        )
        return _missing("usage", hs, inputs, f"No data: {why}.")
    if any_event == 0:
        return _missing("usage", hs, inputs, "No data: no usage events recorded for this client yet.")
    share = active / client.seats_purchased
    score = maths.attainment(share, target)
    return _present(
        "usage",
        hs,
        inputs | {"active_share": round(share, 4)},
        score,
        f"100·min(active users/seats ÷ target, 1) = 100·min({active}/{client.seats_purchased} ÷ {target}, 1)",
    )


def _engagement(session: Session, client: CsClient, as_of: date, hs: HealthSettings) -> ComponentScore:
    last = session.exec(
        select(func.max(CsUsageEvent.occurred_at)).where(
            CsUsageEvent.client_id == client.id,
            CsUsageEvent.event == "login",
            CsUsageEvent.occurred_at < end_of_day(as_of),
        )
    ).one()
    if last is None:
        return _missing("engagement", hs, {"last_login": None}, "No data: no login events recorded.")
    last_day = last.date()
    days = (as_of - last_day).days
    inputs = {"last_login": last_day.isoformat(), "days_since_last_login": days}
    return _present("engagement", hs, inputs, maths.recency_score(days), f"max(0, 100 − 2·{days})")


def _support(session: Session, client: CsClient, as_of: date, hs: HealthSettings) -> ComponentScore:
    start, end = _window(as_of, hs.support_window_days)
    # Zero tickets is evidence only where tickets are recorded at all: with none for any client of
    # the tenant (no helpdesk connected), "no tickets" says nothing about this client.
    recorded = session.exec(
        select(CsTicket.id)
        .join(CsClient, col(CsClient.id) == col(CsTicket.client_id))
        .where(CsClient.tenant == client.tenant, CsTicket.created_at < end)
        .limit(1)
    ).first()
    if recorded is None:
        return _missing(
            "support",
            hs,
            {"tickets_opened": None},
            "No data: no tickets recorded for any client (create_ticket, sync_zendesk_tickets).",
        )
    n = session.exec(
        select(func.count()).where(
            CsTicket.client_id == client.id, CsTicket.created_at >= start, CsTicket.created_at < end
        )
    ).one()
    inputs = {"tickets_opened": int(n), "window_days": hs.support_window_days}
    return _present("support", hs, inputs, maths.tickets_score(int(n)), f"max(0, 100 − 10·{int(n)})")


def _sentiment(session: Session, client: CsClient, as_of: date, hs: HealthSettings) -> ComponentScore:
    start, end = _window(as_of, hs.sentiment_window_days)
    scores = [
        s
        for s in session.exec(
            select(CsFeedback.score)
            .where(
                CsFeedback.client_id == client.id,
                CsFeedback.kind == "nps",
                col(CsFeedback.score).is_not(None),
                CsFeedback.submitted_at >= start,
                CsFeedback.submitted_at < end,
            )
            .order_by(col(CsFeedback.id))
        )
        if s is not None
    ]
    inputs: dict[str, Any] = {"nps_answers": len(scores), "window_days": hs.sentiment_window_days}
    if not scores:
        return _missing("sentiment", hs, inputs, "No data: no NPS answers in the window.")
    value = maths.nps(scores)
    inputs |= {
        "promoters": sum(1 for s in scores if s >= 9),
        "detractors": sum(1 for s in scores if s <= 6),
        "nps": round(value, 2),
    }
    return _present(
        "sentiment", hs, inputs, maths.nps_score(scores), f"(NPS + 100)/2 = ({value:.1f} + 100)/2"
    )


def eligible_features(session: Session, tenant: str, tier: str) -> list[str]:
    """Catalogue features this tier may use (a feature with no tiers listed is open to all)."""
    keys: list[str] = []
    for feature in session.exec(
        select(CsFeature).where(CsFeature.tenant == tenant).order_by(col(CsFeature.key))
    ):
        tiers = json.loads(feature.tiers)
        if not tiers or tier in tiers:
            keys.append(feature.key)
    return keys


def _adoption(session: Session, client: CsClient, as_of: date, hs: HealthSettings) -> ComponentScore:
    eligible = eligible_features(session, client.tenant, client.tier)
    if not eligible:
        return _missing("adoption", hs, {"eligible_features": 0}, "No data: the feature catalogue is empty.")
    used = set(
        session.exec(
            select(CsUsageEvent.feature)
            .where(
                CsUsageEvent.client_id == client.id,
                col(CsUsageEvent.feature).in_(eligible),
                CsUsageEvent.occurred_at < end_of_day(as_of),
            )
            .distinct()
        )
    )
    adopted = sorted(f for f in used if f)
    inputs = {"eligible_features": len(eligible), "adopted_features": adopted}
    score = 100.0 * len(adopted) / len(eligible)
    return _present("adoption", hs, inputs, score, f"100·{len(adopted)}/{len(eligible)} features used")


def _contract(session: Session, client: CsClient, as_of: date, hs: HealthSettings) -> ComponentScore:
    upper = end_of_day(as_of)
    billing_ever = session.exec(
        select(func.count()).where(CsBillingEvent.client_id == client.id, CsBillingEvent.occurred_at < upper)
    ).one()
    start, end = _window(as_of, hs.payment_window_days)
    failed = session.exec(
        select(func.count()).where(
            CsBillingEvent.client_id == client.id,
            CsBillingEvent.kind == "payment_failed",
            CsBillingEvent.occurred_at >= start,
            CsBillingEvent.occurred_at < end,
        )
    ).one()
    days = (client.renewal_date - as_of).days if client.renewal_date else None
    inputs = {"failed_payments": int(failed), "window_days": hs.payment_window_days, "days_to_renewal": days}
    if billing_ever == 0:
        # Without billing events a failed payment cannot be seen: 0 failures would be a guess.
        return _missing(
            "contract", hs, inputs, "No data: no billing events recorded for this client (record_billing)."
        )
    overdue = " − 50 (renewal date passed)" if days is not None and days < 0 else ""
    return _present(
        "contract", hs, inputs, maths.contract_score(int(failed), days), f"100 − 25·{int(failed)}{overdue}"
    )


def _present(name: str, hs: HealthSettings, inputs: dict[str, Any], score: float, how: str) -> ComponentScore:
    return ComponentScore(
        name=name,
        score=round(score, 2),
        weight=hs.weights[name],
        effective_weight_pct=None,
        inputs=inputs,
        explanation=how,
    )


def _missing(name: str, hs: HealthSettings, inputs: dict[str, Any], why: str) -> ComponentScore:
    return ComponentScore(
        name=name,
        score=None,
        weight=hs.weights[name],
        effective_weight_pct=None,
        inputs=inputs,
        explanation=why,
    )


_GATHER = {
    "usage": _usage,
    "engagement": _engagement,
    "support": _support,
    "sentiment": _sentiment,
    "adoption": _adoption,
    "contract": _contract,
}


def inputs_hash(components: list[ComponentScore], hs: HealthSettings) -> str:
    """SHA-256 over every component's inputs plus the weights, targets and bands used."""
    payload = {
        "inputs": {c.name: c.inputs for c in components},
        "weights": hs.weights,
        "targets": hs.usage_target_share,
        "bands": [hs.band_excellent, hs.band_good, hs.band_at_risk],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def compute_health(
    session: Session, client: CsClient, as_of: date, settings: Settings | HealthSettings | None = None
) -> HealthResult:
    """Score one client as of a date from stored rows and store (or reuse) its snapshot for that date.

    Same inputs → same hash → the stored snapshot is reused unchanged; changed inputs → the day's
    snapshot is rewritten. Does not commit (the caller's transaction does).
    """
    hs = resolve_health_settings(settings)
    assert client.id is not None
    components = [_GATHER[name](session, client, as_of, hs) for name in COMPONENTS]
    scores = {c.name: c.score for c in components}
    weights = {c.name: c.weight for c in components}
    present = [c.name for c in components if c.score is not None and c.weight > 0]
    if not set(present) & set(hs.required_any):
        return _unscored(session, client, as_of, components, hs)
    value, missing = maths.weighted_mean(scores, weights)
    shares = maths.effective_weights(present, weights)
    for c in components:
        c.effective_weight_pct = round(shares[c.name], 2) if c.name in shares else None
    score = round(value, 1)
    digest = inputs_hash(components, hs)
    snapshot = session.exec(
        select(CsHealthSnapshot)
        .where(CsHealthSnapshot.client_id == client.id, CsHealthSnapshot.as_of == as_of)
        .order_by(col(CsHealthSnapshot.id).desc())
    ).first()
    reused = snapshot is not None and snapshot.inputs_hash == digest
    if not reused:
        snapshot = snapshot or CsHealthSnapshot(
            client_id=client.id, as_of=as_of, score=0, band="", components="", weights="", inputs_hash=""
        )
        snapshot.score = score
        snapshot.band = maths.band(score, hs.bands)
        snapshot.components = json.dumps({c.name: c.score for c in components})
        snapshot.weights = json.dumps(weights)
        snapshot.missing = json.dumps(missing)
        snapshot.inputs_hash = digest
        session.add(snapshot)
        session.flush()
    assert snapshot is not None
    assert snapshot.id is not None
    return HealthResult(
        client_id=client.id,
        as_of=as_of,
        score=snapshot.score,
        band=snapshot.band,
        unscored_reason=None,
        components=components,
        missing=missing,
        inputs_hash=digest,
        snapshot_id=snapshot.id,
        reused=reused,
    )


def _unscored(
    session: Session, client: CsClient, as_of: date, components: list[ComponentScore], hs: HealthSettings
) -> HealthResult:
    """No score: none of the required components has data. Nothing is stored, and a snapshot of
    the same day scored from data that is gone is removed, so no list shows a stale number."""
    assert client.id is not None
    stale = session.exec(
        select(CsHealthSnapshot).where(
            CsHealthSnapshot.client_id == client.id, CsHealthSnapshot.as_of == as_of
        )
    ).all()
    for row in stale:
        session.delete(row)
    session.flush()
    needed = " or ".join(hs.required_any)
    return HealthResult(
        client_id=client.id,
        as_of=as_of,
        score=None,
        band=None,
        unscored_reason=f"Not scored: needs data for {needed} (record_usage_events, import_mixpanel_usage).",
        components=components,
        missing=sorted(c.name for c in components if c.score is None),
        inputs_hash=inputs_hash(components, hs),
        snapshot_id=None,
        reused=False,
    )


def latest_snapshot_id(as_of: date | None = None) -> Any:
    """SQL: the id of the outer query's client's latest snapshot (on or before `as_of`), or NULL.

    Correlated to `cs_client`, so a list can join each client to its latest snapshot and filter or
    page on its band in SQL.
    """
    query = select(CsHealthSnapshot.id).where(col(CsHealthSnapshot.client_id) == col(CsClient.id))
    if as_of is not None:
        query = query.where(CsHealthSnapshot.as_of <= as_of)
    return (
        query.order_by(col(CsHealthSnapshot.as_of).desc(), col(CsHealthSnapshot.id).desc())
        .limit(1)
        .correlate(CsClient)
        .scalar_subquery()
    )


def latest_snapshots(
    session: Session, client_ids: list[int] | None = None, as_of: date | None = None
) -> dict[int, CsHealthSnapshot]:
    """The most recent stored snapshot per client (on or before `as_of` when given)."""
    query = select(CsHealthSnapshot)
    if client_ids is not None:
        if not client_ids:
            return {}
        query = query.where(col(CsHealthSnapshot.client_id).in_(client_ids))
    if as_of is not None:
        query = query.where(CsHealthSnapshot.as_of <= as_of)
    query = query.order_by(
        col(CsHealthSnapshot.client_id), col(CsHealthSnapshot.as_of).desc(), col(CsHealthSnapshot.id).desc()
    )
    out: dict[int, CsHealthSnapshot] = {}
    for snap in session.exec(query):
        out.setdefault(snap.client_id, snap)
    return out
