"""The prep brief of a meeting, from stored data only: deal, stage history, open tasks, last touches,
contacts and — when CS shares this database — the company's latest CS health score.

CS health is read with one documented query, not through CS code (Sales does not depend on the CS
package): when the tables `cs_client` and `cs_health_snapshot` exist in this database, the newest
snapshot (by `as_of`, then id) of the tenant's live CS client whose `company_id` is the meeting's
company. Otherwise the health is null with the reason.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import inspect, text
from sqlmodel import Session, col, select

from revops_core.models import CoreContact
from revops_core.outputs import Out
from revops_sales.services import activities, deals, meetings, tasks
from revops_sales.services.companies import ContactOut

LAST_TOUCHES = 10
CS_TABLES = ("cs_client", "cs_health_snapshot")
_CS_HEALTH = text(
    "SELECT s.score, s.band, s.as_of FROM cs_health_snapshot s JOIN cs_client c ON c.id = s.client_id "
    "WHERE c.company_id = :company AND c.tenant = :tenant AND c.deleted_at IS NULL "
    "ORDER BY s.as_of DESC, s.id DESC LIMIT 1"
)


class CsHealth(Out):
    score: float | None = Field(description="Latest CS health score (0–100).")
    band: str | None = Field(description="Its band.")
    as_of: date | None = Field(description="Snapshot date.")
    reason: str | None = Field(description="Why there is no score.")


class MeetingBrief(Out):
    meeting: meetings.MeetingOut = Field(description="The meeting.")
    deal: deals.DealDetail | None = Field(description="Its deal with every stage move (null: no deal).")
    open_tasks: list[tasks.TaskOut] = Field(description="The deal's open tasks, due soonest first.")
    last_touches: list[activities.ActivityOut] = Field(description="Newest activities of the deal/company.")
    contacts: list[ContactOut] = Field(description="The company's live contacts (or the invitee).")
    cs_health: CsHealth = Field(description="Customer Success health of the company.")
    notes: list[str] = Field(description="What the brief could not include and why.")


def cs_health(session: Session, tenant: str, company_id: int | None) -> CsHealth:
    if company_id is None:
        return CsHealth(score=None, band=None, as_of=None, reason="The meeting has no company.")
    tables = inspect(session.connection())
    if not all(tables.has_table(name) for name in CS_TABLES):
        return CsHealth(score=None, band=None, as_of=None, reason="CS not installed in this database")
    row = session.execute(_CS_HEALTH, {"company": company_id, "tenant": tenant}).first()
    if row is None:
        return CsHealth(
            score=None, band=None, as_of=None, reason="CS has no health snapshot for this company."
        )
    as_of = row[2] if isinstance(row[2], date) else date.fromisoformat(str(row[2])[:10])
    return CsHealth(score=float(row[0]), band=str(row[1]), as_of=as_of, reason=None)


def brief(session: Session, tenant: str, meeting_id: int) -> MeetingBrief:
    meeting = meetings.get(session, tenant, meeting_id)
    notes: list[str] = []
    deal = deals.detail(session, tenant, meeting.deal_id) if meeting.deal_id is not None else None
    if deal is None:
        notes.append("No deal is linked: no stage history or open tasks.")
    open_tasks = tasks.open_of_deal(session, deal.id) if deal is not None else []
    if meeting.deal_id is not None:
        touches = activities.latest(session, tenant, deal_id=meeting.deal_id, limit=LAST_TOUCHES)
    elif meeting.company_id is not None:
        touches = activities.latest(session, tenant, company_id=meeting.company_id, limit=LAST_TOUCHES)
    else:
        touches = activities.latest(session, tenant, contact_id=meeting.contact_id, limit=LAST_TOUCHES)
    query = select(CoreContact).where(CoreContact.tenant == tenant, col(CoreContact.deleted_at).is_(None))
    if meeting.company_id is not None:
        query = query.where(CoreContact.company_id == meeting.company_id)
    else:
        query = query.where(CoreContact.id == meeting.contact_id)
    contacts = [ContactOut.model_validate(c) for c in session.exec(query.order_by(col(CoreContact.id)))]
    health = cs_health(session, tenant, meeting.company_id)
    if health.score is None:
        notes.append(f"cs_health: {health.reason}")
    return MeetingBrief(
        meeting=meetings.MeetingOut.model_validate(meeting),
        deal=deal,
        open_tasks=open_tasks,
        last_touches=touches,
        contacts=contacts,
        cs_health=health,
        notes=notes,
    )
