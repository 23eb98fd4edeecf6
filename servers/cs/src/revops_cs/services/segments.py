"""Segments of the live clients: value tiers, RFM, lifecycle, health band, and saved custom rules.

A custom rule is a list of field/op/value conditions, all of which must hold (AND). The maths of
tiers, quintiles and lifecycle segments is in `analytics.segmentation`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.params import SingleLine, end_of_day
from revops_cs.analytics import segmentation as seg
from revops_cs.models.clients import CsClient
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.usage import CsSegmentRule
from revops_cs.output import LeanIn, Out
from revops_cs.services import thresholds
from revops_cs.services.clients import live_ids
from revops_cs.services.health import latest_snapshots

ConditionField = Literal[
    "tier",
    "stage",
    "owner",
    "plan",
    "currency",
    "arr_minor",
    "seats_purchased",
    "days_to_renewal",
    "health_score",
    "health_band",
]
CONDITION_FIELDS: tuple[str, ...] = get_args(ConditionField)
Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
SegmentBy = Literal["value_tier", "rfm", "lifecycle", "health_band", "custom"]
Labels = dict[int, tuple[str, dict[str, Any]]]
"""client id → (segment label, the facts that put it there)."""


Line = Annotated[str, SingleLine]


class Condition(LeanIn):
    """One test on a client field, e.g. {"field": "arr_minor", "op": "gte", "value": 5000000}."""

    field: ConditionField = Field(description="Client field.")
    op: Op = Field(description="Comparison.")
    value: Line | float | list[Line | float] = Field(description="Value (a list for op=in).")


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


# --------------------------------------------------------------------------- custom conditions


def field_value(field: str, client: CsClient, snapshot: CsHealthSnapshot | None, as_of: date) -> Any:
    if field == "days_to_renewal":
        return (client.renewal_date - as_of).days if client.renewal_date else None
    if field == "health_score":
        return snapshot.score if snapshot else None
    if field == "health_band":
        return snapshot.band if snapshot else None
    return getattr(client, field)


def _test(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return False  # no data never matches: a rule cannot claim facts we do not have
    if op == "in":
        values = expected if isinstance(expected, list) else [expected]
        return actual in values or str(actual) in [str(v) for v in values]
    if op in ("eq", "ne"):
        same = actual == expected or str(actual) == str(expected)
        return same if op == "eq" else not same
    try:
        a, b = float(actual), float(expected)
    except (TypeError, ValueError):
        return False
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def evaluate(
    conditions: list[Condition], client: CsClient, snapshot: CsHealthSnapshot | None, as_of: date
) -> tuple[bool, dict[str, Any]]:
    """(all conditions hold, the field values tested)."""
    facts: dict[str, Any] = {c.field: field_value(c.field, client, snapshot, as_of) for c in conditions}
    return all(_test(facts[c.field], c.op, c.value) for c in conditions), facts


def rule_conditions(text: str) -> list[Condition]:
    return [Condition.model_validate(item) for item in json.loads(text)]


# --------------------------------------------------------------------------- segmentations


def segmentation(
    by: str, clients: list[CsClient], labels: Labels, limit: int, rule: str | None = None
) -> Segmentation:
    """Counts and ARR per segment, the first `limit` members, and the clients without data."""
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


def value_tiers(clients: list[CsClient], method: str, a_min: int | None, b_min: int | None) -> Labels:
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


def _rfm(session: Session, clients: list[CsClient], day: date) -> Labels:
    rows = session.exec(
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
        .group_by(col(CsBillingEvent.client_id))
    ).all()
    r = {cid: float((day - last.date()).days) for cid, last, _, _ in rows}
    f = {cid: float(n) for cid, _, n, _ in rows}
    m = {cid: float(total or 0) for cid, _, _, total in rows}
    return {
        cid: (
            f"R{rs}F{fs}M{ms}",
            {"recency_days": int(r[cid]), "payments": int(f[cid]), "paid_minor": int(m[cid])},
        )
        for cid, (rs, fs, ms) in seg.rfm(r, f, m).items()
    }


def _lifecycle(session: Session, clients: list[CsClient], day: date) -> Labels:
    mature_days = thresholds.load(session, thresholds.Onboarding).mature_days
    return {
        c.id or 0: (
            seg.lifecycle_segment(
                stage=c.stage,
                contract_start=c.contract_start,
                renewal_date=c.renewal_date,
                as_of=day,
                mature_days=mature_days,
            ),
            {"stage": c.stage, "contract_start": str(c.contract_start), "renewal_date": str(c.renewal_date)},
        )
        for c in clients
    }


def _matches(
    session: Session, tenant: str, clients: list[CsClient], conditions: list[Condition], day: date
) -> Labels:
    snaps = latest_snapshots(session, live_ids(tenant), day)  # `clients` are the tenant's live ones
    labels: Labels = {}
    for c in clients:
        matched, facts = evaluate(conditions, c, snaps.get(c.id or 0), day)
        labels[c.id or 0] = ("match" if matched else "no_match", facts)
    return labels


def _saved_rule(session: Session, tenant: str, name: str) -> list[Condition]:
    rule = session.exec(
        select(CsSegmentRule).where(CsSegmentRule.tenant == tenant, CsSegmentRule.name == name)
    ).first()
    if rule is None:
        raise NotFound(f"No saved rule '{name}'.", field="rule_name", hint="Save one with save_segment_rule.")
    return rule_conditions(rule.conditions)


def segment(
    session: Session,
    tenant: str,
    clients: list[CsClient],
    by: str,
    day: date,
    *,
    conditions: list[Condition] | None,
    rule_name: str | None,
    limit: int,
) -> Segmentation:
    """Segment `clients` one way; `custom` applies `conditions` or the saved rule `rule_name`."""
    if by != "custom" and (conditions or rule_name):
        raise ValidationFailed(
            "conditions/rule_name only apply to by=custom.",
            field="by",
            hint="Use by=custom or drop those parameters.",
        )
    if by == "value_tier":
        return segmentation(by, clients, value_tiers(clients, "abc", None, None), limit)
    if by == "rfm":
        return segmentation(by, clients, _rfm(session, clients, day), limit)
    if by == "lifecycle":
        return segmentation(by, clients, _lifecycle(session, clients, day), limit)
    if by == "health_band":
        snaps = latest_snapshots(session, live_ids(tenant), day)
        labels = {cid: (s.band, {"score": s.score, "snapshot": str(s.as_of)}) for cid, s in snaps.items()}
        return segmentation(by, clients, labels, limit)
    if bool(conditions) == bool(rule_name):
        raise ValidationFailed(
            "Give either conditions or rule_name.",
            field="conditions",
            hint=f"Condition fields: {', '.join(CONDITION_FIELDS)}.",
        )
    used = conditions if conditions else _saved_rule(session, tenant, rule_name or "")
    return segmentation(
        "custom", clients, _matches(session, tenant, clients, used, day), limit, rule=rule_name
    )


def save_rule(
    session: Session,
    tenant: str,
    actor: str,
    clients: list[CsClient],
    name: str,
    conditions: list[Condition],
    day: date,
    *,
    limit: int,
) -> Segmentation:
    """Store a custom rule under a new name; return who matches it now."""
    exists = session.exec(
        select(CsSegmentRule.id).where(CsSegmentRule.tenant == tenant, CsSegmentRule.name == name)
    ).first()
    if exists is not None:
        raise Conflict(f"A rule named '{name}' exists.", field="name", hint="Choose another name.")
    session.add(
        CsSegmentRule(
            tenant=tenant,
            name=name,
            created_by=actor,
            conditions=json.dumps([c.model_dump() for c in conditions]),
        )
    )
    session.flush()
    return segmentation(
        "custom", clients, _matches(session, tenant, clients, conditions, day), limit, rule=name
    )
