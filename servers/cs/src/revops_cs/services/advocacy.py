"""The advocacy programme: advocacy records, the points ledger, and promoter candidates.

A client's points balance is the sum of its ledger rows (earn > 0, redeem < 0), never a stored
total; candidates are live clients whose latest NPS is 9–10 and latest health band excellent/good,
who are not already active advocates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.paging import Page, paginate
from revops_core.params import end_of_day
from revops_cs.models.clients import CsClient
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.reviews import CsAdvocacy, CsAdvocacyPoints
from revops_cs.output import Out
from revops_cs.services.business_reviews import contact_of
from revops_cs.services.health import latest_snapshots
from revops_cs.services.health_facts import portfolio_ids
from revops_cs.services.signals import live_clients

PROMOTER_MIN = 9
"""NPS 9–10 is a promoter (analytics/surveys.py)."""
HEALTHY_BANDS = ("excellent", "good")


class AdvocacyOut(Out):
    id: int = Field(description="Record id.")
    client_id: int = Field(description="Client.")
    contact_id: int | None = Field(description="Contact.")
    kind: str = Field(description="reference|case_study|review|referral.")
    status: str = Field(description="proposed|active|done.")


class Candidate(Out):
    client_id: int = Field(description="Client.")
    nps_score: int = Field(description="Latest NPS answer.")
    nps_at: datetime = Field(description="When it was given.")
    health_score: float = Field(description="Latest health score.")
    health_band: str = Field(description="Its band.")
    health_as_of: date = Field(description="Day of that snapshot.")


def page(
    session: Session,
    tenant: str,
    *,
    client_id: int | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[AdvocacyOut]:
    query = select(CsAdvocacy).where(CsAdvocacy.tenant == tenant)
    if client_id is not None:
        query = query.where(CsAdvocacy.client_id == client_id)
    if status is not None:
        query = query.where(CsAdvocacy.status == status)
    return paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CsAdvocacy.id)],
        scope="advocacy",
        item=AdvocacyOut.model_validate,
    )


def add(
    session: Session,
    *,
    tenant: str,
    actor: str,
    client: CsClient,
    contact_id: int | None,
    kind: str,
    status: str | None,
    notes: str | None,
) -> CsAdvocacy:
    if contact_id is not None:
        contact_of(session, client, contact_id, "contact_id")
    record = CsAdvocacy(
        tenant=tenant,
        client_id=client.id or 0,
        contact_id=contact_id,
        kind=kind,
        status=status or "proposed",
        notes=notes,
        created_by=actor,
    )
    session.add(record)
    session.flush()
    return record


def balance(session: Session, client_id: int) -> int:
    """The client's points: the sum of its ledger rows (0 without rows)."""
    total = session.exec(
        select(func.coalesce(func.sum(CsAdvocacyPoints.points), 0)).where(
            CsAdvocacyPoints.client_id == client_id
        )
    ).one()
    return int(total)


def record_points(
    session: Session, *, actor: str, client: CsClient, contact_id: int | None, points: int, notes: str | None
) -> tuple[CsAdvocacyPoints, int]:
    """Earn (points > 0) or redeem (points < 0, at most the balance); the ledger row and new balance."""
    if points == 0:
        raise ValidationFailed(
            "points must not be 0.", field="points", hint="Positive earns, negative redeems."
        )
    if contact_id is not None:
        contact_of(session, client, contact_id, "contact_id")
    # Lock the client row first (PostgreSQL; SQLite's write transaction already serialises), so two
    # concurrent redeems cannot both pass the balance check.
    session.exec(select(CsClient.id).where(CsClient.id == client.id).with_for_update()).one()
    before = balance(session, client.id or 0)
    if points < 0 and -points > before:
        raise ValidationFailed(
            f"Cannot redeem {-points} points: client {client.id} has {before}.",
            field="points",
            hint=f"Redeem at most {before} points.",
        )
    row = CsAdvocacyPoints(
        client_id=client.id or 0,
        contact_id=contact_id,
        entry="earn" if points > 0 else "redeem",
        points=points,
        reason=notes,
        actor=actor,
    )
    session.add(row)
    session.flush()
    return row, before + points


def _latest_nps(session: Session, among: Any, as_of: date) -> dict[int, CsFeedback]:
    query = (
        select(CsFeedback)
        .where(
            col(CsFeedback.client_id).in_(among),
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


def candidates(session: Session, tenant: str, as_of: date, limit: int) -> list[Candidate]:
    """Promoters in good health who are not active advocates, by client id, with the evidence."""
    active = set(
        session.exec(
            select(CsAdvocacy.client_id).where(CsAdvocacy.tenant == tenant, CsAdvocacy.status == "active")
        )
    )
    ids = [c.id or 0 for c in live_clients(session, tenant) if c.id not in active]
    if not ids:
        return []
    portfolio = portfolio_ids(tenant)  # the clients `live_clients` lists; active advocates are skipped below
    nps, health = _latest_nps(session, portfolio, as_of), latest_snapshots(session, portfolio, as_of)
    out = []
    for cid in ids:
        answer, snap = nps.get(cid), health.get(cid)
        if answer is None or answer.score is None or snap is None:
            continue
        if answer.score < PROMOTER_MIN or snap.band not in HEALTHY_BANDS:
            continue
        out.append(
            Candidate(
                client_id=cid,
                nps_score=answer.score,
                nps_at=answer.submitted_at,
                health_score=snap.score,
                health_band=snap.band,
                health_as_of=snap.as_of,
            )
        )
    return out[:limit]
