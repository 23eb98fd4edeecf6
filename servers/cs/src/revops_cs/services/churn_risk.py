"""Rule-based churn risk: each client's points with their evidence, as of a day.

`assess` is the one verdict the churn-risk list, renewals, campaigns and post-mortems share.
"""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

from pydantic import Field
from sqlmodel import Session

from revops_cs.analytics import churn_rules
from revops_cs.models.clients import CsClient, Tier
from revops_cs.output import Out
from revops_cs.services import thresholds
from revops_cs.services.clients import get_client
from revops_cs.services.signals import History, live_clients, load_histories

Level = churn_rules.Level
LEVELS: tuple[Level, ...] = get_args(Level)


class RulePoints(Out):
    rule: str = Field(description="Rule name.")
    points: int = Field(description="Points awarded.")
    max_points: int = Field(description="Points the rule can award.")
    evidence: str = Field(description="Numbers and dates.")


class ClientRisk(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    score: int = Field(description="Risk points, capped at 100.")
    level: Level = Field(description="high/medium/low.")
    rules: list[RulePoints] = Field(description="Rules with points and evidence.")


class ChurnRiskResult(Out):
    as_of: date = Field(description="As-of date.")
    evaluated: int = Field(description="Clients evaluated.")
    counts: dict[str, int] = Field(description="Clients per level.")
    clients: list[ClientRisk] = Field(description="Ranked clients.")
    thresholds: dict[str, Any] = Field(description="Thresholds used.")


def assess(h: History, as_of: date, cfg: churn_rules.ChurnRules) -> ClientRisk:
    """The rules' verdict for one client on one day."""
    hits = churn_rules.evaluate(h.risk_facts(as_of, cfg), cfg)
    points = churn_rules.score(hits)
    return ClientRisk(
        client_id=h.client.id or 0,
        name=h.client.name,
        score=points,
        level=churn_rules.level(points, cfg),
        rules=[RulePoints.model_validate(hit) for hit in hits],
    )


def select_clients(session: Session, tenant: str, client_id: int | None, tier: Tier | None) -> list[CsClient]:
    """One client (not_found when unknown), or every live client of the tenant, optionally one tier."""
    if client_id is not None:
        return [get_client(session, client_id)]
    return [c for c in live_clients(session, tenant) if tier is None or c.tier == tier]


def at_level(session: Session, clients: list[CsClient], day: date, level: Level) -> list[CsClient]:
    """The clients the rules put at `level` on `day` (campaign targeting)."""
    cfg = thresholds.load(session, churn_rules.ChurnRules)
    histories = load_histories(session, clients)
    return [c for c in clients if assess(histories[c.id or 0], day, cfg).level == level]


def ranked(
    session: Session,
    tenant: str,
    *,
    client_id: int | None,
    tier: Tier | None,
    level: Level | None,
    day: date,
    limit: int,
) -> ChurnRiskResult:
    """Every selected client scored, highest risk first; counts cover all, `clients` the top `limit`."""
    cfg = thresholds.load(session, churn_rules.ChurnRules)
    histories = load_histories(session, select_clients(session, tenant, client_id, tier))
    risks = sorted((assess(h, day, cfg) for h in histories.values()), key=lambda r: (-r.score, r.client_id))
    counts: dict[str, int] = {lv: sum(1 for r in risks if r.level == lv) for lv in LEVELS}
    shown = [r for r in risks if level is None or r.level == level][:limit]
    return ChurnRiskResult(
        as_of=day, evaluated=len(risks), counts=counts, clients=shown, thresholds=cfg.model_dump()
    )
