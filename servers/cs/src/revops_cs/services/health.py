"""Compute a client's health score from stored facts, explain it, and store it as a snapshot.

`health_facts.gather` reads the facts (set-based, for one client or a portfolio), `evaluate` scores
them without touching the database, and `store` writes the snapshots in bulk — so a portfolio
recompute can read outside the write transaction and hold the write lock only to store. Other
toolsets call `compute_health` (churn rule "renewal within 90 days and health < 70", expansion
signal "health ≥ 80"); `latest_snapshots` gives the stored bands without recomputing. The recipe
per component is documented in `revops_cs.services.health_settings`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import Field
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.settings import Settings
from revops_cs.analytics import health as maths
from revops_cs.models.clients import CsClient
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.output import Out
from revops_cs.services.health_facts import ClientFacts, Facts, Scope, Scorable, gather
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


@dataclass(slots=True)
class Part:
    """One component's sub-score while scoring (plain: a portfolio builds six per client); becomes a
    `ComponentScore` only when a client's explained result is returned."""

    name: str
    score: float | None
    weight: float
    inputs: dict[str, Any]
    explanation: str
    effective_weight_pct: float | None = None


@dataclass(slots=True)
class Scored:
    """One client's score before and after storing (`snapshot_id`, `reused` are set by `store`)."""

    client_id: int
    as_of: date
    score: float | None
    band: str | None
    unscored_reason: str | None
    parts: list[Part]
    missing: list[str]
    inputs_hash: str
    snapshot_id: int | None = None
    reused: bool = False

    def result(self) -> HealthResult:
        return HealthResult(
            client_id=self.client_id,
            as_of=self.as_of,
            score=self.score,
            band=self.band,
            unscored_reason=self.unscored_reason,
            components=[
                ComponentScore(
                    name=p.name,
                    score=p.score,
                    weight=p.weight,
                    effective_weight_pct=p.effective_weight_pct,
                    inputs=p.inputs,
                    explanation=p.explanation,
                )
                for p in self.parts
            ],
            missing=self.missing,
            inputs_hash=self.inputs_hash,
            snapshot_id=self.snapshot_id,
            reused=self.reused,
        )


def resolve_health_settings(settings: Settings | HealthSettings | None) -> HealthSettings:
    return settings if isinstance(settings, HealthSettings) else health_settings()


def _usage(client: Scorable, facts: ClientFacts, hs: HealthSettings) -> Part:
    target = hs.usage_target_share.get(client.tier)
    inputs = {
        "seats_purchased": client.seats_purchased,
        "active_users": facts.active_users,
        "window_days": hs.usage_window_days,
        "target_active_share": target,
        "events_ever": facts.usage_events_ever,
    }
    if not client.seats_purchased or target is None or target <= 0:
        why = (
            "seats_purchased is not set"
            if not client.seats_purchased
            else f"no target for tier {client.tier}"
        )
        return _missing("usage", hs, inputs, f"No data: {why}.")
    if facts.usage_events_ever == 0:
        return _missing("usage", hs, inputs, "No data: no usage events recorded for this client yet.")
    active, seats = facts.active_users, client.seats_purchased
    share = active / seats
    return _present(
        "usage",
        hs,
        inputs | {"active_share": round(share, 4)},
        maths.attainment(share, target),
        f"100·min(active users/seats ÷ target, 1) = 100·min({active}/{seats} ÷ {target}, 1)",
    )


def _engagement(as_of: date, facts: ClientFacts, hs: HealthSettings) -> Part:
    if facts.last_login is None:
        return _missing("engagement", hs, {"last_login": None}, "No data: no login events recorded.")
    last_day = facts.last_login.date()
    days = (as_of - last_day).days
    inputs = {"last_login": last_day.isoformat(), "days_since_last_login": days}
    return _present("engagement", hs, inputs, maths.recency_score(days), f"max(0, 100 − 2·{days})")


def _support(facts: ClientFacts, tickets_recorded: bool, hs: HealthSettings) -> Part:
    # Zero tickets is evidence only where tickets are recorded at all: with none for any client of
    # the tenant (no helpdesk connected), "no tickets" says nothing about this client.
    if not tickets_recorded:
        return _missing(
            "support",
            hs,
            {"tickets_opened": None},
            "No data: no tickets recorded for any client (create_ticket, sync_zendesk_tickets).",
        )
    n = facts.tickets_opened
    inputs = {"tickets_opened": n, "window_days": hs.support_window_days}
    return _present("support", hs, inputs, maths.tickets_score(n), f"max(0, 100 − 10·{n})")


