"""Quotas per rep or team and period, and attainment and coverage against them."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import NotFound
from revops_core.outputs import Out
from revops_core.params import DateRange
from revops_sales.analytics import metrics
from revops_sales.models.deals import SalesDeal
from revops_sales.models.pipelines import SalesStage
from revops_sales.models.quotas import TEAM, SalesQuota


class QuotaOut(Out):
    id: int = Field(description="Quota id.")
    owner: str = Field(description="Rep, or '*' for the whole team.")
    start: date = Field(description="First day.")
    end: date = Field(description="Last day.")
    amount_minor: int = Field(description="Target, minor units.")
    currency: str = Field(description="Currency.")


class Attainment(QuotaOut):
    won_minor: int = Field(description="Closed won in the period by this owner (team: everyone).")
    open_minor: int = Field(description="Open pipeline with a close date in the period.")
    attainment: float | None = Field(description="won ÷ quota (null when the quota is 0).")
    coverage: float | None = Field(description="open ÷ (quota − won); null once the quota is met.")


def set_quota(
    session: Session, tenant: str, *, owner: str, start: date, end: date, amount_minor: int, currency: str
) -> QuotaOut:
    period = DateRange.resolve(start, end, start_field="start", end_field="end", allow_future=True)
    row = session.exec(
        select(SalesQuota).where(
            SalesQuota.tenant == tenant,
            SalesQuota.owner == owner,
            SalesQuota.start == period.start,
            SalesQuota.end == period.end,
            SalesQuota.currency == currency,
        )
    ).first()
    row = row or SalesQuota(
        tenant=tenant,
        owner=owner,
        start=period.start,
        end=period.end,
        currency=currency,
        amount_minor=amount_minor,
    )
    row.amount_minor = amount_minor
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return QuotaOut.model_validate(row)


def _period_amounts(
    session: Session, tenant: str, quotas: list[SalesQuota]
) -> tuple[list[tuple[str | None, str, int, date]], list[tuple[str | None, str, int, date]]]:
    """Won (owner, currency, amount, day closed) and open (owner, currency, amount, close date)
    over the window every quota falls in: two queries, whatever the number of quotas."""
    window = DateRange(min(q.start for q in quotas), max(q.end for q in quotas))
    scope: list[ColumnElement[bool]] = [col(SalesDeal.tenant) == tenant, col(SalesDeal.deleted_at).is_(None)]
    won = session.exec(
        select(SalesDeal.owner, SalesDeal.currency, SalesDeal.amount_minor, SalesDeal.closed_at)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            *scope,
            SalesStage.kind == "won",
            col(SalesDeal.closed_at) >= window.since,
            col(SalesDeal.closed_at) < window.until,
        )
    ).all()
    open_rows = session.exec(
        select(
            SalesDeal.owner,
            SalesDeal.currency,
            func.coalesce(func.sum(SalesDeal.amount_minor), 0),
            col(SalesDeal.close_date),
        )
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(*scope, SalesStage.kind == "open", col(SalesDeal.close_date).between(window.start, window.end))
        .group_by(col(SalesDeal.owner), col(SalesDeal.currency), col(SalesDeal.close_date))
    ).all()
    return (
        [(o, c, int(a), at.date()) for o, c, a, at in won if at is not None],
        [(o, c, int(a), d) for o, c, a, d in open_rows if d is not None],
    )


def _in(quota: SalesQuota, rows: list[tuple[str | None, str, int, date]]) -> int:
    return sum(
        amount
        for owner, currency, amount, day in rows
        if currency == quota.currency
        and quota.start <= day <= quota.end
        and (quota.owner == TEAM or owner == quota.owner)
    )


def attainment(session: Session, tenant: str, *, owner: str | None, on: date) -> list[Attainment]:
    """Every quota whose period contains `on` (one owner's, or all), with what was won and is open."""
    query = select(SalesQuota).where(
        SalesQuota.tenant == tenant, SalesQuota.start <= on, SalesQuota.end >= on
    )
    if owner is not None:
        query = query.where(SalesQuota.owner == owner)
    quotas = list(session.exec(query.order_by(col(SalesQuota.owner))).all())
    if not quotas:
        if owner is not None:
            raise NotFound(
                f"No quota for {owner!r} covers {on.isoformat()}.",
                field="owner",
                hint="Set one with set_quota.",
            )
        return []
    won_rows, open_rows = _period_amounts(session, tenant, quotas)
    out = []
    for quota in quotas:
        won, open_minor = _in(quota, won_rows), _in(quota, open_rows)
        out.append(
            Attainment.model_validate(
                {
                    **QuotaOut.model_validate(quota).model_dump(),
                    "won_minor": won,
                    "open_minor": open_minor,
                    "attainment": metrics.attainment(won, quota.amount_minor),
                    "coverage": metrics.coverage(open_minor, quota.amount_minor, won),
                }
            )
        )
    return out
