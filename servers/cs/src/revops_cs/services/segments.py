"""Custom segment rules: a list of field/op/value conditions, all of which must hold (AND)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal

from pydantic import Field

from revops_cs.models.clients import CsClient
from revops_cs.models.usage import CsHealthSnapshot
from revops_cs.output import LeanIn

CONDITION_FIELDS: tuple[str, ...] = (
    "tier",
    "stage",
    "owner",
    "plan",
    "currency",
    "arr_minor",
    "seats_purchased",
    "days_to_renewal",
    "health_score",
    "health_band",
)
Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]


class Condition(LeanIn):
    """One test on a client field, e.g. {"field": "arr_minor", "op": "gte", "value": 5000000}."""

    field: Literal[CONDITION_FIELDS] = Field(description="Client field.")  # type: ignore[valid-type]
    op: Op = Field(description="Comparison.")
    value: str | float | list[str | float] = Field(description="Value (a list for op=in).")


def field_value(field: str, client: CsClient, snapshot: CsHealthSnapshot | None, as_of: date) -> Any:
    if field == "days_to_renewal":
        return (client.renewal_date - as_of).days if client.renewal_date else None
    if field == "health_score":
        return snapshot.score if snapshot else None
    if field == "health_band":
        return snapshot.band if snapshot else None
    return getattr(client, field)


def _test(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return False  # no data never matches: a rule cannot claim facts we do not have
    if op == "in":
        values = expected if isinstance(expected, list) else [expected]
        return actual in values or str(actual) in [str(v) for v in values]
    if op in ("eq", "ne"):
        same = actual == expected or str(actual) == str(expected)
        return same if op == "eq" else not same
    try:
        a, b = float(actual), float(expected)
    except (TypeError, ValueError):
        return False
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def evaluate(
    conditions: list[Condition], client: CsClient, snapshot: CsHealthSnapshot | None, as_of: date
) -> tuple[bool, dict[str, Any]]:
    """(all conditions hold, the field values tested)."""
    facts = {c.field: field_value(c.field, client, snapshot, as_of) for c in conditions}
    return all(_test(facts[c.field], c.op, c.value) for c in conditions), facts


def rule_conditions(text: str) -> list[Condition]:
    return [Condition.model_validate(item) for item in json.loads(text)]
