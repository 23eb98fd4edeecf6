"""Business reviews (EBR/QBR): schedule, list, complete, and the QBR pack computed from stored rows.

The pack only reports numbers read from rows, through the services the health, support, feedback
and expansion tools use; a section without rows is null and named in `missing`.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.models import CoreContact
from revops_core.paging import Page, paginate
from revops_core.params import DateRange, end_of_day
from revops_cs.analytics import engagement as eng
from revops_cs.analytics import health as hmath
from revops_cs.models.clients import CsClient
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.reviews import CsBusinessReview
from revops_cs.models.support import CsTicket
from revops_cs.output import FromJson, Out
from revops_cs.services.feedback import Surveys, feedback_rows, survey_scores
from revops_cs.services.health import latest_snapshot
from revops_cs.services.support_metrics import performance
from revops_cs.services.usage import usage_rows

# --------------------------------------------------------------------------- reviews


class ReviewOut(Out):
    id: int = Field(description="Review id.")
    client_id: int = Field(description="Client.")
    kind: str = Field(description="ebr|qbr.")
    scheduled_for: date = Field(description="Scheduled day.")
    status: str = Field(description="scheduled|completed.")
    attendees: Annotated[list[int], FromJson] = Field(description="Contact ids.")
    notes: str | None = Field(description="Notes.")


def contact_of(session: Session, client: CsClient, contact_id: int, field: str) -> CoreContact:
    """The live contact if it belongs to the client's company; `validation_error` naming `field` if not."""
    contact = session.get(CoreContact, contact_id)
    if contact is None or contact.deleted_at is not None or contact.company_id != client.company_id:
        raise ValidationFailed(
            f"Contact {contact_id} is not a contact of client {client.id}.",
            field=field,
            hint="Use contact ids of this client's company.",
        )
    return contact


def page(
    session: Session,
    tenant: str,
    *,
    client_id: int | None,
    as_of: date,
    past: bool,
    limit: int,
    cursor: str | None,
) -> Page[ReviewOut]:
    """Upcoming reviews (on or after `as_of`) soonest first, or past ones most recent first."""
    day = col(CsBusinessReview.scheduled_for)
    query = select(CsBusinessReview).where(
        CsBusinessReview.tenant == tenant, day < as_of if past else day >= as_of
    )
    if client_id is not None:
        query = query.where(CsBusinessReview.client_id == client_id)
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[day, col(CsBusinessReview.id)],
        scope="past_reviews" if past else "upcoming_reviews",
        descending=past,
        item=ReviewOut.model_validate,
    )


def schedule(
    session: Session,
    *,
    tenant: str,
    actor: str,
    client: CsClient,
    kind: str,
    day: date,
    attendees: list[int],
    notes: str | None,
) -> CsBusinessReview:
    for contact_id in attendees:
        contact_of(session, client, contact_id, "attendees")
    review = CsBusinessReview(
        tenant=tenant,
        client_id=client.id or 0,
        kind=kind,
        scheduled_for=day,
        attendees=json.dumps(sorted(set(attendees))),
        notes=notes,
        created_by=actor,
    )
    session.add(review)
    session.flush()
    return review


def complete(session: Session, tenant: str, review_id: int, notes: str) -> CsBusinessReview:
    review = session.get(CsBusinessReview, review_id)
    if review is None or review.tenant != tenant:
        raise NotFound(f"No review {review_id}.", field="review_id", hint="See list_business_reviews.")
    review.status, review.notes = "completed", notes
    review.completed_at = datetime.now(UTC)
    session.add(review)
    session.flush()
    return review


# --------------------------------------------------------------------------- the QBR pack


class PackPeriod(Out):
    start: date = Field(description="First day.")
    end: date = Field(description="Last day (as_of).")
    days: int = Field(description="Days in the period.")


class HealthSection(Out):
    score: float = Field(description="Latest score on or before the end.")
    band: str = Field(description="Its band.")
    as_of: date = Field(description="Day of that snapshot.")
    snapshots: int = Field(description="Snapshots in the period.")
    first: float | None = Field(description="First score in the period.")
    last: float | None = Field(description="Last score in the period.")
    slope_per_week: float | None = Field(description="Trend, points per week; null under two days.")


class UsageSection(Out):
    events: int = Field(description="Usage events in the period.")
    previous_events: int = Field(description="In the period before.")
    active_users: int = Field(description="Users who logged in.")
    previous_active_users: int = Field(description="In the period before.")


class SupportSection(Out):
    opened: int = Field(description="Tickets created.")
    solved: int = Field(description="Tickets solved.")
    first_response_compliance: float | None = Field(description="SLA % met.")
    resolution_compliance: float | None = Field(description="SLA % met.")


class RenewalSection(Out):
    renewal_date: date = Field(description="Next renewal.")
    days_left: int = Field(description="Days from the end of the period.")


class RevenueSection(Out):
    currency: str = Field(description="Currency of the latest month.")
    from_month: date = Field(description="First month in the period.")
    to_month: date = Field(description="Last month in the period.")
    mrr_minor: int = Field(description="Latest MRR, minor units.")
    arr_minor: int = Field(description="12 × latest MRR.")
    mrr_change_minor: int | None = Field(description="Last − first month; null across currencies.")
    arr_change_minor: int | None = Field(description="12 × the MRR change.")


class EscalationsSection(Out):
    open: int = Field(description="Open at the end of the period.")
    ids: list[int] = Field(description="Their ids.")


