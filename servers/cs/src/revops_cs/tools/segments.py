"""CS toolset `health`: segment the live clients (value tier, RFM, lifecycle, health band, custom rules)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import AsOf, Count, SingleLine, WholeNumber, resolve_as_of, today
from revops_core.server import Call
from revops_cs.services import clients, segments
from revops_cs.toolsets import segments as toolset

Members = Annotated[int, Field(ge=1, le=500, description="Members to list."), WholeNumber]
Conditions = Annotated[
    list[segments.Condition], Field(min_length=1, max_length=20, description="ANDed conditions.")
]
RuleName = Annotated[str, Field(min_length=1, max_length=100, description="Saved rule name."), SingleLine]


@toolset.tool(tier="read", title="Segment by value tier")
def segment_by_value_tier(
    call: Call,
    method: Annotated[
        Literal["abc", "thresholds"], Field(description="abc: cumulative ARR 80/15/5.")
    ] = "abc",
    a_min_minor: Annotated[int | None, Count("thresholds: ARR for tier A.")] = None,
    b_min_minor: Annotated[int | None, Count("thresholds: ARR for tier B.")] = None,
    limit: Members = 200,
) -> segments.Segmentation:
    """Value tiers A/B/C by ARR: ABC by cumulative share (80/15/5; the client crossing 80 % is A) or
    fixed ARR thresholds."""
    live = clients.live_clients(call.db, call.tenant)
    tiers = segments.value_tiers(live, method, a_min_minor, b_min_minor)
    return segments.segmentation(f"value_tier:{method}", live, tiers, limit)


@toolset.tool(tier="read", title="Segment clients")
def segment_customers(
    call: Call,
    by: Annotated[
        segments.SegmentBy, Field(description="rfm: succeeded payments (R days since last, F count, M sum).")
    ],
    conditions: Annotated[
        list[segments.Condition] | None, Field(min_length=1, max_length=20, description="custom: ANDed.")
    ] = None,
    rule_name: Annotated[
        str | None, Field(max_length=100, description="custom: saved rule to apply."), SingleLine
    ] = None,
    limit: Members = 200,
    as_of: AsOf = None,
) -> segments.Segmentation:
    """Segment live clients by value tier, RFM quintiles, lifecycle, health band or a custom rule."""
    return segments.segment(
        call.db,
        call.tenant,
        clients.live_clients(call.db, call.tenant),
        by,
        resolve_as_of(as_of),
        conditions=conditions,
        rule_name=rule_name,
        limit=limit,
    )


@toolset.tool(
    tier="write",
    idempotent=False,
    title="Save a segment rule",
    target="cs_segment_rule:{name}",
    replaces="segment_customers save_as",
)
def save_segment_rule(call: Call, name: RuleName, conditions: Conditions) -> segments.Segmentation:
    """Save custom conditions under a new name (for segment_customers, newsletters); shows who matches now."""
    live = clients.live_clients(call.db, call.tenant)
    return segments.save_rule(call.db, call.tenant, call.actor, live, name, conditions, today(), limit=200)
