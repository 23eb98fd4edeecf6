"""Lead routing: territory rules (first match by country/region/industry), round robin within the
matched pool (or the whole rep pool), and a cap on each rep's open leads.

Deterministic: the pool is an ordered list and a stored cursor says which slot is next. Concurrency:
the pool's cursor row is locked (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's write transaction
already holds the database lock) before capacity is counted and the slot is taken, so two routes
never take one slot. A rep shared by two territories is capacity-checked per route; two routes in
different pools at the same instant can both see the rep's last free place (documented limit).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import Conflict, ValidationFailed
from revops_core.outputs import Out
from revops_core.params import SingleLine, WholeNumber
from revops_sales.models.leads import (
    SalesLead,
    SalesLeadRouting,
    SalesRoutingCursor,
    SalesRoutingRep,
    SalesRoutingRule,
)
from revops_sales.services import leads

WHOLE_POOL = "*"
Line = Annotated[str, SingleLine]
Names = list[Annotated[Line, Field(min_length=1, max_length=200)]]
OPEN_STATUSES = ("new", "working", "qualified")


class RepIn(BaseModel):
    rep: Line = Field(min_length=1, max_length=200)
    max_open_leads: Annotated[int, Field(ge=0, le=100_000), WholeNumber] | None = None


class RuleIn(BaseModel):
    name: Line = Field(min_length=1, max_length=100)
    countries: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]] = Field(
        default_factory=list, max_length=300, description="ISO codes."
    )
    regions: Names = Field(default_factory=list, max_length=100)
    industries: Names = Field(default_factory=list, max_length=100)
    reps: Names = Field(min_length=1, max_length=100, description="In order.")


class RoutingConfigOut(Out):
    reps: list[RepIn] = Field(description="Rep pool in round-robin order.")
    rules: list[RuleIn] = Field(description="Territory rules, first match wins.")


class RouteOut(Out):
    lead_id: int = Field(description="Lead routed.")
    rep: str = Field(description="Rep chosen (now the lead's owner).")
    method: str = Field(description="territory or round_robin.")
    rule: str | None = Field(description="Territory rule that matched.")
    slot: int = Field(description="Round-robin slot taken (0-based within the pool).")
    explanation: str = Field(description="Why this rep.")
    routed_at: datetime = Field(description="When (UTC).")


def configure(session: Session, tenant: str, reps: list[RepIn], rules: list[RuleIn]) -> RoutingConfigOut:
    """Replace the rep pool and the territory rules; round-robin cursors start again at slot 0."""
    if not reps:
        raise ValidationFailed("Give at least one rep.", field="reps")
    names = [r.rep for r in reps]
    if len(set(names)) != len(names):
        raise ValidationFailed("A rep is listed twice.", field="reps")
    for i, rule in enumerate(rules):
        unknown = [r for r in rule.reps if r not in names]
        if unknown:
            raise ValidationFailed(
                f"rules[{i}] names reps not in the pool: {', '.join(unknown)}.",
                field="rules",
                hint="Add them to reps.",
            )
        if len(set(rule.reps)) != len(rule.reps):
            raise ValidationFailed(f"rules[{i}] lists a rep twice.", field="rules")
        if not (rule.countries or rule.regions or rule.industries):
            raise ValidationFailed(f"rules[{i}] has no condition.", field="rules")
    # Old routing decisions keep their rule id; detach them before the rules are replaced.
    old_rules = select(SalesRoutingRule.id).where(SalesRoutingRule.tenant == tenant)
    session.execute(
        update(SalesLeadRouting).where(col(SalesLeadRouting.rule_id).in_(old_rules)).values(rule_id=None)
    )
    session.execute(delete(SalesRoutingRule).where(col(SalesRoutingRule.tenant) == tenant))
    session.execute(delete(SalesRoutingRep).where(col(SalesRoutingRep.tenant) == tenant))
    session.execute(delete(SalesRoutingCursor).where(col(SalesRoutingCursor.tenant) == tenant))
    session.flush()
    session.add_all(
        SalesRoutingRep(tenant=tenant, rep=r.rep, position=i, max_open_leads=r.max_open_leads)
        for i, r in enumerate(reps)
    )
    cursors = [WHOLE_POOL]
    for i, rule in enumerate(rules):
        row = SalesRoutingRule(
            tenant=tenant,
            name=rule.name,
            position=i,
            countries=json.dumps([c.upper() for c in rule.countries]),
            regions=json.dumps(rule.regions),
            industries=json.dumps(rule.industries),
            reps=json.dumps(rule.reps),
        )
        session.add(row)
        session.flush()
        cursors.append(f"rule:{row.id}")
    session.add_all(SalesRoutingCursor(tenant=tenant, pool=pool, next_slot=0) for pool in cursors)
    session.flush()
    return RoutingConfigOut(reps=reps, rules=rules)


def _matches(rule: SalesRoutingRule, lead: SalesLead) -> list[str] | None:
    """The conditions the lead met (every non-empty one must), or None."""
    met: list[str] = []
    for label, allowed, value in (
        ("country", json.loads(rule.countries), (lead.country or "").upper()),
        ("region", json.loads(rule.regions), lead.region),
        ("industry", json.loads(rule.industries), lead.industry),
    ):
        if not allowed:
            continue
        folded = {str(a).casefold() for a in allowed}
        if value is None or str(value).casefold() not in folded:
            return None
        met.append(f"{label} {value}")
    return met


def _open_counts(session: Session, tenant: str, reps: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(SalesLead.owner, func.count())
        .where(
            SalesLead.tenant == tenant,
            col(SalesLead.deleted_at).is_(None),
            col(SalesLead.status).in_(OPEN_STATUSES),
            col(SalesLead.owner).in_(reps),
        )
        .group_by(SalesLead.owner)
    ).all()
    return {str(owner): int(n) for owner, n in rows}


def route(session: Session, tenant: str, lead_id: int) -> RouteOut:
    lead = leads.get(session, tenant, lead_id)
    if lead.status not in OPEN_STATUSES:
        raise Conflict(f"Lead {lead_id} is {lead.status}; only open leads are routed.", field="lead_id")
    if lead.owner is not None:
        raise Conflict(
            f"Lead {lead_id} is already owned by {lead.owner}.",
            field="lead_id",
            hint="Clear or change the owner with save_lead.",
        )
    pool_reps = session.exec(
        select(SalesRoutingRep)
        .where(SalesRoutingRep.tenant == tenant)
        .order_by(col(SalesRoutingRep.position))
    ).all()
    if not pool_reps:
        raise ValidationFailed(
            "No routing configured.", field="lead_id", hint="Run configure_prospecting action=routing."
        )
    rules = session.exec(
        select(SalesRoutingRule)
        .where(SalesRoutingRule.tenant == tenant)
        .order_by(col(SalesRoutingRule.position))
    ).all()
    matched = next(((r, m) for r in rules if (m := _matches(r, lead)) is not None), None)
    if matched is not None:
        rule, met = matched
        candidates: list[str] = json.loads(rule.reps)
        pool, why = f"rule:{rule.id}", f"territory {rule.name!r} ({', '.join(met)})"
    else:
        rule, candidates = None, [r.rep for r in pool_reps]
        pool, why = WHOLE_POOL, "no territory matched: whole pool"
    cursor = session.exec(
        select(SalesRoutingCursor)
        .where(SalesRoutingCursor.tenant == tenant, SalesRoutingCursor.pool == pool)
        .with_for_update()
    ).one()
    caps = {r.rep: r.max_open_leads for r in pool_reps}
    counts = _open_counts(session, tenant, candidates)
    skipped: list[str] = []
    size = len(candidates)
    for step in range(size):
        slot = (cursor.next_slot + step) % size
        rep = candidates[slot]
        cap, open_now = caps.get(rep), counts.get(rep, 0)
        if cap is not None and open_now >= cap:
            skipped.append(f"{rep} at capacity {open_now}/{cap}")
            continue
        break
    else:
        raise Conflict(
            f"Every rep of the {why} is at capacity: " + "; ".join(skipped) + ".",
            field="lead_id",
            hint="Raise max_open_leads or close leads first.",
        )
    cursor.next_slot = (slot + 1) % size
    session.add(cursor)
    explanation = f"{why}; round robin slot {slot + 1} of {size} → {rep}"
    if skipped:
        explanation += " (skipped " + "; ".join(skipped) + ")"
    now = utcnow()
    lead.owner, lead.updated_at = rep, now
    session.add(lead)
    method = "territory" if rule is not None else "round_robin"
    session.add(
        SalesLeadRouting(
            tenant=tenant,
            lead_id=lead_id,
            rep=rep,
            method=method,
            rule_id=rule.id if rule else None,
            slot=slot,
            explanation=explanation,
            routed_at=now,
        )
    )
    session.flush()
    return RouteOut(
        lead_id=lead_id,
        rep=rep,
        method=method,
        rule=rule.name if rule else None,
        slot=slot,
        explanation=explanation,
        routed_at=now,
    )
