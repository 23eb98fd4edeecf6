"""Lead scores, stored on the lead: engagement events in, fit and intent recomputed set-based
(one query per fact for every lead in scope, one executemany to store), and the ranked call list."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import and_, bindparam, case, func, literal, update
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.outputs import Out
from revops_core.params import SingleLine, end_of_day, start_of_day
from revops_sales.analytics import lead_scoring as maths
from revops_sales.models.leads import SalesLead, SalesLeadEvent
from revops_sales.services import icp as icp_service
from revops_sales.services import leads
from revops_sales.services.leads import LeadOut

OPEN_STATUSES = ("new", "working", "qualified")


class EventIn(BaseModel):
    kind: Annotated[str, SingleLine] = Field(
        min_length=1, max_length=50, description="e.g. page_view, email_click, demo_request."
    )
    points: float = Field(ge=0, le=100, description="Before decay and caps.")
    occurred_at: datetime = Field(description="UTC.")


class ScoreRun(Out):
    as_of: date = Field(description="Day intent was computed for.")
    scored: int = Field(description="Leads scored.")
    mql: int = Field(description="Of them, marketing-qualified (fit and intent past thresholds).")
    fit_unavailable: int = Field(description="Leads with no fit (no ICP, or no data for any criterion).")
    events_recorded: int = Field(description="Events stored by this call.")
    notes: list[str] = Field(description="Caveats.")


class BestLead(LeadOut):
    rank: int = Field(description="1 = call first.")
    mql: bool = Field(description="Fit and intent both past their MQL thresholds.")
    priority: float = Field(description="(fit + intent)/2; an unknown score adds nothing.")
    why: list[str] = Field(description="Reasons: fit criteria matched, intent by kind, thresholds.")


class BestLeads(Out):
    items: list[BestLead] = Field(description="Best first.")
    unscored: int = Field(description="Open leads never scored (run score_leads action=recompute).")


def record_events(session: Session, tenant: str, lead_id: int, events: Sequence[EventIn]) -> int:
    if not events:
        raise ValidationFailed("Give at least one event.", field="events")
    lead = leads.get(session, tenant, lead_id)
    now = utcnow()
    for i, event in enumerate(events):
        at = event.occurred_at
        if at.tzinfo is None:
            raise ValidationFailed(f"events[{i}].occurred_at needs a time zone.", field="events")
        if at > now:
            raise ValidationFailed(f"events[{i}].occurred_at is in the future.", field="events")
    session.add_all(
        SalesLeadEvent(
            tenant=tenant, lead_id=lead.id or 0, kind=e.kind, points=e.points, occurred_at=e.occurred_at
        )
        for e in events
    )
    session.flush()
    return len(events)


def recompute(
    session: Session, tenant: str, as_of: date, *, lead_ids: Sequence[int] | None = None
) -> ScoreRun:
    """Fit and intent of every live lead (or those named) as of the end of `as_of`."""
    icp = icp_service.load(session, tenant)
    criteria = icp_service.criteria_of(icp)
    settings = icp_service.intent_settings_of(icp)
    scope: list[Any] = [SalesLead.tenant == tenant, col(SalesLead.deleted_at).is_(None)]
    if lead_ids is not None:
        scope.append(col(SalesLead.id).in_(lead_ids))
    fields = [getattr(SalesLead, name) for name in maths.FIT_FIELDS]
    rows = session.execute(select(SalesLead.id, *fields).where(*scope)).all()

    until = end_of_day(as_of)
    since = start_of_day(as_of - timedelta(days=settings.window_days - 1))
    in_scope = select(SalesLead.id).where(*scope)
    events: dict[int, list[tuple[str, float, date]]] = defaultdict(list)
    for lead_id, kind, points, at in session.execute(
        select(SalesLeadEvent.lead_id, SalesLeadEvent.kind, SalesLeadEvent.points, SalesLeadEvent.occurred_at)
        .where(col(SalesLeadEvent.lead_id).in_(in_scope))
        .where(col(SalesLeadEvent.occurred_at) >= since, col(SalesLeadEvent.occurred_at) <= until)
    ):
        events[lead_id].append((kind, float(points), at.date()))
    engaged = set(
        session.execute(
            select(SalesLeadEvent.lead_id)
            .where(col(SalesLeadEvent.lead_id).in_(in_scope), col(SalesLeadEvent.occurred_at) <= until)
            .distinct()
        ).scalars()
    )

    now = utcnow()
    updates: list[dict[str, object]] = []
    mql = no_fit = 0
    for row in rows:
        attrs = dict(zip(maths.FIT_FIELDS, row[1:], strict=True))
        fit = maths.fit(attrs, criteria)
        intent = maths.intent(events.get(row[0], []), as_of, settings) if row[0] in engaged else None
        intent_score = intent.score if intent else None
        mql += maths.is_mql(fit.score, intent_score, settings)
        no_fit += fit.score is None
        detail = {
            "as_of": as_of.isoformat(),
            "fit_matched": fit.matched,
            "fit_unmatched": fit.unmatched,
            "fit_unknown": fit.unknown,
            "fit_known_share": fit.known_share,
            "intent_by_kind": intent.by_kind if intent else {},
        }
        updates.append(
            {
                "lead_id": row[0],
                "fit": fit.score,
                "intent": intent_score,
                "detail": json.dumps(detail),
                "at": now,
            }
        )
    if updates:
        table = SalesLead.__table__  # type: ignore[attr-defined]
        session.execute(
            update(table)
            .where(table.c.id == bindparam("lead_id"))
            .values(
                fit_score=bindparam("fit"),
                intent_score=bindparam("intent"),
                score_detail=bindparam("detail"),
                scored_at=bindparam("at"),
            ),
            updates,
            execution_options={"synchronize_session": False},
        )
    notes = [] if criteria else ["No ideal customer profile: configure_prospecting action=icp; fit is null."]
    return ScoreRun(
        as_of=as_of, scored=len(rows), mql=mql, fit_unavailable=no_fit, events_recorded=0, notes=notes
    )


def _why(lead: SalesLead, mql: bool, settings: maths.IntentSettings) -> list[str]:
    detail = json.loads(lead.score_detail or "{}")
    why = [f"fits: {m}" for m in detail.get("fit_matched", [])]
    by_kind: dict[str, float] = detail.get("intent_by_kind", {})
    why += [f"intent: {k} {v:g} pts" for k, v in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    why += [f"unknown: {u}" for u in detail.get("fit_unknown", [])]
    share = detail.get("fit_known_share")
    if lead.fit_score is None and share is not None and share < maths.MIN_KNOWN_SHARE:
        why.append(f"fit not scored: only {share:.0%} of the profile's weight is known")
    if mql:
        why.append(f"MQL: fit ≥ {settings.mql_fit:g} and intent ≥ {settings.mql_intent:g}")
    return why


def best(session: Session, tenant: str, *, top: int, owner: str | None) -> BestLeads:
    settings = icp_service.intent_settings_of(icp_service.load(session, tenant))
    open_live: list[Any] = [
        SalesLead.tenant == tenant,
        col(SalesLead.deleted_at).is_(None),
        col(SalesLead.status).in_(OPEN_STATUSES),
    ]
    if owner is not None:
        open_live.append(SalesLead.owner == owner)
    fit, intent = col(SalesLead.fit_score), col(SalesLead.intent_score)
    is_mql = case((and_(fit >= settings.mql_fit, intent >= settings.mql_intent), 1), else_=0)
    priority = (func.coalesce(fit, literal(0.0)) + func.coalesce(intent, literal(0.0))) / 2
    rows = session.exec(
        select(SalesLead)
        .where(*open_live, col(SalesLead.scored_at).is_not(None))
        .order_by(is_mql.desc(), priority.desc(), col(SalesLead.id))
        .limit(top)
    ).all()
    unscored = session.execute(
        select(func.count()).select_from(SalesLead).where(*open_live, col(SalesLead.scored_at).is_(None))
    ).scalar_one()
    items = []
    for rank, lead in enumerate(rows, start=1):
        flag = maths.is_mql(lead.fit_score, lead.intent_score, settings)
        items.append(
            BestLead.model_validate(
                {
                    **LeadOut.model_validate(lead).model_dump(),
                    "rank": rank,
                    "mql": flag,
                    "priority": maths.priority(lead.fit_score, lead.intent_score),
                    "why": _why(lead, flag, settings),
                }
            )
        )
    return BestLeads(items=items, unscored=int(unscored))
