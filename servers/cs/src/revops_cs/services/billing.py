"""Billing events and MRR changes recorded through the tools, and monthly MRR derived from them.

Payment outcomes (`payment_succeeded`, `payment_failed`, `refund`) feed the health contract
component and the failed-payment churn rule; an `mrr_change` sets the client's MRR from that moment
on. `cs_mrr_month` (what NRR, GRR, LTV and QBR revenue read) is rebuilt for each client with an
MRR change, from its first change onward: a month's MRR is the last change before the month ends,
carried forward until the next; a month at 0 MRR has no row (no MRR = churned, as NRR reads it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session, col, delete, select

from revops_core.csv_input import TEXT_INPUT, read_csv
from revops_core.params import MAX_ID, WholeNumber, today
from revops_cs.models.clients import CsClient
from revops_cs.models.expansion import CsMrrMonth
from revops_cs.models.retention import CsBillingEvent
from revops_cs.output import LeanIn, Out
from revops_cs.services.client_import import RowError

Kind = Literal["payment_succeeded", "payment_failed", "refund", "mrr_change"]
CSV_COLUMNS = ("client_id", "kind", "amount_minor", "currency", "occurred_at")
MAX_AMOUNT = 2**31 - 1  # the billing and MRR columns are INTEGER on PostgreSQL


class BillingEventIn(LeanIn):
    client_id: Annotated[int, WholeNumber] = Field(ge=1, le=MAX_ID, description="Client id.")
    kind: Kind = Field(description="mrr_change sets the MRR from then on.")
    amount_minor: Annotated[int, WholeNumber] = Field(
        ge=0, le=MAX_AMOUNT, description="Minor units (mrr_change: new MRR)."
    )
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency.")
    occurred_at: AwareDatetime = Field(description="When, with a time zone.")


class BillingReport(Out):
    rows: int = Field(description="Events received.")
    recorded: int = Field(description="Events stored (0 on a dry run).")
    errors: list[RowError] = Field(description="Rows not stored, with the field and the reason.")
    mrr_months: int = Field(description="Monthly MRR rows rebuilt from MRR changes.")
    dry_run: bool = Field(description="True: checked only, nothing stored.")


def parse_csv(text: str) -> tuple[list[tuple[int, BillingEventIn]], list[RowError]]:
    """(line, event) for each valid row, and a RowError for each invalid one."""
    table = read_csv(text, field="csv")
    missing = [c for c in CSV_COLUMNS if c not in table.header]
    if missing:
        return [], [RowError(row=1, field=missing[0], message=f"Missing column(s): {', '.join(missing)}.")]
    good: list[tuple[int, BillingEventIn]] = []
    bad = [RowError(row=p.line, field=p.column, message=p.message) for p in table.problems]
    for row in table.rows:
        values = {k: row.values.get(k) for k in CSV_COLUMNS}
        try:
            good.append((row.line, BillingEventIn.model_validate(values, context=TEXT_INPUT)))
        except PydanticValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            bad.append(RowError(row=row.line, field=str(first["loc"][0]), message=first["msg"]))
    return good, sorted(bad, key=lambda e: e.row)


def record(
    session: Session,
    tenant: str,
    rows: list[tuple[int, BillingEventIn]],
    errors: list[RowError],
    *,
    dry_run: bool,
) -> BillingReport:
    """Store the rows whose client is a live client of the tenant; report the others."""
    ids = {event.client_id for _, event in rows}
    live = set(
        session.exec(
            select(CsClient.id).where(
                col(CsClient.id).in_(ids), CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None)
            )
        ).all()
    )
    accepted = []
    report_errors = list(errors)
    for line, event in rows:
        if event.client_id in live:
            accepted.append(event)
        else:
            report_errors.append(
                RowError(row=line, field="client_id", message=f"No client with id {event.client_id}.")
            )
    months = 0
    if accepted and not dry_run:
        session.add_all(
            CsBillingEvent(
                client_id=e.client_id,
                kind=e.kind,
                amount_minor=e.amount_minor,
                currency=e.currency,
                occurred_at=e.occurred_at.astimezone(UTC),
            )
            for e in accepted
        )
        session.flush()
        months = rebuild_mrr(session, {e.client_id for e in accepted if e.kind == "mrr_change"})
    return BillingReport(
        rows=len(rows) + len(errors),
        recorded=0 if dry_run else len(accepted),
        errors=sorted(report_errors, key=lambda e: e.row),
        mrr_months=months,
        dry_run=dry_run,
    )


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _months(first: date, last: date) -> Iterable[date]:
    current = first
    while current <= last:
        yield current
        current = _next_month(current)


def rebuild_mrr(session: Session, client_ids: set[int], *, until: date | None = None) -> int:
    """Rebuild `cs_mrr_month` of these clients from their MRR changes, through the month of `until`
    (default today); the rows written."""
    if not client_ids:
        return 0
    changes = session.exec(
        select(
            CsBillingEvent.client_id,
            CsBillingEvent.occurred_at,
            CsBillingEvent.amount_minor,
            CsBillingEvent.currency,
        )
        .where(col(CsBillingEvent.client_id).in_(client_ids), CsBillingEvent.kind == "mrr_change")
        .order_by(col(CsBillingEvent.client_id), col(CsBillingEvent.occurred_at), col(CsBillingEvent.id))
    ).all()
    by_client: dict[int, list[tuple[datetime, int, str]]] = {}
    for client_id, at, amount, currency in changes:
        by_client.setdefault(client_id, []).append((at, amount, currency))
    written = 0
    this_month = (until or today()).replace(day=1)
    for client_id, history in by_client.items():
        first = history[0][0].date().replace(day=1)
        session.exec(
            delete(CsMrrMonth).where(col(CsMrrMonth.client_id) == client_id, col(CsMrrMonth.month) >= first)
        )
        index, value, currency = 0, 0, history[0][2]
        for month in _months(first, this_month):
            following = _next_month(month)
            month_end = datetime(following.year, following.month, 1, tzinfo=UTC)
            while index < len(history) and history[index][0] < month_end:
                _, value, currency = history[index]
                index += 1
            if value > 0:
                session.add(CsMrrMonth(client_id=client_id, month=month, mrr_minor=value, currency=currency))
                written += 1
    session.flush()
    return written
