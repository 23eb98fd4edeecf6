"""Expansion tools: upcoming renewals with their churn risk and the renewal forecast."""

from __future__ import annotations

from typing import Annotated

from revops_core.params import AsOf, Count, resolve_as_of
from revops_core.server import Call
from revops_cs.params import Top
from revops_cs.services import renewals
from revops_cs.toolsets import expansion as toolset


@toolset.tool(tier="read", title="Track renewals")
def track_renewals(
    call: Call,
    within_days: Annotated[int, Count("Renewals due within N days.", ge=1, le=730)] = 90,
    as_of: AsOf = None,
    limit: Top = 100,
) -> renewals.RenewalsResult:
    """Upcoming renewals with churn-rule risk; expected ARR = sum ARR x p(renew | band) from past renewals."""
    return renewals.upcoming(
        call.db, call.tenant, within_days=within_days, day=resolve_as_of(as_of), limit=limit
    )
