"""The ideal customer profile (one per tenant): its weighted criteria and the intent settings."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.outputs import Out
from revops_core.params import SingleLine, WholeNumber
from revops_sales.analytics.lead_scoring import Criterion, IntentSettings
from revops_sales.models.leads import SalesIcp

Line = Annotated[str, SingleLine]
Whole = Annotated[int, WholeNumber]
Employees = Annotated[int, Field(ge=0, le=10**9), WholeNumber]
CriterionField = Literal["industry", "country", "region", "source", "employees", "title"]


class CriterionIn(BaseModel):
    field: CriterionField
    weight: float = Field(gt=0, le=1000)
    values: list[Annotated[Line, Field(max_length=100)]] = Field(
        default_factory=list, max_length=100, description="Equality fields: any of."
    )
    keywords: list[Annotated[Line, Field(max_length=100)]] = Field(
        default_factory=list, max_length=100, description="title: any substring."
    )
    min: Employees | None = Field(default=None, description="employees: at least.")
    max: Employees | None = Field(default=None, description="employees: at most.")


class KindCap(BaseModel):
    kind: Line = Field(min_length=1, max_length=50)
    cap: float = Field(gt=0, le=100, description="Points per day.")


class IntentIn(BaseModel):
    half_life_days: float = Field(default=14.0, gt=0, le=365)
    window_days: Whole = Field(default=30, ge=1, le=365, description="Days of events counted.")
    default_daily_cap: float = Field(default=20.0, gt=0, le=100, description="Per kind.")
    daily_caps: list[KindCap] = Field(default_factory=list, max_length=100, description="Caps by kind.")
    mql_fit: float = Field(default=40.0, ge=0, le=100, description="MQL fit threshold.")
    mql_intent: float = Field(default=50.0, ge=0, le=100, description="MQL intent threshold.")


class IcpOut(Out):
    criteria: list[CriterionIn] = Field(description="Weighted criteria.")
    intent: IntentIn = Field(description="Intent scoring settings.")
    updated_at: datetime | None = Field(description="Last changed (UTC); null: never configured.")


def _check(criteria: list[CriterionIn]) -> None:
    for i, c in enumerate(criteria):
        where = f"criteria[{i}]"
        if c.field == "employees":
            if c.min is None and c.max is None:
                raise ValidationFailed(f"{where}: give min and/or max employees.", field="criteria")
            if c.min is not None and c.max is not None and c.min > c.max:
                raise ValidationFailed(f"{where}: min is above max.", field="criteria")
        elif c.field == "title":
            if not [k for k in c.keywords if k.strip()]:
                raise ValidationFailed(f"{where}: title needs keywords.", field="criteria")
        elif not [v for v in c.values if v.strip()]:
            raise ValidationFailed(f"{where}: {c.field} needs values.", field="criteria")


def save(session: Session, tenant: str, criteria: list[CriterionIn], intent: IntentIn | None) -> IcpOut:
    if not criteria:
        raise ValidationFailed("Give at least one criterion.", field="criteria")
    _check(criteria)
    kinds = [c.kind for c in intent.daily_caps] if intent else []
    if len(set(kinds)) != len(kinds):
        raise ValidationFailed("A kind has two daily caps.", field="intent")
    row = session.exec(select(SalesIcp).where(SalesIcp.tenant == tenant)).first()
    if row is None:
        row = SalesIcp(tenant=tenant, criteria="[]")
    row.criteria = json.dumps([c.model_dump() for c in criteria])
    if intent is not None:
        row.intent_settings = intent.model_dump_json()
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return _out(row)


def _out(row: SalesIcp | None) -> IcpOut:
    if row is None:
        return IcpOut(criteria=[], intent=IntentIn(), updated_at=None)
    return IcpOut(
        criteria=[CriterionIn.model_validate(c) for c in json.loads(row.criteria)],
        intent=IntentIn.model_validate_json(row.intent_settings or "{}"),
        updated_at=row.updated_at,
    )


def load(session: Session, tenant: str) -> IcpOut:
    return _out(session.exec(select(SalesIcp).where(SalesIcp.tenant == tenant)).first())


def criteria_of(icp: IcpOut) -> list[Criterion]:
    return [
        Criterion(
            field=c.field,
            weight=c.weight,
            values=tuple(v.strip() for v in c.values if v.strip()),
            keywords=tuple(k.strip() for k in c.keywords if k.strip()),
            min=c.min,
            max=c.max,
        )
        for c in icp.criteria
    ]


def intent_settings_of(icp: IcpOut) -> IntentSettings:
    i = icp.intent
    return IntentSettings(
        half_life_days=i.half_life_days,
        window_days=i.window_days,
        default_daily_cap=i.default_daily_cap,
        daily_caps={c.kind: c.cap for c in i.daily_caps},
        mql_fit=i.mql_fit,
        mql_intent=i.mql_intent,
    )
