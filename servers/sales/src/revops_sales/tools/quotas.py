"""Sales tools: quotas, attainment and coverage."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import AsOf, Currency, MinorUnits, SingleLine, resolve_as_of
from revops_core.server import Call
from revops_sales.services import quotas
from revops_sales.toolsets import forecasting as toolset

QuotaOwner = Annotated[
    str, Field(min_length=1, max_length=200, description="Rep, or '*' for the whole team."), SingleLine
]


@toolset.tool(tier="write", idempotent=True, title="Set a quota")
def set_quota(
    call: Call,
    owner: QuotaOwner,
    start: Annotated[date, Field(description="First day.")],
    end: Annotated[date, Field(description="Last day.")],
    amount_minor: MinorUnits,
    currency: Currency = "USD",
) -> quotas.QuotaOut:
    """Set (or replace) the quota of a rep or the team for a period."""
    saved = quotas.set_quota(
        call.db, call.tenant, owner=owner, start=start, end=end, amount_minor=amount_minor, currency=currency
    )
    call.target = f"sales_quota:{saved.id}"
    return saved


@toolset.tool(tier="read", title="Quota attainment and coverage")
def get_quota_attainment(
    call: Call,
    owner: Annotated[
        str | None,
        Field(min_length=1, max_length=200, description="One rep or '*'; omit for all."),
        SingleLine,
    ] = None,
    as_of: AsOf = None,
) -> list[quotas.Attainment]:
    """Quotas whose period contains the day, with won to date, attainment and coverage."""
    return quotas.attainment(call.db, call.tenant, owner=owner, on=resolve_as_of(as_of))
