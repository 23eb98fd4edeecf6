"""Meetings tools: free slots and booking with Google Calendar, outcomes, prep briefs, statistics."""

from __future__ import annotations

from datetime import UTC, date, time
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from revops_core.params import Count, DateRange, End, Id, Ids, IdValue, Start, Text
from revops_core.server import Call
from revops_sales.services import meeting_brief, meetings
from revops_sales.services import meeting_stats as stats
from revops_sales.toolsets import meetings as toolset

MeetingId = Annotated[int, Id("meeting", see="meeting_stats")]
ContactIds = Annotated[list[IdValue], Ids("contact", max_items=50, see="search_contacts")]
# Free/busy answers for at most 50 calendars per query: the rep's own plus 49 contacts.
BusyContactIds = Annotated[list[IdValue], Ids("contact", max_items=49, see="search_contacts")]
Rep = Annotated[str | None, Text("Only this rep.")]


@toolset.tool(tier="read", open_world=True, title="Propose meeting slots")
def propose_meeting_slots(
    call: Call,
    contact_ids: BusyContactIds,
    start: Annotated[date, Field(description="First day.")],
    end: Annotated[date, Field(description="Last day (≤14 days on).")],
    duration_minutes: Annotated[int, Count("Minutes.", ge=15, le=480)] = 30,
    day_start: Annotated[time, Field(description="Local.")] = time(9),
    day_end: Annotated[time, Field(description="Local.")] = time(17),
    time_zone: Annotated[str, Text("IANA zone of day_start/day_end.", max_length=64)] = "UTC",
    top: Annotated[int, Count("Slots.", ge=1, le=50)] = 10,
) -> meetings.SlotsOut:
    """Free slots for you and the contacts (Google free/busy), within weekday working hours."""
    return meetings.propose(
        call,
        contact_ids=contact_ids,
        first=start,
        last=end,
        duration_minutes=duration_minutes,
        day_start=day_start,
        day_end=day_end,
        time_zone=time_zone,
        top=top,
    )


@toolset.tool(tier="write", idempotent=False, open_world=True, title="Book a meeting")
def book_meeting(
    call: Call,
    title: Annotated[str, Text("Event title.")],
    starts_at: Annotated[AwareDatetime, Field(description="With zone.")],
    ends_at: Annotated[AwareDatetime, Field(description="With zone.")],
    contact_ids: ContactIds,
    deal_id: Annotated[int | None, Id("deal", optional="link it")] = None,
    description: Annotated[str | None, Text("Event text.", max_length=4000)] = None,
) -> meetings.MeetingOut:
    """Create a Google Calendar event inviting the contacts and store the meeting (deal/company linked)."""
    return meetings.book(
        call,
        title=title,
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        contact_ids=contact_ids,
        deal_id=deal_id,
        description=description,
    )


@toolset.tool(
    tier="write", idempotent=False, title="Log a meeting outcome", target="sales_meeting:{meeting_id}"
)
def log_meeting_outcome(
    call: Call,
    meeting_id: MeetingId,
    status: Annotated[Literal["held", "no_show", "cancelled"], Field(description="What happened.")],
    outcome: Annotated[
        Literal["positive", "neutral", "negative"] | None, Field(description="Held meetings only.")
    ] = None,
    next_steps: Annotated[str | None, Text("Agreed next steps.", max_length=2000)] = None,
) -> meetings.MeetingOut:
    """Record whether a meeting was held (with outcome and next steps; logged as an activity)."""
    return meetings.log_outcome(
        call.db, call.tenant, meeting_id, status=status, outcome=outcome, next_steps=next_steps
    )


@toolset.tool(tier="read", title="Meeting prep brief")
def get_meeting_brief(call: Call, meeting_id: MeetingId) -> meeting_brief.MeetingBrief:
    """Deal, stage history, open tasks, last touches, contacts and CS health for a meeting."""
    return meeting_brief.brief(call.db, call.tenant, meeting_id)


@toolset.tool(tier="read", title="Meeting statistics")
def meeting_stats(call: Call, start: Start = None, end: End = None, owner: Rep = None) -> stats.MeetingStats:
    """Per rep: meetings booked, held, no-shows, outcome mix and meetings per won deal (default 30 days)."""
    period = DateRange.resolve(start, end, start_field="start", end_field="end", allow_future=True)
    return stats.compute(call.db, call.tenant, start=period.since, end=period.until, owner=owner)
