"""CS toolset `health`: usage events, engagement, health scores, trends and the portfolio report.

Segments, adoption and lifecycle tools of the same toolset are in `segments`, `adoption`, `lifecycle`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import AsOf, SingleLine, WholeNumber, require, resolve_as_of
from revops_core.server import Call
from revops_cs.params import ClientId, OptClient
from revops_cs.services import clients, engagement, health_reports
from revops_cs.services.health_settings import health_settings
from revops_cs.services.usage import IngestReport, UsageEventIn, ingest_usage_events
from revops_cs.toolsets import health as toolset


@toolset.tool(tier="write", idempotent=False, title="Record usage events")  # no external_id: no dedupe
def record_usage_events(
    call: Call,
    events: Annotated[list[UsageEventIn], Field(min_length=1, max_length=1000, description="1–1000 events.")],
    source: Annotated[
        str, Field(min_length=1, max_length=30, description="Where they come from."), SingleLine
    ] = "api",
) -> IngestReport:
    """Store product usage events (one or a batch); repeats of (source, external_id) are skipped."""
    report = ingest_usage_events(call.db, events, source=source)
    call.target = f"cs_usage_event:{source}"
    call.audit_details.update(inserted=report.inserted, duplicates=report.duplicates)
    if report.inserted == 0:
        call.no_change()
    return report


@toolset.tool(tier="read", title="Usage engagement of a client")
def track_usage_engagement(
    call: Call,
    client_id: ClientId,
    period_days: Annotated[int, Field(ge=7, le=365, description="Period length in days."), WholeNumber] = 30,
    as_of: AsOf = None,
) -> engagement.Engagement:
    """DAU/WAU/MAU and stickiness from login events, per-feature use, and change vs the prior period."""
    return engagement.engagement(
        call.db, clients.get_client(call.db, client_id), period_days, resolve_as_of(as_of)
    )


@toolset.tool(tier="read", title="Engagement drops")
def analyze_engagement_patterns(
    call: Call,
    client_id: OptClient = None,
    recent_weeks: Annotated[int, Field(ge=1, le=12, description="Recent window in weeks."), WholeNumber] = 4,
    baseline_weeks: Annotated[
        int, Field(ge=2, le=52, description="Baseline weeks before it."), WholeNumber
    ] = 12,
    drop_threshold_pct: Annotated[float, Field(gt=0, le=100, description="Drop to flag, percent.")] = 30.0,
    as_of: AsOf = None,
) -> engagement.Patterns:
    """Usage drops against each client's own baseline (recent vs prior weekly mean, % and z-score)."""
    return engagement.patterns(
        call.db,
        clients.portfolio(call.db, call.tenant, client_id),
        resolve_as_of(as_of),
        recent_weeks=recent_weeks,
        baseline_weeks=baseline_weeks,
        drop_threshold_pct=drop_threshold_pct,
    )


@toolset.tool(tier="write", idempotent=True, title="Calculate health scores", target="cs_client:{client_id}")
def calculate_health_score(
    call: Call,
    scope: Annotated[
        Literal["client", "portfolio"], Field(description="One client or all live, non-churned clients.")
    ] = "client",
    client_id: OptClient = None,
    as_of: AsOf = None,
) -> health_reports.HealthCalc:
    """Compute health (weighted sub-scores with inputs) and store the snapshot; same inputs → same score."""
    day = resolve_as_of(as_of)
    hs = health_settings()
    if scope == "client":
        client = clients.get_client(call.db, require(client_id, "client_id", when="scope=client"))
        result = health_reports.score_client(call.db, client, day, hs)
    else:

        def progress(done: int, total: int) -> None:
            call.progress(done, total, f"scored {done}/{total} clients")

        with call.reading() as read:
            result = health_reports.score_portfolio(read, call.db, call.tenant, day, hs, progress)
        call.target = "cs_health_snapshot:portfolio"
        call.audit_details["changed"] = result.changed
    if result.changed == 0:
        call.no_change()
    return result


@toolset.tool(tier="read", title="Health trends")
def analyze_health_trends(
    call: Call,
    client_id: OptClient = None,
    weeks: Annotated[int, Field(ge=4, le=52, description="Weeks of snapshots to fit."), WholeNumber] = 12,
    top: Annotated[int, Field(ge=1, le=200, description="How many movers to return."), WholeNumber] = 10,
    as_of: AsOf = None,
) -> health_reports.Trends:
    """Health trend per client: least-squares slope over weekly snapshots; biggest movers first."""
    return health_reports.trends(
        call.db,
        call.tenant,
        client_id,
        resolve_as_of(as_of),
        weeks=weeks,
        top=top,
        hs=health_settings(),
    )


@toolset.tool(tier="read", title="Portfolio health report")
def generate_health_report(call: Call, as_of: AsOf = None) -> health_reports.HealthReport:
    """Portfolio health (non-churned clients): clients and ARR per band, ARR at risk, who has no score."""
    return health_reports.report(call.db, call.tenant, resolve_as_of(as_of))