def _sentiment(facts: ClientFacts, hs: HealthSettings) -> Part:
    scores = facts.nps_scores
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


def _adoption(eligible: list[str], facts: ClientFacts, hs: HealthSettings) -> Part:
    if not eligible:
        return _missing("adoption", hs, {"eligible_features": 0}, "No data: the feature catalogue is empty.")
    adopted = sorted(facts.used_features.intersection(eligible))
    inputs = {"eligible_features": len(eligible), "adopted_features": adopted}
    score = 100.0 * len(adopted) / len(eligible)
    return _present("adoption", hs, inputs, score, f"100·{len(adopted)}/{len(eligible)} features used")


def _contract(client: Scorable, as_of: date, facts: ClientFacts, hs: HealthSettings) -> Part:
    failed = facts.failed_payments
    days = (client.renewal_date - as_of).days if client.renewal_date else None
    inputs = {"failed_payments": failed, "window_days": hs.payment_window_days, "days_to_renewal": days}
    if facts.billing_events_ever == 0:
        # Without billing events a failed payment cannot be seen: 0 failures would be a guess.
        return _missing(
            "contract", hs, inputs, "No data: no billing events recorded for this client (record_billing)."
        )
    return _present("contract", hs, inputs | hs.contract_recipe, *hs.contract(failed, days))


def components_of(client: Scorable, as_of: date, facts: Facts, hs: HealthSettings) -> list[Part]:
    """Every component's sub-score for one client, in `COMPONENTS` order, from gathered facts."""
    mine = facts.of(client.id or 0)
    by_name = {
        "usage": _usage(client, mine, hs),
        "engagement": _engagement(as_of, mine, hs),
        "support": _support(mine, facts.tickets_recorded, hs),
        "sentiment": _sentiment(mine, hs),
        "adoption": _adoption(facts.eligible_features(client.tier), mine, hs),
        "contract": _contract(client, as_of, mine, hs),
    }
    return [by_name[name] for name in COMPONENTS]


def _present(name: str, hs: HealthSettings, inputs: dict[str, Any], score: float, how: str) -> Part:
    return Part(name, round(score, 2), hs.weights[name], inputs, how)


def _missing(name: str, hs: HealthSettings, inputs: dict[str, Any], why: str) -> Part:
    return Part(name, None, hs.weights[name], inputs, why)


