"""Communication tools for business reviews (EBR/QBR with a computed QBR pack) and the advocacy programme.

Registered on the `communication` toolset. The QBR pack only reports numbers read from stored rows,
through the functions the health, support, feedback and expansion tools already use; a section without
rows is null and named in `missing`.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.models import CoreContact
from revops_core.paging import after_id, next_cursor
from revops_core.server import Call
from revops_cs.analytics import engagement as eng
from revops_cs.analytics import health as hmath
from revops_cs.common import Limit, end_of_day, get_client, needed, resolve_as_of, start_of_day
from revops_cs.models.clients import CsClient
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.retention import CsEscalation
from revops_cs.models.reviews import CsAdvocacy, CsAdvocacyPoints, CsBusinessReview
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsHealthSnapshot
from revops_cs.output import MAX_ID, Out, arg
from revops_cs.services.health import latest_snapshots
from revops_cs.services.signals import live_clients
from revops_cs.services.usage import usage_rows
from revops_cs.tools.feedback import feedback_rows, survey_scores
from revops_cs.tools.support import performance
from revops_cs.toolsets import reviews as toolset

ClientArg = Annotated[int | None, arg("Client.", ge=1, le=MAX_ID)]
Notes = Annotated[str | None, arg("Notes.", max_length=2000)]
Page = Annotated[str | None, arg("Page token.", max_length=500)]


def _as_of(day: date | None) -> date:
    """`resolve_as_of` for the `date` parameter: the error names `date`, the field the caller passed."""
    try:
        return resolve_as_of(day)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field="date", hint=exc.hint) from exc


def _contact_of(session: Session, client: CsClient, contact_id: int, field: str) -> CoreContact:
    """The live contact if it belongs to the client's company; `validation_error` naming `field` if not."""
    contact = session.get(CoreContact, contact_id)
    if contact is None or contact.deleted_at is not None or contact.company_id != client.company_id:
        raise ValidationFailed(
            f"Contact {contact_id} is not a contact of client {client.id}.",
            field=field,
            hint="Use contact ids of this client's company.",
        )
    return contact


# --------------------------------------------------------------------------- business reviews


class ReviewOut(Out):
    id: int = Field(description="Review id.")
    client_id: int = Field(description="Client.")
    kind: str = Field(description="ebr|qbr.")
    on: date = Field(description="Scheduled day.")
    status: str = Field(description="scheduled|completed.")
    attendees: list[int] = Field(description="Contact ids.")
    notes: str | None = Field(description="Notes.")


class ReviewResult(Out):
    action: str = Field(description="Action done.")
    reviews: list[ReviewOut] = Field(description="Reviews touched or listed.")
    next_cursor: str | None = Field(description="list: next page; null at end.")
    pack: dict[str, Any] | None = Field(
        description="pack: health, usage, support, surveys, renewal, revenue, escalations; "
        "missing names sections without data (null)."
    )


def _review_out(r: CsBusinessReview) -> ReviewOut:
    return ReviewOut(
        id=r.id or 0,
        client_id=r.client_id,
        kind=r.kind,
        on=r.scheduled_for,
        status=r.status,
        attendees=json.loads(r.attendees),
        notes=r.notes,
    )


def _health(session: Session, client_id: int, start: date, end: date) -> dict[str, Any] | None:
    now = latest_snapshots(session, [client_id], end).get(client_id)
    if now is None:
        return None
    snaps = list(
        session.exec(
            select(CsHealthSnapshot)
            .where(
                CsHealthSnapshot.client_id == client_id,
                col(CsHealthSnapshot.as_of) >= start,
                col(CsHealthSnapshot.as_of) <= end,
            )
            .order_by(col(CsHealthSnapshot.as_of), col(CsHealthSnapshot.id))
        )
    )
    days = [float((s.as_of - start).days) / 7 for s in snaps]
    slope = hmath.slope(days, [s.score for s in snaps]) if len(set(days)) >= 2 else None
    return {
        "score": now.score,
        "band": now.band,
        "as_of": now.as_of.isoformat(),
        "snapshots": len(snaps),
        "first": snaps[0].score if snaps else None,
        "last": snaps[-1].score if snaps else None,
        "slope_per_week": None if slope is None else round(slope, 3),
    }


def _usage(call: Call, client_id: int, start: date, end: date) -> dict[str, Any] | None:
    prev_start = start - timedelta(days=(end - start).days + 1)
    rows = usage_rows(call.db, client_id, prev_start, end)
    if not rows:
        return None
    logins = [(d, u) for d, u, e, _ in rows if e == "login"]
    before = start - timedelta(days=1)
    return {
        "events": sum(1 for r in rows if r[0] >= start),
        "previous_events": sum(1 for r in rows if r[0] < start),
        "active_users": len(eng.active_users(logins, start, end)),
        "previous_active_users": len(eng.active_users(logins, prev_start, before)),
    }


