"""Sales toolset `prospecting`: lead scoring, qualification scorecards, routing, lead conversion and
Apollo. Their settings — the ideal customer profile, the routing pool and territories, and each
pipeline's qualification framework — are one tool on toolset `configuration`
(configure_prospecting), which lists frameworks among its settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from revops_core.guards import PlanPreview
from revops_core.outputs import Out
from revops_core.params import (
    AsOf,
    Confirm,
    Currency,
    Id,
    MinorUnits,
    SingleLine,
    Text,
    WholeNumber,
    require,
    resolve_as_of,
)
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_sales.params import PipelineId
from revops_sales.services import enrichment, icp, lead_conversion, lead_scoring, leads, routing, scorecards
from revops_sales.services.enrichment import EnrichmentOut, SearchOut
from revops_sales.services.icp import IcpOut
from revops_sales.services.routing import RoutingConfigOut
from revops_sales.services.scorecards import FrameworkOut
from revops_sales.toolsets import configuration
from revops_sales.toolsets import prospecting as toolset
from revops_sales.vendors import apollo

LeadId = Annotated[int, Id("lead", see="search_leads")]
OptLead = Annotated[int | None, Id("lead", see="search_leads", optional="score a lead")]
OptDeal = Annotated[int | None, Id("deal", see="list_deals", optional="score a deal")]
Top = Annotated[int, Field(ge=1, le=200, description="Most leads to return."), WholeNumber]
FrameworkName = Annotated[
    scorecards.Framework | None,
    Field(description="Default: the pipeline's, else BANT."),
]
Line = Annotated[str, SingleLine, Field(min_length=1, max_length=200)]


class ConfigureOut(BaseModel):
    action: str = Field(description="What was configured.")
    icp: IcpOut | None = Field(description="action=icp: the profile stored.")
    routing: RoutingConfigOut | None = Field(description="action=routing: the rules stored.")
    framework: FrameworkOut | None = Field(description="action=framework: the setting.")


@configuration.tool(tier="write", idempotent=True, title="Configure prospecting")
def configure_prospecting(
    call: Call,
    action: Annotated[Literal["icp", "routing", "framework"], Field(description="What to configure.")],
    criteria: Annotated[
        list[icp.CriterionIn] | None, Field(max_length=50, description="icp: weighted criteria.")
    ] = None,
    intent: Annotated[icp.IntentIn | None, Field(description="icp: intent settings.")] = None,
    reps: Annotated[
        list[routing.RepIn] | None,
        Field(max_length=200, description="routing: rep pool, in order."),
    ] = None,
    rules: Annotated[
        list[routing.RuleIn] | None,
        Field(max_length=100, description="routing: territories."),
    ] = None,
    pipeline_id: Annotated[int | None, Id("pipeline", see="list_pipelines", optional="framework")] = None,
    framework: Annotated[scorecards.Framework | None, Field(description="framework: the one to use.")] = None,
) -> ConfigureOut:
    """Set the ideal customer profile, lead routing, or a pipeline's qualification framework."""
    when = f"action={action}"
    out = ConfigureOut(action=action, icp=None, routing=None, framework=None)
    if action == "icp":
        out.icp = icp.save(call.db, call.tenant, require(criteria, "criteria", when=when), intent)
        call.target = "sales_icp"
    elif action == "routing":
        out.routing = routing.configure(call.db, call.tenant, require(reps, "reps", when=when), rules or [])
        call.target = "sales_routing"
    else:
        pipeline = require(pipeline_id, "pipeline_id", when=when)
        out.framework = scorecards.set_framework(
            call.db, call.tenant, pipeline, require(framework, "framework", when=when)
        )
        call.target = f"sales_pipeline:{pipeline}"
    return out


@toolset.tool(tier="write", idempotent=False, title="Record engagement or rescore leads")
def score_leads(
    call: Call,
    action: Annotated[Literal["record_events", "recompute"], Field(description="What to do.")],
    lead_id: Annotated[int | None, Id("lead", see="search_leads", optional="record_events")] = None,
    events: Annotated[
        list[lead_scoring.EventIn] | None, Field(max_length=500, description="record_events: engagement.")
    ] = None,
    as_of: AsOf = None,
) -> lead_scoring.ScoreRun:
    """Record a lead's engagement (and rescore it), or rescore every lead's fit and intent."""
    day = resolve_as_of(as_of)
    if action == "record_events":
        lead = require(lead_id, "lead_id", when="action=record_events")
        stored = lead_scoring.record_events(
            call.db, call.tenant, lead, require(events, "events", when="action=record_events")
        )
        run = lead_scoring.recompute(call.db, call.tenant, day, lead_ids=[lead])
        call.target = f"sales_lead:{lead}"
        return run.model_copy(update={"events_recorded": stored})
    call.target = "sales_lead:*"
    return lead_scoring.recompute(call.db, call.tenant, day)


@toolset.tool(tier="read", title="Best leads to call")
def best_leads(
    call: Call,
    top: Top = 20,
    owner: Annotated[str | None, Text("Only this rep's.")] = None,
) -> lead_scoring.BestLeads:
    """Open scored leads ranked MQL first, then by (fit + intent)/2, each with why."""
    return lead_scoring.best(call.db, call.tenant, top=top, owner=owner)


@toolset.tool(tier="write", idempotent=True, title="Score qualification")
def score_qualification(
    call: Call,
    elements: Annotated[
        list[scorecards.ElementIn], Field(min_length=1, max_length=8, description="Elements to set.")
    ],
    deal_id: OptDeal = None,
    lead_id: OptLead = None,
    framework: FrameworkName = None,
) -> scorecards.ScorecardOut:
    """Score BANT/MEDDIC/MEDDPICC/CHAMP elements of a deal or lead (0/1/2 + evidence)."""
    call.target = f"sales_deal:{deal_id}" if deal_id is not None else f"sales_lead:{lead_id}"
    return scorecards.save(
        call.db,
        call.tenant,
        call.actor,
        deal_id=deal_id,
        lead_id=lead_id,
        framework=framework,
        elements=elements,
    )


