"""Adoption: the feature catalogue, adoption milestones, and who reached what, from stored usage events."""

from __future__ import annotations

import json
import statistics
from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.params import end_of_day
from revops_cs.models.clients import CsClient
from revops_cs.models.usage import CsFeature, CsMilestoneDef, CsUsageEvent
from revops_cs.output import Out

MilestoneKind = Literal["logins", "active_users", "features_used", "event_count"]
MILESTONE_KINDS: tuple[str, ...] = get_args(MilestoneKind)


class FeatureOut(Out):
    key: str = Field(description="Feature key (matches usage events' feature).")
    name: str = Field(description="Display name.")
    tiers: list[str] = Field(description="Eligible tiers; empty = every tier.")


class MilestoneDef(Out):
    key: str = Field(description="Milestone key.")
    name: str = Field(description="Display name.")
    kind: str = Field(description="What is counted: " + ", ".join(MILESTONE_KINDS) + ".")
    threshold: int = Field(description="Count to reach.")
    event: str | None = Field(description="Event counted (kind=event_count).")


DEFAULT_MILESTONES: tuple[MilestoneDef, ...] = (
    MilestoneDef(key="first_login", name="First login", kind="logins", threshold=1, event=None),
    MilestoneDef(
        key="ten_active_users", name="10 active users", kind="active_users", threshold=10, event=None
    ),
    MilestoneDef(key="three_features", name="3 features used", kind="features_used", threshold=3, event=None),
)
"""Used while a tenant has defined none of its own."""


class MilestoneStatus(Out):
    key: str = Field(description="Milestone key.")
    name: str = Field(description="Milestone name.")
    achieved_at: datetime | None = Field(description="When reached; null if not yet.")


class ClientMilestones(Out):
    client_id: int = Field(description="Client id.")
    achieved: int = Field(description="Milestones reached.")
    milestones: list[MilestoneStatus] = Field(description="Each milestone.")


class Milestones(Out):
    as_of: date = Field(description="Usage up to this date.")
    definitions: list[MilestoneDef] = Field(description="Definitions used.")
    defaults_used: bool = Field(description="Defaults used (none defined).")
    clients: list[ClientMilestones] = Field(description="Per client.")


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


# --------------------------------------------------------------------------- definitions


def define_feature(session: Session, tenant: str, key: str, name: str, tiers: list[str] | None) -> FeatureOut:
    if session.exec(select(CsFeature.id).where(CsFeature.tenant == tenant, CsFeature.key == key)).first():
        raise Conflict(f"Feature '{key}' already exists.", field="key", hint="Use another key.")
    session.add(CsFeature(tenant=tenant, key=key, name=name, tiers=json.dumps(tiers or [])))
    session.flush()
    return FeatureOut(key=key, name=name, tiers=list(tiers or []))


def define_milestone(
    session: Session, tenant: str, *, key: str, name: str, kind: str, threshold: int, event: str | None
) -> MilestoneDef:
    if kind == "event_count" and not event:
        raise ValidationFailed(
            "event is required for kind=event_count.", field="event", hint="e.g. 'report_run'."
        )
    taken = session.exec(
        select(CsMilestoneDef.id).where(CsMilestoneDef.tenant == tenant, CsMilestoneDef.key == key)
    ).first()
    if taken:
        raise Conflict(f"Milestone '{key}' already exists.", field="key", hint="Use another key.")
    row = CsMilestoneDef(
        tenant=tenant,
        key=key,
        name=name,
        kind=kind,
        threshold=threshold,
        event=event if kind == "event_count" else None,
    )
    session.add(row)
    session.flush()
    return MilestoneDef.model_validate(row)


# --------------------------------------------------------------------------- reports


def _achieved(session: Session, client_id: int, d: MilestoneDef, day: date) -> datetime | None:
    """The time the threshold-th login / distinct user / distinct feature / named event happened."""
    base = (CsUsageEvent.client_id == client_id) & (CsUsageEvent.occurred_at < end_of_day(day))
    n = d.threshold
    if d.kind in ("logins", "event_count"):
        name = "login" if d.kind == "logins" else d.event
        return session.exec(
            select(CsUsageEvent.occurred_at)
            .where(base, CsUsageEvent.event == name)
            .order_by(col(CsUsageEvent.occurred_at))
            .offset(n - 1)
            .limit(1)
        ).first()
    column = CsUsageEvent.user_ref if d.kind == "active_users" else CsUsageEvent.feature
    extra = (
        (CsUsageEvent.event == "login")
        if d.kind == "active_users"
        else col(CsUsageEvent.feature).is_not(None)
    )
    firsts = sorted(
        session.exec(select(func.min(CsUsageEvent.occurred_at)).where(base, extra).group_by(column))
    )
    return firsts[n - 1] if len(firsts) >= n else None


def milestones(session: Session, tenant: str, clients: list[CsClient], day: date) -> Milestones:
    """Each client's progress on the tenant's milestones (the defaults while none are defined)."""
    rows = [
        MilestoneDef.model_validate(r)
        for r in session.exec(
            select(CsMilestoneDef).where(CsMilestoneDef.tenant == tenant).order_by(col(CsMilestoneDef.id))
        )
    ]
    defs = rows or list(DEFAULT_MILESTONES)
    out = []
    for c in clients:
        statuses = [
            MilestoneStatus(key=d.key, name=d.name, achieved_at=_achieved(session, c.id or 0, d, day))
            for d in defs
        ]
        out.append(
            ClientMilestones(
                client_id=c.id or 0, achieved=sum(1 for s in statuses if s.achieved_at), milestones=statuses
            )
        )
    return Milestones(as_of=day, definitions=defs, defaults_used=not rows, clients=out)


def feature_adoption(session: Session, tenant: str, clients: list[CsClient], day: date) -> AdoptionReport:
    """Per catalogue feature: adopters ÷ eligible clients, median days from contract start to first use."""
    features = list(
        session.exec(select(CsFeature).where(CsFeature.tenant == tenant).order_by(col(CsFeature.key)))
    )
    if not features:
        raise NotFound(
            "The feature catalogue is empty.", field="features", hint="Add features with define_feature."
        )
    firsts = session.exec(
        select(CsUsageEvent.client_id, CsUsageEvent.feature, func.min(CsUsageEvent.occurred_at))
        .where(
            col(CsUsageEvent.feature).in_([f.key for f in features]),
            CsUsageEvent.occurred_at < end_of_day(day),
        )
        .group_by(col(CsUsageEvent.client_id), col(CsUsageEvent.feature))
    ).all()
    first_use = {(cid, feat): at.date() for cid, feat, at in firsts}
    out = []
    for f in features:
        tiers: list[Any] = json.loads(f.tiers)
        eligible = [c for c in clients if not tiers or c.tier in tiers]
        adopters = [c for c in eligible if (c.id or 0, f.key) in first_use]
        waits = [
            (first_use[(c.id or 0, f.key)] - c.contract_start).days for c in adopters if c.contract_start
        ]
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