def _support(session: Session, client_id: int, start: date, end: date) -> dict[str, Any] | None:
    perf = performance(session, client_id, start, end, end)
    solved = session.exec(
        select(func.count()).where(
            CsTicket.client_id == client_id,
            col(CsTicket.solved_at) >= start_of_day(start),
            col(CsTicket.solved_at) < end_of_day(end),
        )
    ).one()
    if perf.tickets == 0 and solved == 0:
        return None
    return {
        "opened": perf.tickets,
        "solved": int(solved),
        "first_response_compliance": perf.first_response_compliance,
        "resolution_compliance": perf.resolution_compliance,
    }


def _revenue(session: Session, client_id: int, start: date, end: date) -> dict[str, Any] | None:
    rows = list(
        session.exec(
            select(CsMrrMonth)
            .where(
                CsMrrMonth.client_id == client_id,
                col(CsMrrMonth.month) >= start.replace(day=1),
                col(CsMrrMonth.month) <= end,
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
    return {
        "currency": last.currency,
        "from_month": first.month.isoformat(),
        "to_month": last.month.isoformat(),
        "mrr_minor": last.mrr_minor,
        "arr_minor": 12 * last.mrr_minor,
        "mrr_change_minor": change,
        "arr_change_minor": None if change is None else 12 * change,
    }


def _escalations(session: Session, client_id: int, end: date) -> list[int]:
    upper = end_of_day(end)
    query = select(CsEscalation.id).where(
        CsEscalation.client_id == client_id,
        col(CsEscalation.opened_at) < upper,
        (col(CsEscalation.resolved_at).is_(None)) | (col(CsEscalation.resolved_at) >= upper),
    )
    return [int(i) for i in session.exec(query.order_by(col(CsEscalation.id)))]


def qbr_pack(call: Call, client: CsClient, as_of: date, days: int) -> dict[str, Any]:
    """The QBR pack of one client for the `days` ending on `as_of`, every number read from rows."""
    cid = client.id or 0
    start = as_of - timedelta(days=days - 1)
    scores = survey_scores(feedback_rows(call.db, cid, start, as_of))
    sections: dict[str, Any] = {
        "health": _health(call.db, cid, start, as_of),
        "usage": _usage(call, cid, start, as_of),
        "support": _support(call.db, cid, start, as_of),
        "surveys": scores.model_dump(mode="json")
        if scores.nps or scores.csat.responses or scores.ces.responses
        else None,
        "renewal": None
        if client.renewal_date is None
        else {"date": client.renewal_date.isoformat(), "days_left": (client.renewal_date - as_of).days},
        "revenue": _revenue(call.db, cid, start, as_of),
    }
    missing = [name for name, value in sections.items() if value is None]
    open_ids = _escalations(call.db, cid, as_of)
    period = {"start": start.isoformat(), "end": as_of.isoformat(), "days": days}
    escalations = {"open": len(open_ids), "ids": open_ids}
    return {"client_id": cid, "period": period, **sections, "escalations": escalations, "missing": missing}


def _schedule(
    call: Call, client: CsClient, day: date | None, kind: str | None, attendees: list[int]
) -> CsBusinessReview:
    when = needed(day, "date", "schedule")
    for contact_id in attendees:
        _contact_of(call.db, client, contact_id, "attendees")
    review = CsBusinessReview(
        tenant=call.tenant,
        client_id=client.id or 0,
        kind=needed(kind, "kind", "schedule"),
        scheduled_for=when,
        attendees=json.dumps(sorted(set(attendees))),
        created_by=call.actor,
    )
    call.db.add(review)
    call.db.flush()
    return review


def _list_reviews(
    call: Call, client_id: int | None, day: date, past: bool, limit: int, cursor: str | None
) -> tuple[list[CsBusinessReview], str | None]:
    query = select(CsBusinessReview).where(
        CsBusinessReview.tenant == call.tenant, col(CsBusinessReview.id) > after_id(cursor)
    )
    if client_id is not None:
        query = query.where(CsBusinessReview.client_id == client_id)
    day_col = col(CsBusinessReview.scheduled_for)
    query = query.where(day_col < day if past else day_col >= day)
    rows = list(call.db.exec(query.order_by(col(CsBusinessReview.id)).limit(limit + 1)))
    return rows[:limit], next_cursor(rows, limit)


@toolset.tool(tier="write", idempotent=False)
def manage_business_reviews(
    call: Call,
    action: Annotated[Literal["schedule", "list", "complete", "pack"], arg("What to do.")],
    client_id: ClientArg = None,
    review_id: Annotated[int | None, arg("complete: review.", ge=1, le=MAX_ID)] = None,
    date: Annotated[date | None, arg("schedule: day; else as-of (today).")] = None,
    kind: Annotated[Literal["ebr", "qbr"] | None, arg("schedule.")] = None,
    attendees: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None,
        arg("schedule: client's contact ids.", max_length=50),
    ] = None,
    notes: Notes = None,
    past: Annotated[bool, arg("list: past ones.")] = False,
    days: Annotated[int, arg("pack: period days.", ge=7, le=366)] = 90,
    limit: Limit = 50,
    cursor: Page = None,
) -> ReviewResult:
    """EBR/QBR reviews; pack = QBR figures from stored data."""
    if action == "complete":
        review = call.db.get(CsBusinessReview, needed(review_id, "review_id", action))
        if review is None or review.tenant != call.tenant:
            raise NotFound(f"No review {review_id}.", field="review_id", hint="Use action=list.")
        review.status, review.notes = "completed", needed(notes, "notes", action)
        review.completed_at = datetime.now(UTC)
        call.db.add(review)
        call.target = f"cs_business_review:{review.id}"
        return ReviewResult(action=action, reviews=[_review_out(review)], next_cursor=None, pack=None)
    if action == "list":
        call.no_change()
        if client_id is not None:
            get_client(call.db, client_id)
        rows, more = _list_reviews(call, client_id, _as_of(date), past, limit, cursor)
        return ReviewResult(
            action=action, reviews=[_review_out(r) for r in rows], next_cursor=more, pack=None
        )
    client = get_client(call.db, needed(client_id, "client_id", action))
    if action == "pack":
        call.no_change()
        pack = qbr_pack(call, client, _as_of(date), days)
        return ReviewResult(action=action, reviews=[], next_cursor=None, pack=pack)
    review = _schedule(call, client, date, kind, attendees or [])
    if notes is not None:
        review.notes = notes
    call.target = f"cs_business_review:{review.id}"
    return ReviewResult(action=action, reviews=[_review_out(review)], next_cursor=None, pack=None)


# --------------------------------------------------------------------------- advocacy


class AdvocacyOut(Out):
    id: int = Field(description="Record id.")
    client_id: int = Field(description="Client.")
    contact_id: int | None = Field(description="Contact.")
    kind: str = Field(description="Kind.")
    status: str = Field(description="Status.")


class AdvocacyResult(Out):
    action: str = Field(description="Action done.")
    records: list[AdvocacyOut] = Field(description="add/list: records.")
    next_cursor: str | None = Field(description="list: next page; null at end.")
    balance: int | None = Field(description="record_points/balance: client's points (ledger sum).")
    candidates: list[dict[str, Any]] = Field(
        description="Promoter (latest NPS 9–10) + health excellent/good, not active advocates; with evidence."
    )


def points_balance(session: Session, client_id: int) -> int:
    """The client's points: the sum of its ledger rows (0 without rows)."""
    total = session.exec(
        select(func.coalesce(func.sum(CsAdvocacyPoints.points), 0)).where(
            CsAdvocacyPoints.client_id == client_id
        )
    ).one()
    return int(total)


def _latest_nps(session: Session, client_ids: list[int], as_of: date) -> dict[int, CsFeedback]:
    query = (
        select(CsFeedback)
        .where(
            col(CsFeedback.client_id).in_(client_ids),
            CsFeedback.kind == "nps",
            col(CsFeedback.score).is_not(None),
            col(CsFeedback.submitted_at) < end_of_day(as_of),
        )
        .order_by(col(CsFeedback.submitted_at).desc(), col(CsFeedback.id).desc())
    )
    out: dict[int, CsFeedback] = {}
    for row in session.exec(query):
        out.setdefault(row.client_id, row)
    return out


def advocacy_candidates(session: Session, tenant: str, as_of: date, limit: int) -> list[dict[str, Any]]:
    """Live clients whose latest NPS is 9–10 and latest health band excellent/good, minus active advocates."""
    active = set(
        session.exec(
            select(CsAdvocacy.client_id).where(CsAdvocacy.tenant == tenant, CsAdvocacy.status == "active")
        )
    )
    ids = [c.id or 0 for c in live_clients(session, tenant) if c.id not in active]
    if not ids:
        return []
    nps, health = _latest_nps(session, ids, as_of), latest_snapshots(session, ids, as_of)
    out = []
    for cid in ids:
        answer, snap = nps.get(cid), health.get(cid)
        if (
            answer is None
            or snap is None
            or (answer.score or 0) < 9
            or snap.band not in ("excellent", "good")
        ):
            continue
        out.append(
            {
                "client_id": cid,
                "nps_score": answer.score,
                "nps_at": answer.submitted_at.isoformat(),
                "health_score": snap.score,
                "health_band": snap.band,
                "health_as_of": snap.as_of.isoformat(),
            }
        )
    return out[:limit]


def _record_points(
    call: Call, client: CsClient, contact_id: int | None, points: int | None, notes: str | None
) -> int:
    amount = needed(points, "points", "record_points")
    if amount == 0:
        raise ValidationFailed(
            "points must not be 0.", field="points", hint="Positive earns, negative redeems."
        )
    # Lock the client row first (PostgreSQL; SQLite's write transaction already serialises), so two
    # concurrent redeems cannot both pass the balance check.
    call.db.exec(select(CsClient.id).where(CsClient.id == client.id).with_for_update()).one()
    balance = points_balance(call.db, client.id or 0)
    if amount < 0 and -amount > balance:
        raise ValidationFailed(
            f"Cannot redeem {-amount} points: client {client.id} has {balance}.",
            field="points",
            hint=f"Redeem at most {balance} points.",
        )
    row = CsAdvocacyPoints(
        client_id=client.id or 0,
        contact_id=contact_id,
        entry="earn" if amount > 0 else "redeem",
        points=amount,
        reason=notes,
        actor=call.actor,
    )
    call.db.add(row)
    call.db.flush()
    call.target = f"cs_advocacy_points:{row.id}"
    return balance + amount


def _advocacy_out(r: CsAdvocacy) -> AdvocacyOut:
    return AdvocacyOut(
        id=r.id or 0, client_id=r.client_id, contact_id=r.contact_id, kind=r.kind, status=r.status
    )


@toolset.tool(tier="write", idempotent=False)
def manage_advocacy(
    call: Call,
    action: Annotated[Literal["add", "list", "record_points", "balance", "candidates"], arg("What to do.")],
    client_id: ClientArg = None,
    contact_id: Annotated[int | None, arg("Client's contact.", ge=1, le=MAX_ID)] = None,
    kind: Annotated[
        Literal["reference", "case_study", "review", "referral"] | None, arg("add: kind.")
    ] = None,
    status: Annotated[Literal["proposed", "active", "done"] | None, arg("add: status; list: filter.")] = None,
    points: Annotated[int | None, arg("record_points: +earn/−redeem.", ge=-1_000_000, le=1_000_000)] = None,
    notes: Notes = None,
    date: Annotated[date | None, arg("candidates: as-of (today).")] = None,
    limit: Limit = 50,
    cursor: Page = None,
) -> AdvocacyResult:
    """Advocacy records, points ledger, promoter candidates."""
    result = AdvocacyResult(action=action, records=[], next_cursor=None, balance=None, candidates=[])
    if action == "candidates":
        call.no_change()
        result.candidates = advocacy_candidates(call.db, call.tenant, _as_of(date), limit)
        return result
    if action == "list":
        call.no_change()
        query = select(CsAdvocacy).where(CsAdvocacy.tenant == call.tenant)
        if client_id is not None:
            query = query.where(CsAdvocacy.client_id == get_client(call.db, client_id).id)
        if status is not None:
            query = query.where(CsAdvocacy.status == status)
        query = query.where(col(CsAdvocacy.id) > after_id(cursor)).order_by(col(CsAdvocacy.id))
        rows = list(call.db.exec(query.limit(limit + 1)))
        result.records, result.next_cursor = (
            [_advocacy_out(r) for r in rows[:limit]],
            next_cursor(rows, limit),
        )
        return result
    client = get_client(call.db, needed(client_id, "client_id", action))
    if contact_id is not None:
        _contact_of(call.db, client, contact_id, "contact_id")
    if action == "balance":
        call.no_change()
        result.balance = points_balance(call.db, client.id or 0)
        return result
    if action == "record_points":
        result.balance = _record_points(call, client, contact_id, points, notes)
        return result
    record = CsAdvocacy(
        tenant=call.tenant,
        client_id=client.id or 0,
        contact_id=contact_id,
        kind=needed(kind, "kind", action),
        status=status or "proposed",
        notes=notes,
        created_by=call.actor,
    )
    call.db.add(record)
    call.db.flush()
    call.target = f"cs_advocacy:{record.id}"
    result.records = [_advocacy_out(record)]
    return result
