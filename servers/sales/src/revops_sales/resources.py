"""MCP beyond tools for the Sales server: deal, account and contact resources, the pipeline-review,
deal-review and meeting-prep prompts, and id completion for all three.

Resources and prompts read the same stored rows as the tools (no numbers of their own): a deal
resource is `get_deal`, an account resource `get_company`. Registered with the `deals` toolset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.types import Completion, PromptReference, ResourceTemplateReference
from sqlmodel import Session

from revops_core.errors import NotFound
from revops_core.params import MAX_ID
from revops_core.server import Runtime
from revops_sales.services import companies, deals
from revops_sales.services.id_completion import matching_ids
from revops_sales.services.pipeline_summary import open_pipeline

MAX_COMPLETIONS = 100
T = TypeVar("T")
# Which argument of which prompt or resource template completes which entity.
COMPLETES = {"deal_id": "deal", "company_id": "company", "contact_id": "contact"}
LISTING = {"deal": "list_deals", "company": "search_companies", "contact": "search_contacts"}
REVIEW_STEPS = " ".join(
    (
        "1) forecast_period for this quarter (P10/P50/P90 against quota);",
        "2) compare_forecast_snapshots for what moved since last week and why;",
        "3) find_stalled_deals with their reasons;",
        "4) get_quota_attainment for coverage;",
        "5) best_leads for the leads to call first and why.",
    )
)


def _id(raw: str, entity: str) -> int:
    """The id a URI or prompt argument names; malformed or out of range is `NotFound` (-32602)."""
    message = f"No {entity} with id {raw!r}; {LISTING[entity]} shows valid ids."
    try:
        number = int(raw)
    except ValueError as exc:
        raise NotFound(message, field="uri") from exc
    if not 1 <= number <= MAX_ID:
        raise NotFound(message, field="uri")
    return number


def _read(runtime: Runtime, entity: str, raw: str, read: Callable[[Session, str, int], Any]) -> str:
    number = _id(raw, entity)
    with runtime.db.session() as session:
        try:
            found = read(session, runtime.settings.tenant, number)
        except NotFound as exc:
            raise NotFound(
                f"No {entity} with id {raw!r}; {LISTING[entity]} shows valid ids.", field="uri"
            ) from exc
        return str(found.model_dump_json())


def deal_json(runtime: Runtime, deal_id: str) -> str:
    return _read(runtime, "deal", deal_id, deals.detail)


def account_json(runtime: Runtime, company_id: str) -> str:
    return _read(runtime, "company", company_id, companies.company_detail)


def contact_json(runtime: Runtime, contact_id: str) -> str:
    def read(session: Session, tenant: str, number: int) -> Any:
        return companies.ContactOut.model_validate(companies.get_contact(session, tenant, number))

    return _read(runtime, "contact", contact_id, read)


def pipeline_review_text(runtime: Runtime) -> str:
    with runtime.db.session() as session:
        stages = open_pipeline(session, runtime.settings.tenant)
    listing = json.dumps([s.model_dump() for s in stages]) if stages else "none (no open deals are stored)"
    return (
        "Weekly pipeline review. Use only the stored facts below and what the tools return; say "
        "explicitly when data is missing.\n\n"
        f"Open pipeline by stage (amounts in minor units): {listing}\n\n"
        f"Steps: {REVIEW_STEPS} Finish with three actions, each with an owner and a date."
    )


def deal_review_text(runtime: Runtime, deal_id: str) -> str:
    return (
        f"Review deal {deal_id} from its stored record below. Say explicitly what is missing.\n\n"
        f"Deal: {deal_json(runtime, deal_id)}\n\n"
        "Cover: stage and days in it, close-date changes, qualification gaps (get_qualification), "
        "competitors, open tasks and the next step; end with the risks and one action that would move "
        "it forward."
    )


def meeting_prep_text(runtime: Runtime, deal_id: str) -> str:
    return (
        f"Prepare for a meeting about deal {deal_id}.\n\nDeal: {deal_json(runtime, deal_id)}\n\n"
        "Call get_meeting_brief for the stage history, open tasks, last touches and customer health, then "
        "write: the goal of the meeting, what we know, what we must learn, and the ask."
    )


def complete_ids(runtime: Runtime, entity: str, partial: str) -> Completion:
    with runtime.db.session() as session:
        ids, more = matching_ids(session, runtime.settings.tenant, entity, partial, limit=MAX_COMPLETIONS)
    return Completion(values=ids, has_more=more)


def _completes(ref: Any, argument_name: str) -> str | None:
    """The entity an argument completes, for our prompts and resource templates only."""
    ours = (isinstance(ref, PromptReference) and ref.name in ("deal_review", "meeting_prep")) or (
        isinstance(ref, ResourceTemplateReference) and ref.uri.startswith("sales://")
    )
    return COMPLETES.get(argument_name) if ours else None


def register(mcp: MCPServer, runtime: Runtime) -> None:
    """Add the Sales resources, prompts and id completion to a server."""

    async def in_thread(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, runtime, *args)

    @mcp.resource(
        "sales://deals/{deal_id}", mime_type="application/json", description="A deal with its history."
    )
    async def deal_resource(deal_id: str) -> str:
        return await in_thread(deal_json, deal_id)

    @mcp.resource(
        "sales://accounts/{company_id}",
        mime_type="application/json",
        description="An account with its contacts.",
    )
    async def account_resource(company_id: str) -> str:
        return await in_thread(account_json, company_id)

    @mcp.resource("sales://contacts/{contact_id}", mime_type="application/json", description="A contact.")
    async def contact_resource(contact_id: str) -> str:
        return await in_thread(contact_json, contact_id)

    @mcp.prompt(description="Weekly pipeline review: forecast, what moved, stalled deals, coverage, leads.")
    async def weekly_pipeline_review() -> str:
        return await in_thread(pipeline_review_text)

    @mcp.prompt(description="Review one deal from its stored record.")
    async def deal_review(deal_id: str) -> str:
        return await in_thread(deal_review_text, deal_id)

    @mcp.prompt(description="Prepare for a meeting about a deal.")
    async def meeting_prep(deal_id: str) -> str:
        return await in_thread(meeting_prep_text, deal_id)

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        entity = _completes(ref, argument.name)
        if entity is None:
            return None
        return await in_thread(complete_ids, entity, argument.value or "")
