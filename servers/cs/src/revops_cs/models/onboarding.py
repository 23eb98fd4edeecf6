"""Onboarding: editable milestone templates, per-client plans, training sessions and attendance."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class CsOnboardingTemplate(SQLModel, table=True):
    """A reusable milestone list; `milestones` is JSON [{name, offset_days, description}] in order."""

    __tablename__ = "cs_onboarding_template"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    description: str | None = Field(default=None, max_length=1000)
    milestones: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = utc_field(default_now=True)


class CsOnboardingPlan(SQLModel, table=True):
    __tablename__ = "cs_onboarding_plan"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    template_id: int | None = Field(default=None, foreign_key="cs_onboarding_template.id", index=True)
    name: str = Field(max_length=200)
    start_date: date
    owner: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_field(default_now=True)


class CsOnboardingMilestone(SQLModel, table=True):
    __tablename__ = "cs_onboarding_milestone"
    __table_args__ = (UniqueConstraint("plan_id", "seq", name="uq_cs_onb_milestone_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="cs_onboarding_plan.id", index=True)
    seq: int = Field(ge=1, description="Position in the plan, from 1.")
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    due_date: date
    completed_on: date | None = None
    notes: str | None = Field(default=None, max_length=2000)


class CsTrainingSession(SQLModel, table=True):
    """A training session for one client; `module` names the certification module it teaches."""

    __tablename__ = "cs_training_session"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    title: str = Field(max_length=200)
    module: str | None = Field(default=None, max_length=100, index=True)
    scheduled_at: datetime = utc_field()
    duration_minutes: int = Field(default=60, ge=1)
    trainer: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_field(default_now=True)


class CsTrainingAttendance(SQLModel, table=True):
    """Who was invited to a session and whether they attended (one row per contact per session)."""

    __tablename__ = "cs_training_attendance"
    __table_args__ = (UniqueConstraint("session_id", "contact_id", name="uq_cs_training_attendee"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="cs_training_session.id", index=True)
    contact_id: int = Field(foreign_key="core_contact.id", index=True)
    attended: bool
    recorded_at: datetime = utc_field(default_now=True)
