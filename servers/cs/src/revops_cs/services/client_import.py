"""Import clients from CSV: every row validated as a `ClientIn`; valid rows created, invalid ones reported."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session

from revops_core.csv_input import TEXT_INPUT, echo, read_csv
from revops_core.errors import Conflict, ValidationFailed
from revops_core.money import to_minor
from revops_cs.output import Out
from revops_cs.services.clients import ClientIn, check_unique, create_client

CSV_COLUMNS = (
    "name",
    "tier",
    "domain",
    "arr",
    "currency",
    "owner",
    "plan",
    "seats_purchased",
    "contract_start",
    "renewal_date",
    "stage",
    "contact_email",
    "contact_first_name",
    "contact_last_name",
)
Progress = Callable[[int, int], None]


class RowError(Out):
    row: int = Field(description="CSV line number (header = 1).")
    field: str = Field(description="Column at fault.")
    message: str = Field(description="What is wrong.")


class ImportReport(Out):
    rows: int = Field(description="Data rows read.")
    imported: int = Field(description="Clients created.")
    valid: int = Field(description="Rows that passed validation.")
    errors: list[RowError] = Field(description="Rows not imported.")
    client_ids: list[int] = Field(description="Ids of the created clients.")
    dry_run: bool = Field(description="Nothing written.")


def _header(header: list[str]) -> None:
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if "name" not in header or "tier" not in header or unknown:
        raise ValidationFailed(
            "Bad CSV header: "
            + (f"unknown columns {echo(', '.join(unknown))}." if unknown else "needs name and tier."),
            field="csv_text",
            hint="Columns allowed: " + ", ".join(CSV_COLUMNS) + "; nothing was imported.",
        )


def _parse(line: int, raw: dict[str, str]) -> ClientIn | list[RowError]:
    """The row as a ClientIn, or what is wrong with it (arr is in major units in the file)."""
    values: dict[str, object] = {k: v.strip() for k, v in raw.items() if v.strip()}
    try:
        if "arr" in values:
            values["arr_minor"] = to_minor(str(values.pop("arr")), str(values.get("currency", "USD")))
        return ClientIn.model_validate(values, context=TEXT_INPUT)  # seats arrive as text
    except PydanticValidationError as exc:
        errors = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "row"
            errors.append(
                RowError(row=line, field="arr" if field == "arr_minor" else field, message=err["msg"])
            )
        return errors
    except (ArithmeticError, ValueError):  # not a number, NaN, infinity
        return [RowError(row=line, field="arr", message="not a number")]


def import_csv(
    session: Session, csv_text: str, *, tenant: str, actor: str, dry_run: bool, progress: Progress
) -> ImportReport:
    """Create a client per valid row (`dry_run`: only check them); report the others by row and field."""
    table = read_csv(csv_text, field="csv_text")
    _header(table.header)
    rows = table.rows
    errors = [RowError(row=p.line, field=p.column, message=p.message) for p in table.problems]
    created: list[int] = []
    seen_domains: set[str] = set()
    seen_emails: set[str] = set()
    valid = 0
    for index, raw in enumerate(rows):
        try:
            line = raw.line
            data = _parse(line, raw.values)
            if isinstance(data, list):
                errors.extend(data)
                continue
            repeated = (
                "domain"
                if data.domain and data.domain in seen_domains
                else "contact_email"
                if data.contact_email and data.contact_email in seen_emails
                else None
            )
            if repeated:
                errors.append(
                    RowError(row=line, field=repeated, message="repeats an earlier row of this file")
                )
                continue
            try:
                if dry_run:
                    check_unique(session, tenant, data)
                else:
                    client, _ = create_client(session, data, tenant=tenant, actor=actor)
                    created.append(client.id or 0)
            except Conflict as exc:
                errors.append(RowError(row=line, field=exc.field or "row", message=exc.message))
                continue
            valid += 1
            seen_domains.update([data.domain] if data.domain else [])
            seen_emails.update([data.contact_email] if data.contact_email else [])
        finally:  # every row counts as done, whichever way it went
            if (index + 1) % 25 == 0 or index + 1 == len(rows):
                progress(index + 1, len(rows))
    return ImportReport(
        rows=len(rows) + len(table.problems),
        imported=len(created),
        valid=valid,
        errors=sorted(errors, key=lambda e: e.row),
        client_ids=created,
        dry_run=dry_run,
    )
