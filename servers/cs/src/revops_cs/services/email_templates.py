"""E-mail templates: the `{{variables}}` a subject or body may use, and their values from stored data.

A variable whose data is not stored is never filled with a guess: rendering fails with a
`validation_error` naming the variable and the record, so nothing is sent with a blank in it.
"""

from __future__ import annotations

import re
from typing import Any

from revops_core.errors import ValidationFailed
from revops_core.models import CoreContact
from revops_core.money import money
from revops_cs.models.clients import CsClient

_VAR = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
VARIABLES = (
    "client_name",
    "first_name",
    "last_name",
    "contact_name",
    "csm",
    "tier",
    "plan",
    "arr",
    "renewal_date",
    "health_band",
    "health_score",
)
HEALTH_VARIABLES = frozenset({"health_band", "health_score"})


def template_variables(*texts: str) -> list[str]:
    """The variables a template uses; `validation_error` naming the first unknown one."""
    found: list[str] = []
    for text in texts:
        for name in _VAR.findall(text):
            if name not in VARIABLES:
                raise ValidationFailed(
                    f"Unknown template variable {{{{{name}}}}}.",
                    field=name,
                    hint="Use only: " + ", ".join(VARIABLES) + ".",
                )
            if name not in found:
                found.append(name)
    return found


def variable_values(
    client: CsClient, contact: CoreContact, band: str | None, score: float | None
) -> dict[str, str | None]:
    """Each variable's value from stored data; None where the data is missing."""
    names = [contact.first_name, contact.last_name]
    return {
        "client_name": client.name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "contact_name": " ".join(n for n in names if n) or None,
        "csm": client.owner,
        "tier": client.tier,
        "plan": client.plan,
        "arr": money(client.arr_minor, client.currency).display(),
        "renewal_date": client.renewal_date.isoformat() if client.renewal_date else None,
        "health_band": band,
        "health_score": None if score is None else f"{score:.0f}",
    }


def render(text: str, values: dict[str, Any], *, client: CsClient, contact: CoreContact) -> str:
    """Fill `{{var}}`s; a variable whose data is missing is a `validation_error` naming it and the record."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None:
            raise ValidationFailed(
                f"{{{{{name}}}}} has no value for client {client.id} / contact {contact.email} "
                "(the data is not stored).",
                field=name,
                hint="Fill in the missing data (or compute health first), or drop the variable.",
            )
        return str(value)

    return _VAR.sub(fill, text)
