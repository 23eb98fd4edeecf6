"""One client at a glance, as of a day: for get_client_overview, the client resource and the QBR prompt."""

from __future__ import annotations

import json
from datetime import date, datetime

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.params import end_of_day
from revops_cs.models.clients import CsClient
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.support import OPEN_STATUSES, CsTicket
from revops_cs.output import Out
from revops_cs.services.clients import ClientOut, client_out
from revops_cs.services.health import latest_snapshot
from revops_cs.services.usage import UsageSummary, usage_summary


class HealthBrief(Out):
    score: float = Field(description="Health score 0–100.")
    band: str = Field(description="Health band.")
    as_of: date = Field(description="Date of the snapshot.")
    missing: list[str] = Field(description="Components that had no data.")

    @classmethod
    def of(cls, snapshot: CsHealthSnapshot) -> HealthBrief:
        return cls(
            score=snapshot.score,
            band=snapshot.band,
            as_of=snapshot.as_of,
            missing=[str(x) for x in json.loads(snapshot.missing or "[]")],
        )


class Overview(Out):
    client: ClientOut = Field(description="Profile.")
    health: HealthBrief | None = Field(description="Latest stored snapshot; null if none.")
    usage_30d: UsageSummary = Field(description="Usage, last 30 days.")
    open_tickets: int = Field(description="Unsolved tickets.")
    latest_nps: int | None = Field(description="Latest NPS answer; null if none.")
    latest_nps_at: datetime | None = Field(description="When it was given.")
    renewal_in_days: int | None = Field(description="Days to renewal; null if no date.")
    last_stage_change: datetime | None = Field(description="Entered current stage at.")
    missing: list[str] = Field(description="Facts without data.")


def build_overview(session: Session, client: CsClient, as_of: date) -> Overview:
    """The overview of one client as of a day, from its stored rows."""
    cid = client.id or 0
    snap = latest_snapshot(session, cid, as_of)
    open_tickets = session.exec(
        select(func.count()).where(CsTicket.client_id == cid, col(CsTicket.status).in_(OPEN_STATUSES))
    ).one()
    nps = session.exec(
        select(CsFeedback)
        .where(
            CsFeedback.client_id == cid,
            CsFeedback.kind == "nps",
            col(CsFeedback.score).is_not(None),
            CsFeedback.submitted_at < end_of_day(as_of),
        )
        .order_by(col(CsFeedback.submitted_at).desc(), col(CsFeedback.id).desc())
    ).first()
    usage = usage_summary(session, cid, as_of)
    missing = [
        name
        for name, absent in (
            ("health", snap is None),
            ("nps", nps is None),
            ("usage", usage.last_event_at is None),
            ("renewal_date", client.renewal_date is None),
        )
        if absent
    ]
    return Overview(
        client=client_out(session, client),
        health=HealthBrief.of(snap) if snap else None,
        usage_30d=usage,
        open_tickets=open_tickets,
        latest_nps=nps.score if nps else None,
        latest_nps_at=nps.submitted_at if nps else None,
        renewal_in_days=(client.renewal_date - as_of).days if client.renewal_date else None,
        last_stage_change=client.stage_changed_at,
        missing=missing,
    )
