"""Expansion tools: record billing events and MRR changes (what revenue retention is computed from)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.errors import ValidationFailed
from revops_core.server import Call
from revops_cs.services import billing
from revops_cs.toolsets import expansion as toolset


@toolset.tool(tier="write", idempotent=False, title="Record billing events and MRR")
def record_billing(
    call: Call,
    events: Annotated[
        list[billing.BillingEventIn] | None,
        Field(min_length=1, max_length=500, description="Events (or csv)."),
    ] = None,
    csv: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=2_000_000,
            description="CSV: client_id,kind,amount_minor,currency,occurred_at.",
        ),
    ] = None,
    dry_run: Annotated[bool, Field(description="Check only; store nothing.")] = False,
) -> billing.BillingReport:
    """Record payments, failed payments, refunds and MRR changes (monthly MRR follows); per-row report."""
    if (events is None) == (csv is None):
        raise ValidationFailed(
            "Pass events or csv (one of them).", field="events", hint="Use csv for a file export."
        )
    rows, errors = billing.parse_csv(csv) if csv is not None else (list(enumerate(events or [], start=1)), [])
    report = billing.record(call.db, call.tenant, rows, errors, dry_run=dry_run)
    if dry_run or report.recorded == 0:
        call.no_change()
    call.audit_details.update(recorded=report.recorded, errors=len(report.errors))
    return report