class ReviewPack(Out):
    client_id: int = Field(description="Client.")
    period: PackPeriod = Field(description="The period the figures cover.")
    health: HealthSection | None = Field(description="Null without snapshots.")
    usage: UsageSection | None = Field(description="Null without usage events.")
    support: SupportSection | None = Field(description="Null without tickets.")
    surveys: Surveys | None = Field(description="Null without answers.")
    renewal: RenewalSection | None = Field(description="Null without a renewal date.")
    revenue: RevenueSection | None = Field(description="Null without MRR months.")
    escalations: EscalationsSection = Field(description="Open escalations.")
    missing: list[str] = Field(description="Sections without data (null above).")


def _health(session: Session, client_id: int, window: DateRange) -> HealthSection | None:
    now = latest_snapshot(session, client_id, window.end)
    if now is None:
        return None
    snaps = list(
        session.exec(
            select(CsHealthSnapshot)
            .where(
                CsHealthSnapshot.client_id == client_id,
                col(CsHealthSnapshot.as_of) >= window.start,
                col(CsHealthSnapshot.as_of) <= window.end,
            )
            .order_by(col(CsHealthSnapshot.as_of), col(CsHealthSnapshot.id))
        )
    )
    weeks = [float((s.as_of - window.start).days) / 7 for s in snaps]
    slope = hmath.slope(weeks, [s.score for s in snaps]) if len(set(weeks)) >= 2 else None
    return HealthSection(
        score=now.score,
        band=now.band,
        as_of=now.as_of,
        snapshots=len(snaps),
        first=snaps[0].score if snaps else None,
        last=snaps[-1].score if snaps else None,
        slope_per_week=None if slope is None else round(slope, 3),
    )


def _usage(session: Session, client_id: int, window: DateRange) -> UsageSection | None:
    start, end = window.start, window.end
    prev_start = start - timedelta(days=window.days)
    rows = usage_rows(session, client_id, prev_start, end)
    if not rows:
        return None
    logins = [(d, u) for d, u, e, _ in rows if e == "login"]
    return UsageSection(
        events=sum(1 for r in rows if r[0] >= start),
        previous_events=sum(1 for r in rows if r[0] < start),
        active_users=len(eng.active_users(logins, start, end)),
        previous_active_users=len(eng.active_users(logins, prev_start, start - timedelta(days=1))),
    )


def _support(session: Session, client_id: int, window: DateRange) -> SupportSection | None:
    perf = performance(session, client_id, window, window.end)
    solved = session.exec(
        select(func.count()).where(
            CsTicket.client_id == client_id,
            col(CsTicket.solved_at) >= window.since,
            col(CsTicket.solved_at) < window.until,
        )
    ).one()
    if perf.tickets == 0 and solved == 0:
        return None
    return SupportSection(
        opened=perf.tickets,
        solved=int(solved),
        first_response_compliance=perf.first_response_compliance,
        resolution_compliance=perf.resolution_compliance,
    )


def _revenue(session: Session, client_id: int, window: DateRange) -> RevenueSection | None:
    rows = list(
        session.exec(
            select(CsMrrMonth)
            .where(
                CsMrrMonth.client_id == client_id,
                col(CsMrrMonth.month) >= window.start.replace(day=1),
                col(CsMrrMonth.month) <= window.end,
            )
            .order_by(col(CsMrrMonth.month))
        )
    )
    if not rows:
        return None
    first, last = rows[0], rows[-1]
    # A change needs two months in one currency; never subtract amounts of different currencies.
    comparable = len(rows) > 1 and first.currency == last.currency
    change = last.mrr_minor - first.mrr_minor if comparable else None
    return RevenueSection(
        currency=last.currency,
        from_month=first.month,
        to_month=last.month,
        mrr_minor=last.mrr_minor,
        arr_minor=12 * last.mrr_minor,
        mrr_change_minor=change,
        arr_change_minor=None if change is None else 12 * change,
    )


def _escalations(session: Session, client_id: int, end: date) -> EscalationsSection:
    upper = end_of_day(end)
    query = select(CsEscalation.id).where(
        CsEscalation.client_id == client_id,
        col(CsEscalation.opened_at) < upper,
        (col(CsEscalation.resolved_at).is_(None)) | (col(CsEscalation.resolved_at) >= upper),
    )
    ids = [i for i in session.exec(query.order_by(col(CsEscalation.id))) if i is not None]
    return EscalationsSection(open=len(ids), ids=ids)


def qbr_pack(session: Session, client: CsClient, as_of: date, days: int) -> ReviewPack:
    """The QBR pack of one client for the `days` ending on `as_of`, every number read from rows."""
    cid = client.id or 0
    window = DateRange(as_of - timedelta(days=days - 1), as_of)
    scores = survey_scores(feedback_rows(session, cid, window))
    renewal = client.renewal_date
    health, usage, support = (
        _health(session, cid, window),
        _usage(session, cid, window),
        _support(session, cid, window),
    )
    surveys = scores if scores.answered else None
    due = None if renewal is None else RenewalSection(renewal_date=renewal, days_left=(renewal - as_of).days)
    revenue = _revenue(session, cid, window)
    named: list[tuple[str, object]] = [
        ("health", health),
        ("usage", usage),
        ("support", support),
        ("surveys", surveys),
        ("renewal", due),
        ("revenue", revenue),
    ]
    return ReviewPack(
        client_id=cid,
        period=PackPeriod(start=window.start, end=window.end, days=days),
        health=health,
        usage=usage,
        support=support,
        surveys=surveys,
        renewal=due,
        revenue=revenue,
        escalations=_escalations(session, cid, as_of),
        missing=[name for name, value in named if value is None],
    )
