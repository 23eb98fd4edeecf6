"""Custom properties: definitions per object type, typed values per record, equality filters.

Values are stored canonically (numbers as normalised decimals, dates as YYYY-MM-DD, enum values as
the option's spelling) so a filter compares text and "10" equals "10.00".
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import ColumnElement, delete, exists, update
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import FromJson, Out
from revops_core.params import text_problem
from revops_core.records import live
from revops_sales.models.crm import PROPERTY_TYPES, SalesCustomProperty, SalesCustomValue

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_VALUE = 500
MAX_OPTIONS = 50


class PropertyOut(Out):
    id: int = Field(description="Property id.")
    object: str = Field(description="company, contact, deal or lead.")
    name: str = Field(description="Name.")
    type: str = Field(description="text, number, date or enum.")
    options: Annotated[list[str], FromJson] = Field(description="Allowed values (enum).")


class ValueOut(Out):
    name: str = Field(description="Property name.")
    type: str = Field(description="text, number, date or enum.")
    value: str = Field(description="Value (numbers normalised, dates YYYY-MM-DD).")


class PropertyResult(Out):
    property: PropertyOut = Field(description="The property.")
    record_id: int | None = Field(description="Record set or cleared (null for define).")
    values: list[ValueOut] = Field(description="That record's custom values now (empty for define).")


def record_model(entity: str) -> Any:
    """The table of an object type; `lead` only once the leads module exists."""
    if entity == "company":
        return CoreCompany
    if entity == "contact":
        return CoreContact
    if entity == "deal":
        from revops_sales.models.deals import SalesDeal

        return SalesDeal
    from revops_sales.models.leads import SalesLead

    return SalesLead


def _options(kind: str, options: list[str] | None) -> list[str]:
    if kind != "enum":
        if options:
            raise ValidationFailed(
                "Only an enum property has options.", field="options", hint="Leave options out."
            )
        return []
    cleaned = [o.strip() for o in options or []]
    if not cleaned or any(not o for o in cleaned):
        raise ValidationFailed(
            "An enum property needs its options (non-empty).",
            field="options",
            hint="Pass the values allowed.",
        )
    if len({o.lower() for o in cleaned}) != len(cleaned):
        raise ValidationFailed("Options repeat a value.", field="options", hint="Pass each value once.")
    return cleaned


def define(
    session: Session, tenant: str, *, entity: str, name: str, kind: str, options: list[str] | None
) -> PropertyResult:
    if kind not in PROPERTY_TYPES:
        raise ValidationFailed(
            f"Unknown type {kind!r}.", field="value_type", hint="Use " + ", ".join(PROPERTY_TYPES)
        )
    if not NAME_PATTERN.match(name):
        raise ValidationFailed(
            "A property name is lower-case letters, digits and _ (starting with a letter, ≤60).",
            field="name",
            hint="e.g. tier or renewal_month.",
        )
    allowed = _options(kind, options)
    existing = session.exec(
        select(SalesCustomProperty.id).where(
            SalesCustomProperty.tenant == tenant,
            SalesCustomProperty.object == entity,
            SalesCustomProperty.name == name,
        )
    ).first()
    if existing is not None:
        raise Conflict(
            f"{entity.capitalize()} property {existing} is already named {name!r}.",
            field="name",
            hint="Pick another name.",
        )
    prop = SalesCustomProperty(
        tenant=tenant, object=entity, name=name, type=kind, options=json.dumps(allowed)
    )
    session.add(prop)
    session.flush()
    return PropertyResult(property=PropertyOut.model_validate(prop), record_id=None, values=[])


def find(
    session: Session, tenant: str, entity: str, name: str, *, field: str = "name"
) -> SalesCustomProperty:
    prop = session.exec(
        select(SalesCustomProperty).where(
            SalesCustomProperty.tenant == tenant,
            SalesCustomProperty.object == entity,
            SalesCustomProperty.name == name,
        )
    ).first()
    if prop is None:
        known = session.exec(
            select(SalesCustomProperty.name)
            .where(SalesCustomProperty.tenant == tenant, SalesCustomProperty.object == entity)
            .order_by(col(SalesCustomProperty.name))
        ).all()
        raise NotFound(
            f"No {entity} property named {name!r}.",
            field=field,
            hint=("Defined: " + ", ".join(known) + ".")
            if known
            else f"No {entity} properties are defined yet.",
        )
    return prop


def canonical(prop: SalesCustomProperty, raw: str, *, field: str = "value") -> str:
    """`raw` as stored for `prop`'s type, or a validation error naming `field` and the property."""
    text = raw.strip()
    problem: str | None = None
    if not text:
        problem = "is empty"
    elif len(text) > MAX_VALUE:
        problem = f"is longer than {MAX_VALUE} characters"
    elif found := text_problem(text, multiline=False):
        problem = found
    elif prop.type == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            problem = "is not a number"
        else:
            normal = format(number.normalize(), "f")
            return "0" if normal in ("-0", "0") else normal
    elif prop.type == "date":
        try:
            if not DATE_PATTERN.match(text):
                raise ValueError
            return date.fromisoformat(text).isoformat()
        except ValueError:
            problem = "is not a date (YYYY-MM-DD)"
    elif prop.type == "enum":
        options: list[str] = json.loads(prop.options)
        match = next((o for o in options if o.lower() == text.lower()), None)
        if match is None:
            problem = "is not one of " + ", ".join(options)
        else:
            return match
    else:
        return text
    raise ValidationFailed(
        f"Value for {prop.object} property '{prop.name}' ({prop.type}) {problem}.",
        field=field,
        hint="Nothing was changed.",
    )


