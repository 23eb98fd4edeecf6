"""CRM data around the shared companies and contacts: custom property definitions and their values,
associations between records (deal ↔ contact with a role, company parent ↔ child), merges, and the
Sales owner of a company.

A contact's primary company is `core_contact.company_id` (shared with every server), so it is not
repeated here. Associations and values point at records by id without a foreign key because one
table serves several object types (`object` / `kind` say which).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

PropertyObject = Literal["company", "contact", "deal", "lead"]
PROPERTY_OBJECTS: tuple[str, ...] = get_args(PropertyObject)
PropertyType = Literal["text", "number", "date", "enum"]
PROPERTY_TYPES: tuple[str, ...] = get_args(PropertyType)
AssociationKind = Literal["deal_contact", "company_parent"]
DealRole = Literal[
    "decision_maker", "champion", "influencer", "economic_buyer", "technical_buyer", "user", "other"
]
DEAL_ROLES: tuple[str, ...] = get_args(DealRole)


class SalesCustomProperty(SQLModel, table=True):
    """A property an admin defined for one object type (e.g. contact.tier, an enum)."""

    __tablename__ = "sales_custom_property"
    __table_args__ = (UniqueConstraint("tenant", "object", "name", name="uq_sales_custom_property_name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    object: str = Field(max_length=20, description="One of PROPERTY_OBJECTS.")
    name: str = Field(max_length=60)
    type: str = Field(max_length=10, description="One of PROPERTY_TYPES.")
    options: str = Field(
        default="[]", sa_column=Column(Text, nullable=False), description="JSON list (enum)."
    )
    created_at: datetime = utc_field(default_now=True)


class SalesCustomValue(SQLModel, table=True):
    """One record's value of a custom property, stored canonically (numbers normalised, dates ISO) so
    equality filters compare text."""

    __tablename__ = "sales_custom_value"
    __table_args__ = (
        UniqueConstraint("property_id", "record_id", name="uq_sales_custom_value_record"),
        Index("ix_sales_custom_value_lookup", "property_id", "value"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    property_id: int = Field(foreign_key="sales_custom_property.id")
    record_id: int = Field(index=True)
    value: str = Field(max_length=500)
    updated_at: datetime = utc_field(default_now=True)


class SalesAssociation(SQLModel, table=True):
    """deal_contact: from = deal, to = contact, role set; company_parent: from = child, to = parent."""

    __tablename__ = "sales_association"
    __table_args__ = (
        UniqueConstraint("tenant", "kind", "from_id", "to_id", name="uq_sales_association"),
        Index("ix_sales_association_to", "kind", "to_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    kind: str = Field(max_length=20, description="deal_contact or company_parent.")
    from_id: int
    to_id: int
    role: str | None = Field(default=None, max_length=30, description="deal_contact: one of DEAL_ROLES.")
    created_at: datetime = utc_field(default_now=True)


class SalesMerge(SQLModel, table=True):
    """A merge of two companies or contacts: the loser is archived, its links moved to the survivor."""

    __tablename__ = "sales_merge"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    entity: str = Field(max_length=20)
    survivor_id: int = Field(index=True)
    loser_id: int = Field(index=True)
    actor: str = Field(max_length=200)
    moved: str = Field(sa_column=Column(Text, nullable=False), description="JSON: rows moved per table.")
    at: datetime = utc_field(default_now=True)


class SalesCompanyOwner(SQLModel, table=True):
    """The rep who owns a company in Sales (`core_company` is shared and has no owner)."""

    __tablename__ = "sales_company_owner"
    __table_args__ = (Index("ix_sales_company_owner_owner", "tenant", "owner"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    company_id: int = Field(foreign_key="core_company.id", unique=True)
    owner: str = Field(max_length=200)
    updated_at: datetime = utc_field(default_now=True)