@toolset.tool(tier="read", title="Get a qualification scorecard")
def get_qualification(
    call: Call, deal_id: OptDeal = None, lead_id: OptLead = None, framework: FrameworkName = None
) -> scorecards.ScorecardOut:
    """A deal's or lead's scorecard: elements, evidence, score, what is missing."""
    return scorecards.read(call.db, call.tenant, deal_id=deal_id, lead_id=lead_id, framework=framework)


@toolset.tool(tier="write", idempotent=False, title="Route a lead", target="sales_lead:{lead_id}")
def route_lead(call: Call, lead_id: LeadId) -> routing.RouteOut:
    """Give an unowned lead a rep (territory, round robin, capacity), explained."""
    return routing.route(call.db, call.tenant, lead_id)


@toolset.tool(tier="write", idempotent=True, title="Convert a lead", target="sales_lead:{lead_id}")
def convert_lead(
    call: Call,
    lead_id: LeadId,
    pipeline_id: PipelineId,
    amount_minor: MinorUnits,
    currency: Currency = "USD",
    deal_name: Annotated[str | None, Text("Deal name; default the company's.")] = None,
    create_company: Annotated[bool, Field(description="Also link or create the company.")] = True,
) -> lead_conversion.ConversionOut:
    """Turn a lead into a contact (or link one by e-mail), company and deal; replay-safe."""
    return lead_conversion.convert(
        call.db,
        call.tenant,
        call.actor,
        lead_id,
        pipeline_id=pipeline_id,
        deal_name=deal_name,
        amount_minor=amount_minor,
        currency=currency,
        create_company=create_company,
    )


class ApolloOut(Out):
    action: str = Field(description="What was done.")
    enrichment: EnrichmentOut | None = Field(description="enrich_lead: the records.")
    search: SearchOut | None = Field(description="find_*: the page of matches.")


def _search_body(action: str, filters: dict[str, Any], page: int, per_page: int) -> dict[str, Any]:
    keys = ("person_titles", "person_locations", "q_organization_domains_list")
    if action == "find_organizations":
        keys = ("q_organization_name", "organization_locations", "organization_num_employees_ranges")
    body = {k: v for k, v in filters.items() if k in keys and v}
    return {**body, "page": page, "per_page": per_page}


@toolset.tool(tier="write", idempotent=False, open_world=True, title="Prospect with Apollo")
def prospect_with_apollo(
    call: Call,
    action: Annotated[
        Literal["find_people", "find_organizations", "enrich_lead"], Field(description="What to do.")
    ],
    lead_id: Annotated[int | None, Id("lead", see="search_leads", optional="enrich_lead")] = None,
    titles: Annotated[list[Line] | None, Field(max_length=20, description="find_people: job titles.")] = None,
    locations: Annotated[list[Line] | None, Field(max_length=20, description="Locations.")] = None,
    domains: Annotated[
        list[Line] | None, Field(max_length=50, description="find_people: company domains.")
    ] = None,
    name: Annotated[str | None, Text("find_organizations: name contains.")] = None,
    employee_ranges: Annotated[
        list[Annotated[str, Field(pattern=r"^\d{1,7},\d{1,7}$")]] | None,
        Field(max_length=10, description='find_organizations: "min,max" ranges.'),
    ] = None,
    page: Annotated[int, Field(ge=1, le=500, description="Search page."), WholeNumber] = 1,
    per_page: Annotated[
        int, Field(ge=1, le=apollo.MAX_PER_PAGE, description="Search page size."), WholeNumber
    ] = 25,
    confirm: Confirm = None,
) -> Planned[ApolloOut]:
    """Search Apollo or enrich a lead from it; spending credits is plan → confirm."""
    creds = apollo.require_credentials(call.runtime)
    if action == "enrich_lead":
        lead = leads.get(call.db, call.tenant, require(lead_id, "lead_id", when="action=enrich_lead"))
        preview, fingerprint, credits = enrichment.enrichment_preview(call.db, call.tenant, lead)

        def enrich() -> ApolloOut:
            done = enrichment.enrich(call, creds, lead.id or 0)
            return ApolloOut(action=action, enrichment=done, search=None)

        if credits == 0:  # everything is fresh in the cache: nothing to spend, nothing to confirm
            return Planned[ApolloOut](status="done", plan_id=None, plan=None, result=enrich())
        return plan_or_run(call, confirm=confirm, preview=preview, fingerprint=fingerprint, run=enrich)
    filters = {
        "person_titles": titles,
        "person_locations": locations if action == "find_people" else None,
        "q_organization_domains_list": domains,
        "q_organization_name": name,
        "organization_locations": locations if action == "find_organizations" else None,
        "organization_num_employees_ranges": employee_ranges,
    }
    body = _search_body(action, filters, page, per_page)
    kind: Literal["people", "organizations"] = "people" if action == "find_people" else "organizations"
    preview = PlanPreview(
        summary=f"Search Apollo {kind}, page {page} of up to {per_page}: ~1 credit.",
        affected_count=0,
        sample=[body],
        reversible=False,
        notes=["Estimate: one Apollo credit per search page on plans that meter searches."],
    )
    return plan_or_run(
        call,
        confirm=confirm,
        preview=preview,
        fingerprint=body,
        run=lambda: ApolloOut(
            action=action, enrichment=None, search=enrichment.search(call, creds, kind, body)
        ),
    )