def set_value(
    session: Session, tenant: str, *, entity: str, record_id: int, name: str, value: str | None
) -> PropertyResult:
    """Set (or with `value=None` clear) one property of one live record; returns its values."""
    prop = find(session, tenant, entity, name)
    live(
        session, record_model(entity), record_id, tenant=tenant, field="record_id", what=entity, see="search"
    )
    current = session.exec(
        select(SalesCustomValue).where(
            SalesCustomValue.property_id == prop.id, SalesCustomValue.record_id == record_id
        )
    ).first()
    if value is None:
        if current is not None:
            session.delete(current)
    else:
        stored = canonical(prop, value)
        row = current or SalesCustomValue(
            tenant=tenant, property_id=prop.id or 0, record_id=record_id, value=""
        )
        row.value = stored
        row.updated_at = utcnow()
        session.add(row)
    session.flush()
    return PropertyResult(
        property=PropertyOut.model_validate(prop),
        record_id=record_id,
        values=values_for(session, tenant, entity, [record_id]).get(record_id, []),
    )


def values_for(session: Session, tenant: str, entity: str, ids: list[int]) -> dict[int, list[ValueOut]]:
    """Every custom value of these records, by record id (one query; names in alphabetical order)."""
    if not ids:
        return {}
    rows = session.exec(
        select(
            SalesCustomValue.record_id,
            SalesCustomProperty.name,
            SalesCustomProperty.type,
            SalesCustomValue.value,
        )
        .join(SalesCustomProperty, col(SalesCustomProperty.id) == col(SalesCustomValue.property_id))
        .where(
            SalesCustomProperty.tenant == tenant,
            SalesCustomProperty.object == entity,
            col(SalesCustomValue.record_id).in_(ids),
        )
        .order_by(col(SalesCustomProperty.name))
    ).all()
    found: dict[int, list[ValueOut]] = defaultdict(list)
    for record_id, name, kind, value in rows:
        found[record_id].append(ValueOut(name=name, type=kind, value=value))
    return dict(found)


def equals_clause(
    session: Session, tenant: str, entity: str, name: str, value: str, id_column: Any
) -> ColumnElement[bool]:
    """A WHERE condition: the record's property `name` equals `value` (compared canonically)."""
    prop = find(session, tenant, entity, name, field="property_name")
    wanted = canonical(prop, value, field="property_value")
    return exists().where(
        col(SalesCustomValue.property_id) == prop.id,
        col(SalesCustomValue.record_id) == id_column,
        col(SalesCustomValue.value) == wanted,
    )


def move_values(session: Session, tenant: str, entity: str, *, loser: int, survivor: int) -> int:
    """On a merge: the loser's values of properties the survivor has no value for move to it; the
    survivor keeps its own where both have one (the loser's are dropped). Returns values moved."""
    props = select(SalesCustomProperty.id).where(
        SalesCustomProperty.tenant == tenant, SalesCustomProperty.object == entity
    )
    kept = select(SalesCustomValue.property_id).where(
        SalesCustomValue.record_id == survivor, col(SalesCustomValue.property_id).in_(props)
    )
    connection = session.connection()
    moved = connection.execute(
        update(SalesCustomValue)
        .where(
            col(SalesCustomValue.record_id) == loser,
            col(SalesCustomValue.property_id).in_(props),
            col(SalesCustomValue.property_id).not_in(kept),
        )
        .values(record_id=survivor, updated_at=utcnow())
    ).rowcount
    connection.execute(
        delete(SalesCustomValue).where(
            col(SalesCustomValue.record_id) == loser, col(SalesCustomValue.property_id).in_(props)
        )
    )
    return int(moved or 0)


def count_values(session: Session, tenant: str, entity: str, record_id: int) -> int:
    from sqlalchemy import func

    props = select(SalesCustomProperty.id).where(
        SalesCustomProperty.tenant == tenant, SalesCustomProperty.object == entity
    )
    return int(
        session.exec(
            select(func.count())
            .select_from(SalesCustomValue)
            .where(SalesCustomValue.record_id == record_id, col(SalesCustomValue.property_id).in_(props))
        ).one()
    )
