"""Id completion for prompts and resource templates: ids that start with the typed digits, or
records whose name (e-mail for contacts) contains the typed text — in SQL, at most `limit` rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, or_
from sqlmodel import Session, col, select

from revops_core.models import CoreCompany, CoreContact
from revops_sales.models.deals import SalesDeal

MODELS: dict[str, tuple[Any, Any]] = {
    "deal": (SalesDeal, SalesDeal.name),
    "company": (CoreCompany, CoreCompany.name),
    "contact": (CoreContact, CoreContact.email),
}


def matching_ids(
    session: Session, tenant: str, entity: str, partial: str, *, limit: int
) -> tuple[list[str], bool]:
    """Up to `limit` live ids of `entity` matching `partial`, lowest first, and whether there are more."""
    model, label = MODELS[entity]
    needle = partial.strip()
    query = select(model.id).where(model.tenant == tenant, col(model.deleted_at).is_(None))
    if needle:
        query = query.where(
            or_(
                cast(model.id, String).startswith(needle, autoescape=True),
                col(label).icontains(needle, autoescape=True),
            )
        )
    ids = session.exec(query.order_by(col(model.id)).limit(limit + 1)).all()
    return [str(i) for i in ids[:limit]], len(ids) > limit
