"""CS toolset `reviews`: business reviews (EBR/QBR) — list, the computed QBR pack, schedule, complete."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import AsOf, Count, Cursor, Id, IdValue, Limit, Text, require, resolve_as_of
from revops_core.server import Call
from revops_cs.params import ClientId, OptClient
from revops_cs.services import business_reviews as reviews
from revops_cs.services.business_reviews import ReviewOut, ReviewPack
from revops_cs.services.clients import get_client
from revops_cs.toolsets import reviews as toolset


@toolset.tool(tier="read", title="List business reviews", replaces="manage_business_reviews action=list")
def list_business_reviews(
    call: Call,
    client_id: OptClient = None,
    past: Annotated[bool, Field(description="Past ones, latest first.")] = False,
    as_of: AsOf = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ReviewOut]:
    """Business reviews from as_of on, soonest first (or past ones)."""
    if client_id is not None:
        get_client(call.db, client_id)
    return reviews.page(
        call.db,
        call.tenant,
        client_id=client_id,
        as_of=resolve_as_of(as_of),
        past=past,
        limit=limit,
        cursor=cursor,
    )


@toolset.tool(tier="read", title="QBR pack", replaces="manage_business_reviews action=pack")
def get_review_pack(
    call: Call,
    client_id: ClientId,
    as_of: AsOf = None,
    days: Annotated[int, Count("Days ending on as_of.", ge=7, le=366)] = 90,
) -> ReviewPack:
    """A client's QBR figures from stored rows: health, usage, support, surveys, renewal, revenue."""
    return reviews.qbr_pack(call.db, get_client(call.db, client_id), resolve_as_of(as_of), days)


@toolset.tool(
    tier="write",
    idempotent=False,
    title="Schedule a review",
    target="cs_business_review:{review_id}",
)
def manage_business_reviews(
    call: Call,
    action: Annotated[Literal["schedule", "complete"], Field(description="What to do.")],
    client_id: Annotated[int | None, Id("client", see="list_clients", optional="needed for schedule")] = None,
    day: Annotated[date | None, Field(description="Day of the review.")] = None,
    kind: Annotated[Literal["ebr", "qbr"] | None, Field(description="Review kind.")] = None,
    attendees: Annotated[
        list[IdValue] | None, Field(max_length=50, description="Client contact ids.")
    ] = None,
    review_id: Annotated[
        int | None, Id("review", see="list_business_reviews", optional="needed for complete")
    ] = None,
    notes: Annotated[str | None, Text("Notes.", max_length=2000)] = None,
) -> ReviewOut:
    """Schedule an EBR/QBR (client, kind, day), or complete one (review_id, notes)."""
    if action == "complete":
        review = reviews.complete(
            call.db,
            call.tenant,
            require(review_id, "review_id", when="action=complete"),
            require(notes, "notes", when="action=complete"),
        )
        return ReviewOut.model_validate(review)
    review = reviews.schedule(
        call.db,
        tenant=call.tenant,
        actor=call.actor,
        client=get_client(call.db, require(client_id, "client_id", when="action=schedule")),
        kind=require(kind, "kind", when="action=schedule"),
        day=require(day, "day", when="action=schedule"),
        attendees=attendees or [],
        notes=notes,
    )
    call.target = f"cs_business_review:{review.id}"
    return ReviewOut.model_validate(review)
