"""CS toolset `health`: feature adoption and adoption milestones, and the catalogue they are measured on."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.params import AsOf, Count, SingleLine, Text, resolve_as_of
from revops_core.server import Call
from revops_cs.models.clients import Tier
from revops_cs.params import OptClient
from revops_cs.services import adoption, clients
from revops_cs.toolsets import adoption as toolset

Key = Annotated[str, Field(pattern=r"^[a-z0-9_.:-]{1,100}$", description="Key (a-z, 0-9, _.:-).")]


@toolset.tool(tier="read", title="Feature adoption")
def track_feature_adoption(call: Call, as_of: AsOf = None) -> adoption.AdoptionReport:
    """Per catalogue feature: adopters ÷ eligible clients and median days from contract start to first use."""
    day = resolve_as_of(as_of)
    return adoption.feature_adoption(call.db, call.tenant, clients.live_clients(call.db, call.tenant), day)


@toolset.tool(tier="read", title="Adoption milestones")
def track_adoption_milestones(
    call: Call, client_id: OptClient = None, as_of: AsOf = None
) -> adoption.Milestones:
    """When each client reached each adoption milestone (first login, N users, N features…)."""
    day = resolve_as_of(as_of)
    return adoption.milestones(call.db, call.tenant, clients.portfolio(call.db, call.tenant, client_id), day)


@toolset.tool(
    tier="write",
    idempotent=False,
    title="Define a catalogue feature",
    target="cs_feature:{key}",
    replaces="track_adoption_milestones action=define_feature",
)
def define_feature(
    call: Call,
    key: Key,
    name: Annotated[str, Text("Display name.")],
    tiers: Annotated[
        list[Tier] | None, Field(max_length=3, description="Eligible tiers; omit for all.")
    ] = None,
) -> adoption.FeatureOut:
    """Add a feature to the catalogue that adoption (and the health score's adoption part) is measured on."""
    return adoption.define_feature(call.db, call.tenant, key, name, list(tiers) if tiers else None)


@toolset.tool(
    tier="write",
    idempotent=False,
    title="Define an adoption milestone",
    target="cs_milestone_def:{key}",
    replaces="track_adoption_milestones action=define_milestone",
)
def define_milestone(
    call: Call,
    key: Key,
    name: Annotated[str, Text("Display name.")],
    kind: Annotated[adoption.MilestoneKind, Field(description="What is counted.")],
    threshold: Annotated[int, Count("Count to reach.", ge=1, le=1_000_000)] = 1,
    event: Annotated[
        str | None, Field(max_length=100, description="kind=event_count: the event."), SingleLine
    ] = None,
) -> adoption.MilestoneDef:
    """Add an adoption milestone (replaces the defaults once any is defined)."""
    return adoption.define_milestone(
        call.db, call.tenant, key=key, name=name, kind=kind, threshold=threshold, event=event
    )
