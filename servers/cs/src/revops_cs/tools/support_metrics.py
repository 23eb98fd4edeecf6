"""CS toolset `support`: support performance — response and resolution times, SLA compliance, backlog."""

from __future__ import annotations

from revops_core.params import AsOf, End, Start, resolve_as_of
from revops_core.server import Call
from revops_cs.params import OptClient
from revops_cs.services import support_metrics
from revops_cs.services.clients import get_client
from revops_cs.services.support_metrics import SupportPerformance
from revops_cs.toolsets import support as toolset

DEFAULT_DAYS = 90


@toolset.tool(tier="read", title="Analyze support performance")
def analyze_support_performance(
    call: Call,
    client_id: OptClient = None,
    start_date: Start = None,
    end_date: End = None,
    as_of: AsOf = None,
) -> SupportPerformance:
    """Support KPIs for tickets created in a period (default 90 days): response/resolution median and p90,
    SLA compliance, backlog by age, CSAT."""
    day = resolve_as_of(as_of)
    window = support_metrics.period(start_date, end_date, day, DEFAULT_DAYS)
    if client_id is not None:
        get_client(call.db, client_id)
    return support_metrics.performance(call.db, client_id, window, day)