def inputs_hash(components: list[Part], hs: HealthSettings) -> str:
    """SHA-256 over every component's inputs plus the weights, targets and bands used."""
    payload = {
        "inputs": {c.name: c.inputs for c in components},
        "weights": hs.weights,
        "targets": hs.usage_target_share,
        "bands": [hs.band_excellent, hs.band_good, hs.band_at_risk],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def evaluate(client: Scorable, as_of: date, facts: Facts, hs: HealthSettings) -> Scored:
    """Score one client from gathered facts; pure (nothing is read or stored: see `store`)."""
    assert client.id is not None
    components = components_of(client, as_of, facts, hs)
    digest = inputs_hash(components, hs)
    present = [c.name for c in components if c.score is not None and c.weight > 0]
    if not set(present) & set(hs.required_any):
        needed = " or ".join(hs.required_any)
        why = f"Not scored: needs data for {needed} (record_usage_events, import_mixpanel_usage)."
        missing = sorted(c.name for c in components if c.score is None)
        return Scored(client.id, as_of, None, None, why, components, missing, digest)
    weights = {c.name: c.weight for c in components}
    value, missing = maths.weighted_mean({c.name: c.score for c in components}, weights)
    shares = maths.effective_weights(present, weights)
    for c in components:
        c.effective_weight_pct = round(shares[c.name], 2) if c.name in shares else None
    score = round(value, 1)
    return Scored(client.id, as_of, score, maths.band(score, hs.bands), None, components, missing, digest)


def store(session: Session, scope: Scope, as_of: date, results: list[Scored]) -> None:
    """Store each scored result as its client's snapshot for `as_of`, in bulk; fills `reused` and
    `snapshot_id` in place (for a portfolio's newly inserted rows the id stays None: not read back).

    Same inputs → same hash → the stored snapshot is reused unchanged; changed inputs → the day's
    snapshot is rewritten; an unscored client's snapshot of that day (scored from data that is
    gone) is removed, so no list shows a stale number. Does not commit.
    """
    existing: dict[int, tuple[int, str]] = {}
    for snap_id, client_id, digest in session.exec(
        select(CsHealthSnapshot.id, CsHealthSnapshot.client_id, CsHealthSnapshot.inputs_hash)
        .where(scope.matches(CsHealthSnapshot.client_id), CsHealthSnapshot.as_of == as_of)
        .order_by(col(CsHealthSnapshot.id))
    ):
        existing[client_id] = (snap_id or 0, digest)  # the newest row of the day wins
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    stale: list[dict[str, Any]] = []
    now = utcnow()
    for r in results:
        old = existing.get(r.client_id)
        if r.score is None:
            if old is not None:
                stale.append({"snapshot_id": old[0]})
            continue
        if old is not None and old[1] == r.inputs_hash:
            r.snapshot_id, r.reused = old[0], True
            continue
        row = _snapshot_row(r) | {"computed_at": now}
        if old is None:
            inserts.append(row)
        else:
            r.snapshot_id = old[0]
            updates.append(row | {"snapshot_id": old[0]})
    # Core executemany statements: the ORM's bulk paths cost more than the database work here.
    table = CsHealthSnapshot.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    if stale:
        conn.execute(table.delete().where(table.c.id == bindparam("snapshot_id")), stale)
    if updates:
        conn.execute(table.update().where(table.c.id == bindparam("snapshot_id")), updates)
    if len(inserts) == 1:  # one client: its explained result names the snapshot
        results_by_client = {r.client_id: r for r in results}
        snap_id = conn.execute(table.insert().returning(table.c.id), inserts[0]).scalar_one()
        results_by_client[inserts[0]["client_id"]].snapshot_id = snap_id
    elif inserts:  # a portfolio: its lines carry no snapshot ids, so none are read back
        _bulk_insert(conn, table, inserts)


def _bulk_insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many snapshot rows in the caller's transaction: COPY on PostgreSQL (a quarter of a
    pipelined executemany's time at 10 000 rows), one executemany elsewhere. Multi-row VALUES
    statements were tried and were slower: compiling 9 000 binds cost more than they saved."""
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


@functools.lru_cache(maxsize=8)
def _weights_json(weights: tuple[tuple[str, float], ...]) -> str:
    """The weights column: the same few settings for every client of a run."""
    return json.dumps(dict(weights))


def _snapshot_row(r: Scored) -> dict[str, Any]:
    return {
        "client_id": r.client_id,
        "as_of": r.as_of,
        "score": r.score,
        "band": r.band,
        "components": json.dumps({p.name: p.score for p in r.parts}),
        "weights": _weights_json(tuple((p.name, p.weight) for p in r.parts)),
        "missing": json.dumps(r.missing),
        "inputs_hash": r.inputs_hash,
    }


def compute_health(
    session: Session, client: CsClient, as_of: date, settings: Settings | HealthSettings | None = None
) -> HealthResult:
    """Score one client as of a date from stored rows and store (or reuse) its snapshot for that date.

    The same queries as a portfolio recompute with a one-client scope, so both give the same numbers.
    Does not commit (the caller's transaction does).
    """
    hs = resolve_health_settings(settings)
    scope = Scope(client.tenant, client.id)
    scored = evaluate(client, as_of, gather(session, scope, as_of, hs), hs)
    store(session, scope, as_of, [scored])
    return scored.result()


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


def latest_snapshot(session: Session, client_id: int, as_of: date | None = None) -> CsHealthSnapshot | None:
    """One client's most recent stored snapshot (on or before `as_of` when given), or None."""
    query = select(CsHealthSnapshot).where(CsHealthSnapshot.client_id == client_id)
    if as_of is not None:
        query = query.where(CsHealthSnapshot.as_of <= as_of)
    order = (col(CsHealthSnapshot.as_of).desc(), col(CsHealthSnapshot.id).desc())
    return session.exec(query.order_by(*order).limit(1)).first()


def latest_snapshots(
    session: Session, among: Scope | Any, as_of: date | None = None
) -> dict[int, CsHealthSnapshot]:
    """The most recent stored snapshot (on or before `as_of` when given) of each client in `among`.

    `among` is a `health_facts.Scope` or a SQL selectable of client ids (`portfolio_ids(tenant)`,
    `services.clients.live_ids(tenant)`): each client in it joins its latest snapshot through
    `latest_snapshot_id`, so a portfolio of any size binds a constant number of parameters and
    loads one snapshot per client, not its history. One client: `latest_snapshot`.
    """
    in_scope = among.matches(CsClient.id) if isinstance(among, Scope) else col(CsClient.id).in_(among)
    query = (
        select(CsHealthSnapshot)
        .select_from(CsClient)
        .join(CsHealthSnapshot, col(CsHealthSnapshot.id) == latest_snapshot_id(as_of))
        .where(in_scope)
    )
    return {snap.client_id: snap for snap in session.exec(query)}
