"""Meetings: proposing free slots (Calendar free/busy), booking (Calendar insert + our row), outcomes.

Vendor calls happen outside the call's write transaction: inputs are checked in a read transaction
(`call.reading()`), then Google is called, then the row is written — so no database lock is held
while Google answers. A booking whose insert timed out is stored with `calendar_status=unknown`
and the event id we chose (the event may exist); one Google refused leaves no row.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field
from sqlmodel import Session

from revops_core.db import utcnow
from revops_core.errors import Conflict, RevOpsError, ValidationFailed
from revops_core.models import CoreContact
from revops_core.outputs import FromJson, Out
from revops_core.records import live
from revops_sales.analytics import meeting_slots
from revops_sales.models.meetings import SalesMeeting
from revops_sales.services import activities, companies, deals
from revops_sales.vendors import google_auth, google_calendar

if TYPE_CHECKING:
    from revops_core.server import Call

MAX_SEARCH_DAYS = 14
SLOT_STEP = timedelta(minutes=30)
WEEKDAYS = range(5)  # Monday–Friday


class MeetingOut(Out):
    id: int = Field(description="Meeting id.")
    title: str = Field(description="Title.")
    owner: str = Field(description="Rep who booked it.")
    deal_id: int | None = Field(description="Deal.")
    contact_id: int | None = Field(description="First invited contact.")
    company_id: int | None = Field(description="Company.")
    attendees: Annotated[list[str], FromJson] = Field(description="Invited addresses.")
    starts_at: datetime = Field(description="Start (UTC).")
    ends_at: datetime = Field(description="End (UTC).")
    calendar_event_id: str = Field(description="Google Calendar event id.")
    calendar_status: str = Field(description="created, or unknown: the insert timed out (check the id).")
    calendar_link: str | None = Field(description="Link to the event.")
    status: str = Field(description="scheduled, held, no_show or cancelled.")
    outcome: str | None = Field(description="positive, neutral or negative (held).")
    next_steps: str | None = Field(description="Agreed next steps.")
    logged_at: datetime | None = Field(description="When the outcome was logged (UTC).")


class SlotOut(Out):
    start: datetime = Field(description="Start (UTC).")
    end: datetime = Field(description="End (UTC).")


class SlotsOut(Out):
    slots: list[SlotOut] = Field(description="Free slots, earliest first.")
    checked: list[str] = Field(description="Calendars whose busy times were taken into account.")
    unknown: list[str] = Field(description="Calendars Google could not read: their availability is unknown.")
    note: str | None = Field(description="Why there are no slots, when there are none.")


def get(session: Session, tenant: str, meeting_id: int) -> SalesMeeting:
    return live(
        session,
        SalesMeeting,
        meeting_id,
        tenant=tenant,
        field="meeting_id",
        what="meeting",
        see="meeting_stats",
    )


def attendee_contacts(session: Session, tenant: str, contact_ids: list[int]) -> list[CoreContact]:
    return [companies.get_contact(session, tenant, cid) for cid in dict.fromkeys(contact_ids)]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"Unknown time zone {name!r}.", field="time_zone", hint="Use an IANA name such as Europe/Berlin."
        ) from None


def propose(
    call: Call,
    *,
    contact_ids: list[int],
    first: date,
    last: date,
    duration_minutes: int,
    day_start: time,
    day_end: time,
    time_zone: str,
    top: int,
) -> SlotsOut:
    """Free slots of `duration_minutes` within working hours, for the rep and the contacts."""
    zone = _zone(time_zone)
    if last < first:
        raise ValidationFailed("end is before start.", field="end")
    if (last - first).days >= MAX_SEARCH_DAYS:
        raise ValidationFailed(f"Search at most {MAX_SEARCH_DAYS} days at once.", field="end")
    if day_end <= day_start:
        raise ValidationFailed("day_end must be after day_start.", field="day_end")
    with call.reading() as read:
        emails = [c.email for c in attendee_contacts(read, call.tenant, contact_ids)]
    calendars = ["primary", *dict.fromkeys(emails)]
    windows = meeting_slots.working_windows(
        first, last, day_start=day_start, day_end=day_end, zone=zone, weekdays=WEEKDAYS
    )
    if not windows:
        return SlotsOut(slots=[], checked=[], unknown=[], note="No weekday falls between start and end.")
    token = call.run_async(google_auth.access_token, call)

    async def fetch() -> dict[str, list[tuple[datetime, datetime]]]:
        options = google_auth.client_options(call, google_calendar.PROVIDER)
        async with google_calendar.CalendarClient(token, call.settings, **options) as client:
            return await client.busy(calendars, windows[0][0], windows[-1][1])

    busy = call.run_async(fetch)
    slots = meeting_slots.free_slots(
        windows,
        [period for periods in busy.values() for period in periods],
        duration=timedelta(minutes=duration_minutes),
        step=SLOT_STEP,
        not_before=utcnow(),
        top=top,
    )
    return SlotsOut(
        slots=[SlotOut(start=s, end=e) for s, e in slots],
        checked=[c for c in calendars if c in busy],
        unknown=[c for c in calendars if c not in busy],
        note=None if slots else "Everyone checked is busy (or it is past) in every working-hour slot.",
    )


def book(
    call: Call,
    *,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    contact_ids: list[int],
    deal_id: int | None,
    description: str | None,
) -> MeetingOut:
    """Create the Calendar event inviting the contacts, then store the meeting linked to deal/company."""
    if ends_at <= starts_at:
        raise ValidationFailed("ends_at must be after starts_at.", field="ends_at")
    if starts_at <= utcnow():
        raise ValidationFailed("starts_at is in the past.", field="starts_at")
    if not contact_ids:
        raise ValidationFailed("Invite at least one contact.", field="contact_ids")
    with call.reading() as read:
        contacts = attendee_contacts(read, call.tenant, contact_ids)
        deal = deals.get(read, call.tenant, deal_id) if deal_id is not None else None
        company_id = deal.company_id if deal and deal.company_id else contacts[0].company_id
        attendees = [
            (c.email, " ".join(p for p in (c.first_name, c.last_name) if p) or None) for c in contacts
        ]
    token = call.run_async(google_auth.access_token, call)
    event_id = google_calendar.new_event_id()
    body = google_calendar.event_body(
        event_id=event_id,
        summary=title,
        start=starts_at,
        end=ends_at,
        attendees=attendees,
        description=description,
    )

    async def insert() -> dict[str, object] | RevOpsError:
        options = google_auth.client_options(call, google_calendar.PROVIDER)
        async with google_calendar.CalendarClient(token, call.settings, **options) as client:
            try:
                return await client.insert_event(body)
            except RevOpsError as err:
                if err.outcome == "unknown":
                    return err  # stored below: the event may exist
                raise

    answer = call.run_async(insert)
    created = not isinstance(answer, RevOpsError)
    link = answer.get("htmlLink") if isinstance(answer, dict) else None
    row = SalesMeeting(
        tenant=call.tenant,
        title=title,
        owner=call.actor,
        deal_id=deal_id,
        contact_id=contacts[0].id,
        company_id=company_id,
        attendees=json.dumps([email for email, _ in attendees]),
        starts_at=starts_at,
        ends_at=ends_at,
        calendar_event_id=str(answer.get("id") or event_id) if isinstance(answer, dict) else event_id,
        calendar_status="created" if created else "unknown",
        calendar_link=link if isinstance(link, str) else None,
    )
    call.db.add(row)
    call.db.flush()
    call.target = f"sales_meeting:{row.id}"
    call.audit_details["calendar_status"] = row.calendar_status
    return MeetingOut.model_validate(row)


def log_outcome(
    session: Session,
    tenant: str,
    meeting_id: int,
    *,
    status: str,
    outcome: str | None,
    next_steps: str | None,
) -> MeetingOut:
    """Record what happened. A held meeting needs an outcome and becomes a `meeting` activity; a
    no-show or cancellation is not a touch, so it records none."""
    meeting = get(session, tenant, meeting_id)
    if meeting.status != "scheduled":
        raise Conflict(f"Meeting {meeting_id} was already logged as {meeting.status}.", field="meeting_id")
    now = utcnow()
    if status in ("held", "no_show") and meeting.starts_at > now:
        raise ValidationFailed("The meeting has not started yet.", field="status")
    if status == "held" and outcome is None:
        raise ValidationFailed("A held meeting needs an outcome.", field="outcome")
    if status != "held" and outcome is not None:
        raise ValidationFailed("Only a held meeting has an outcome.", field="outcome")
    meeting.status, meeting.outcome, meeting.next_steps, meeting.logged_at = status, outcome, next_steps, now
    session.add(meeting)
    if status == "held":
        activities.record(
            session,
            tenant,
            kind="meeting",
            occurred_at=meeting.starts_at,
            owner=meeting.owner,
            deal_id=meeting.deal_id,
            contact_id=meeting.contact_id,
            company_id=meeting.company_id,
            subject=meeting.title,
            source=("sales_meeting", meeting.id or 0),
        )
    session.flush()
    return MeetingOut.model_validate(meeting)
