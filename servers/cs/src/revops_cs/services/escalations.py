"""Escalations: open one with its SLA deadline (from the severity's target), list, resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field, PrivateAttr, computed_field
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.paging import Page, paginate
from revops_cs.models.clients import CsClient
from revops_cs.models.escalations import CsEscalation
from revops_cs.output import Out
from revops_cs.services import thresholds
from revops_cs.services.thresholds import Severity

Status = Literal["open", "resolved"]


class EscalationOut(Out):
    id: int = Field(description="Escalation id.")
    client_id: int = Field(description="Client id.")
    severity: Severity = Field(description="urgent / high / normal / low.")
    title: str = Field(description="Title.")
    status: Status = Field(description="open or resolved.")
    opened_at: datetime = Field(description="Opened (UTC).")
    due_at: datetime = Field(description="SLA resolution due.")
    resolved_at: datetime | None = Field(description="Resolved (UTC).")
    # One clock per result, so `breached` and `minutes_left` always agree.
    _now: datetime = PrivateAttr(default_factory=lambda: datetime.now(UTC))

    # mypy rejects decorators over @property; pydantic documents this ignore for computed fields.
    @computed_field(description="Resolved after, or still open past, due_at.")  # type: ignore[prop-decorator]
    @property
    def breached(self) -> bool:
        return (self.resolved_at or self._now) > self.due_at

    # mypy rejects decorators over @property; pydantic documents this ignore for computed fields.
    @computed_field(description="Minutes to due_at (<0 overdue); null once resolved.")  # type: ignore[prop-decorator]
    @property
    def minutes_left(self) -> int | None:
        return None if self.resolved_at else int((self.due_at - self._now).total_seconds() // 60)


class EscalationPage(Page[EscalationOut]):
    breached: int = Field(description="Matching escalations (all pages) that breached their SLA.")


def page(
    session: Session,
    tenant: str,
    *,
    client_id: int | None,
    status: Status | None,
    limit: int,
    cursor: str | None,
) -> EscalationPage:
    """Escalations of the tenant's clients, soonest deadline first."""
    query = (
        select(CsEscalation)
        .join(CsClient, col(CsClient.id) == CsEscalation.client_id)
        .where(CsClient.tenant == tenant)
    )
    if client_id is not None:
        query = query.where(CsEscalation.client_id == client_id)
    if status is not None:
        query = query.where(CsEscalation.status == status)
    now = datetime.now(UTC)
    late = or_(
        col(CsEscalation.resolved_at) > col(CsEscalation.due_at),
        col(CsEscalation.resolved_at).is_(None) & (col(CsEscalation.due_at) < now),
    )
    breached = session.exec(select(func.count()).select_from(query.where(late).subquery())).one()
    got = paginate(
        session,
        query,
        cursor=cursor,
        limit=limit,
        keys=[col(CsEscalation.due_at), col(CsEscalation.id)],
        scope="escalations",
        item=EscalationOut.model_validate,
    )
    return EscalationPage(items=got.items, next_cursor=got.next_cursor, total=got.total, breached=breached)


def open_escalation(
    session: Session,
    client: CsClient,
    *,
    severity: Severity,
    title: str,
    opened_at: datetime | None,
    ticket_id: int | None = None,
) -> CsEscalation:
    """A new escalation due `resolution_minutes[severity]` (config `sla`) after it was raised."""
    now = datetime.now(UTC)
    start = opened_at or now
    if start.tzinfo is None:
        raise ValidationFailed("opened_at needs a timezone.", field="opened_at", hint="Use e.g. …Z.")
    if start > now:
        raise ValidationFailed("opened_at is in the future.", field="opened_at", hint="Use a past time.")
    sla = thresholds.load(session, thresholds.Sla)
    esc = CsEscalation(
        client_id=client.id or 0,
        ticket_id=ticket_id,
        severity=severity,
        title=title,
        owner=client.owner,
        opened_at=start,
        due_at=start + timedelta(minutes=sla.resolution_minutes[severity]),
    )
    session.add(esc)
    session.flush()
    return esc


def resolve(session: Session, escalation_id: int, resolution: str | None) -> CsEscalation:
    esc = session.get(CsEscalation, escalation_id)
    if esc is None:
        raise NotFound(f"No escalation {escalation_id}.", field="escalation_id", hint="See list_escalations.")
    if esc.status == "resolved":
        raise ValidationFailed(
            f"Escalation {escalation_id} is already resolved.", field="escalation_id", hint="Nothing to do."
        )
    esc.status, esc.resolved_at, esc.resolution = "resolved", datetime.now(UTC), resolution
    session.add(esc)
    session.flush()
    return esc
