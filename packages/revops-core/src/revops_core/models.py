"""The suite's common customer model, shared by every server: companies and their contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field


class CoreCompany(SQLModel, table=True):
    __tablename__ = "core_company"
    __table_args__ = (UniqueConstraint("tenant", "domain", name="uq_core_company_domain"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64, index=True)
    name: str = Field(max_length=200, index=True)
    domain: str | None = Field(default=None, max_length=253)
    industry: str | None = Field(default=None, max_length=100)
    employees: int | None = Field(default=None, ge=0)
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)
    deleted_at: datetime | None = utc_field(nullable=True)


class CoreContact(SQLModel, table=True):
    __tablename__ = "core_contact"
    __table_args__ = (UniqueConstraint("tenant", "email", name="uq_core_contact_email"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64, index=True)
    company_id: int | None = Field(default=None, foreign_key="core_company.id", index=True)
    email: str = Field(max_length=320)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    title: str | None = Field(default=None, max_length=150)
    is_primary: bool = False
    unsubscribed_at: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field(default_now=True)
    deleted_at: datetime | None = utc_field(nullable=True)
