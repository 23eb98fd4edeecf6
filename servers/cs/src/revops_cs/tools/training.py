"""Onboarding tools: training sessions, attendance, and the attendance and certification report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import Id, Text, require
from revops_core.server import Call
from revops_cs.params import ClientId
from revops_cs.services import training
from revops_cs.services.clients import get_client
from revops_cs.toolsets import onboarding as toolset


@toolset.tool(tier="write", idempotent=False, title="Manage training")
def manage_training(
    call: Call,
    action: Annotated[Literal["schedule", "attendance"], Field(description="What to do.")],
    client_id: ClientId,
    title: Annotated[str | None, Text("schedule: session title.")] = None,
    module: Annotated[str | None, Text("schedule: module taught.", max_length=100)] = None,
    scheduled_at: Annotated[datetime | None, Field(description="schedule: start, with timezone.")] = None,
    session_id: Annotated[
        int | None, Id("training_session", see="get_training_report", optional="needed for attendance")
    ] = None,
    attendees: Annotated[
        list[training.Attendee] | None,
        Field(min_length=1, max_length=500, description="attendance: who attended."),
    ] = None,
) -> training.SessionOut:
    """Schedule a client's training session, or record who attended one."""
    client = get_client(call.db, client_id)
    if action == "schedule":
        out = training.schedule(
            call.db,
            client,
            require(title, "title", when="action=schedule"),
            module,
            require(scheduled_at, "scheduled_at", when="action=schedule"),
        )
    else:
        out = training.record_attendance(
            call.db,
            client,
            require(session_id, "session_id", when="action=attendance"),
            require(attendees, "attendees", when="action=attendance"),
        )
    call.target = f"cs_training_session:{out.session_id}"
    return out


@toolset.tool(tier="read", title="Training report", replaces="manage_training action=report")
def get_training_report(call: Call, client_id: ClientId) -> training.TrainingReport:
    """A client's sessions, attendance rate and per-contact certification (required modules)."""
    return training.report(call.db, get_client(call.db, client_id))
