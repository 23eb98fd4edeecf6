"""Training: sessions per client, who attended, and certification against the required modules."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import case, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.models import CoreContact
from revops_core.params import IdValue
from revops_cs.models.clients import CsClient
from revops_cs.models.onboarding import CsTrainingAttendance, CsTrainingSession
from revops_cs.output import LeanIn, Out
from revops_cs.services import thresholds


class Attendee(LeanIn):
    contact_id: IdValue = Field(description="Contact id (one of the client's contacts).")
    attended: bool = Field(description="Did they attend?")


class SessionOut(Out):
    session_id: int = Field(description="Session id.")
    title: str = Field(description="Title.")
    module: str | None = Field(description="Certification module taught.")
    scheduled_at: datetime = Field(description="Start (UTC).")
    invited: int = Field(description="Contacts recorded.")
    attended: int = Field(description="Of those, attended.")


class Certification(Out):
    contact_id: int = Field(description="Contact id.")
    email: str = Field(description="Contact email.")
    completed: list[str] = Field(description="Required modules attended.")
    required: int = Field(description="Required modules (config).")
    percent: float | None = Field(description="Completed / required x 100.")


class TrainingReport(Out):
    client_id: int = Field(description="Client id.")
    sessions: list[SessionOut] = Field(description="Sessions, earliest first.")
    attendance_rate: float | None = Field(description="Attended / invited.")
    certification: list[Certification] = Field(description="Per live contact.")


def _outs(session: Session, sessions: list[CsTrainingSession]) -> list[SessionOut]:
    """Each session with its invited and attended counts (one grouped query)."""
    ids = [s.id for s in sessions]
    counts: dict[int, tuple[int, int]] = {}
    if ids:
        attended = func.sum(case((col(CsTrainingAttendance.attended), 1), else_=0))
        grouped = (
            select(CsTrainingAttendance.session_id, func.count(), attended)
            .where(col(CsTrainingAttendance.session_id).in_(ids))
            .group_by(col(CsTrainingAttendance.session_id))
        )
        counts = {sid: (int(n), int(a or 0)) for sid, n, a in session.exec(grouped)}
    return [
        SessionOut(
            session_id=s.id or 0,
            title=s.title,
            module=s.module,
            scheduled_at=s.scheduled_at,
            invited=counts.get(s.id or 0, (0, 0))[0],
            attended=counts.get(s.id or 0, (0, 0))[1],
        )
        for s in sessions
    ]


def schedule(
    session: Session, client: CsClient, title: str, module: str | None, scheduled_at: datetime
) -> SessionOut:
    if scheduled_at.tzinfo is None:
        raise ValidationFailed(
            "scheduled_at needs a timezone.", field="scheduled_at", hint="e.g. 2026-03-01T15:00:00Z"
        )
    row = CsTrainingSession(client_id=client.id or 0, title=title, module=module, scheduled_at=scheduled_at)
    session.add(row)
    session.flush()
    return _outs(session, [row])[0]


def record_attendance(
    session: Session, client: CsClient, session_id: int, attendees: list[Attendee]
) -> SessionOut:
    """Set who attended one of the client's sessions (a contact's row is replaced, never doubled)."""
    training = session.get(CsTrainingSession, session_id)
    if training is None or training.client_id != client.id:
        raise NotFound(
            f"No session {session_id} for client {client.id}.",
            field="session_id",
            hint="See get_training_report for the client's sessions.",
        )
    for a in attendees:
        contact = session.get(CoreContact, a.contact_id)
        if contact is None or contact.company_id != client.company_id:
            raise NotFound(
                f"Contact {a.contact_id} is not a contact of client {client.id}.",
                field="attendees",
                hint="Use the client's contact ids.",
            )
        row = session.exec(
            select(CsTrainingAttendance).where(
                CsTrainingAttendance.session_id == session_id, CsTrainingAttendance.contact_id == a.contact_id
            )
        ).first()
        row = row or CsTrainingAttendance(session_id=session_id, contact_id=a.contact_id, attended=a.attended)
        row.attended = a.attended
        session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("Attendance was recorded concurrently.", hint="Retry.") from exc
    return _outs(session, [training])[0]


def report(session: Session, client: CsClient) -> TrainingReport:
    """Sessions, overall attendance rate, and each contact's share of the required modules attended."""
    sessions = list(
        session.exec(
            select(CsTrainingSession)
            .where(CsTrainingSession.client_id == client.id)
            .order_by(col(CsTrainingSession.scheduled_at), col(CsTrainingSession.id))
        )
    )
    outs = _outs(session, sessions)
    invited = sum(o.invited for o in outs)
    required = thresholds.load(session, thresholds.Onboarding).certification_modules
    return TrainingReport(
        client_id=client.id or 0,
        sessions=outs,
        attendance_rate=round(sum(o.attended for o in outs) / invited, 4) if invited else None,
        certification=_certification(session, client.company_id, sessions, required),
    )


def _certification(
    session: Session, company_id: int, sessions: list[CsTrainingSession], required: list[str]
) -> list[Certification]:
    module_of = {s.id: s.module for s in sessions if s.module}
    done: dict[int, set[str]] = {}
    if module_of:
        for a in session.exec(
            select(CsTrainingAttendance).where(
                col(CsTrainingAttendance.session_id).in_(list(module_of)), col(CsTrainingAttendance.attended)
            )
        ):
            done.setdefault(a.contact_id, set()).add(module_of[a.session_id] or "")
    contacts = session.exec(
        select(CoreContact)
        .where(CoreContact.company_id == company_id, col(CoreContact.deleted_at).is_(None))
        .order_by(col(CoreContact.id))
    )
    wanted = set(required)
    out = []
    for c in contacts:
        completed = sorted(done.get(c.id or 0, set()) & wanted)
        out.append(
            Certification(
                contact_id=c.id or 0,
                email=c.email,
                completed=completed,
                required=len(required),
                percent=round(100 * len(completed) / len(required), 1) if required else None,
            )
        )
    return out
