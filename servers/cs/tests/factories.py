"""Insert test rows directly, so tests compare tool output with data they put there themselves."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session

from revops_core.models import CoreCompany, CoreContact
from revops_cs.models.clients import CsClient


def add_client(session: Session, name: str = "Acme", **fields: Any) -> CsClient:
    company = CoreCompany(name=name, domain=fields.pop("domain", None))
    session.add(company)
    session.flush()
    values: dict[str, Any] = {"tier": "smb", "arr_minor": 1_200_000, "currency": "USD"}
    values.update(fields)
    client = CsClient(company_id=company.id or 0, name=name, **values)
    session.add(client)
    session.flush()
    return client


def add_contact(session: Session, client: CsClient, email: str, **fields: Any) -> CoreContact:
    contact = CoreContact(company_id=client.company_id, email=email, **fields)
    session.add(contact)
    session.flush()
    return contact


def at(day: date | str, hour: int = 12) -> datetime:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)
