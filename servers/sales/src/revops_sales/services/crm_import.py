"""CSV import of companies and contacts: each row validated on its own, good rows kept, bad rows
reported by line and column.

Duplicates policy (`on_duplicate`): a row whose company domain or contact e-mail (normalised)
already belongs to a live record is `skip` → left alone and listed as skipped, or `update` → the
row's non-empty values overwrite that record and it is listed as updated. A row repeating the domain
or e-mail of an earlier row of the same file is an error of that row. A row naming an archived
record's domain or e-mail is an error (restore it first). Rows without a domain are always created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session, col, select

from revops_core.csv_input import TEXT_INPUT, echo, read_csv
from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.models import CoreCompany, CoreContact
from revops_core.outputs import Out
from revops_core.params import Text
from revops_sales.services.companies import (
    Domain,
    Email,
    Employees,
    Industry,
    JobTitle,
    Name,
    normal_domain,
)

Entity = Literal["company", "contact"]
Policy = Literal["skip", "update"]
Progress = Callable[[int, int], None]
PROGRESS_EVERY = 25
COLUMNS: dict[str, tuple[str, ...]] = {
    "company": ("name", "domain", "industry", "employees"),
    "contact": ("email", "first_name", "last_name", "title", "company_domain"),
}
REQUIRED = {"company": "name", "contact": "email"}


class _Row(BaseModel):
    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value


class CompanyRowIn(_Row):
    name: Annotated[str, Text("Company name.")]
    domain: Domain = None
    industry: Industry = None
    employees: Employees = None


class ContactRowIn(_Row):
    email: Email
    first_name: Name = None
    last_name: Name = None
    title: JobTitle = None
    company_domain: Domain = None


class RowError(Out):
    line: int = Field(description="CSV line (header = 1).")
    column: str = Field(description="Column at fault, or row.")
    message: str = Field(description="What is wrong.")


class RowDone(Out):
    line: int = Field(description="CSV line.")
    id: int | None = Field(description="Record id (null for a record a dry run would create).")


class ImportOut(Out):
    entity: str = Field(description="company or contact.")
    rows: int = Field(description="Data rows read.")
    created: list[RowDone] = Field(description="New records.")
    updated: list[RowDone] = Field(description="Existing records changed (on_duplicate=update).")
    skipped: list[RowDone] = Field(description="Existing records left alone (on_duplicate=skip).")
    errors: list[RowError] = Field(description="Rows not imported.")
    dry_run: bool = Field(description="True: nothing was written.")


def _check_header(entity: str, header: list[str]) -> None:
    allowed = COLUMNS[entity]
    unknown = [h for h in header if h not in allowed]
    if unknown or REQUIRED[entity] not in header:
        problem = f"unknown columns {echo(', '.join(unknown))}" if unknown else f"needs {REQUIRED[entity]}"
        raise ValidationFailed(
            f"Bad CSV header: {problem}.",
            field="csv_text",
            hint="Columns allowed: " + ", ".join(allowed) + "; nothing was imported.",
        )


def _parse(entity: str, line: int, values: dict[str, str]) -> CompanyRowIn | ContactRowIn | list[RowError]:
    model: type[CompanyRowIn | ContactRowIn] = CompanyRowIn if entity == "company" else ContactRowIn
    try:
        return model.model_validate(values, context=TEXT_INPUT)
    except PydanticValidationError as exc:
        return [
            RowError(line=line, column=str(err["loc"][0]) if err["loc"] else "row", message=err["msg"])
            for err in exc.errors()
        ]


class _Importer:
    """One import run: the lookups of existing records, the rows seen so far and the report."""

    def __init__(self, session: Session, tenant: str, entity: str, policy: str, dry_run: bool) -> None:
        self.session, self.tenant, self.entity = session, tenant, entity
        self.policy, self.dry_run = policy, dry_run
        self.seen: dict[str, int] = {}
        self.report = ImportOut(
            entity=entity, rows=0, created=[], updated=[], skipped=[], errors=[], dry_run=dry_run
        )

    def _existing(self, model: Any, column: Any, value: str) -> Any:
        return self.session.exec(select(model).where(model.tenant == self.tenant, column == value)).first()

    def _company_for(self, line: int, domain: str | None) -> int | RowError | None:
        if domain is None:
            return None
        company = self._existing(CoreCompany, col(CoreCompany.domain), normal_domain(domain) or "")
        if company is None or company.deleted_at is not None:
            return RowError(line=line, column="company_domain", message="no live company has this domain")
        return int(company.id)

    def row(self, line: int, data: CompanyRowIn | ContactRowIn) -> None:
        is_company = isinstance(data, CompanyRowIn)
        key = normal_domain(data.domain) if isinstance(data, CompanyRowIn) else str(data.email).lower()
        column = "domain" if is_company else "email"
        if key is not None and key in self.seen:
            self.report.errors.append(
                RowError(line=line, column=column, message=f"repeats line {self.seen[key]} of this file")
            )
            return
        values: dict[str, Any] = {k: v for k, v in data.model_dump().items() if v is not None}
        model: Any
        match: Any
        if isinstance(data, ContactRowIn):
            company_id = self._company_for(line, data.company_domain)
            if isinstance(company_id, RowError):
                self.report.errors.append(company_id)
                return
            values.pop("company_domain", None)
            if company_id is not None:
                values["company_id"] = company_id
            values["email"] = key
            model, match = CoreContact, col(CoreContact.email)
        else:
            if key is not None:
                values["domain"] = key
            model, match = CoreCompany, col(CoreCompany.domain)
        existing = self._existing(model, match, key) if key is not None else None
        if existing is not None and existing.deleted_at is not None:
            self.report.errors.append(
                RowError(
                    line=line,
                    column=column,
                    message=f"belongs to archived record {existing.id}; restore it first",
                )
            )
            return
        if key is not None:
            self.seen[key] = line
        if existing is None:
            record = model(tenant=self.tenant, **values)
            if not self.dry_run:
                self.session.add(record)
                self.session.flush()
            self.report.created.append(RowDone(line=line, id=record.id))
            return
        if self.policy == "skip":
            self.report.skipped.append(RowDone(line=line, id=existing.id))
            return
        if not self.dry_run:
            for attr, value in values.items():
                setattr(existing, attr, value)
            if is_company:
                existing.updated_at = utcnow()
            self.session.add(existing)
            self.session.flush()
        self.report.updated.append(RowDone(line=line, id=existing.id))


def import_csv(
    session: Session,
    tenant: str,
    *,
    entity: str,
    csv_text: str,
    on_duplicate: str,
    dry_run: bool,
    progress: Progress,
) -> ImportOut:
    """Import the rows of `csv_text` as `entity` records; see the module docstring for duplicates."""
    table = read_csv(csv_text, field="csv_text")
    _check_header(entity, table.header)
    run = _Importer(session, tenant, entity, on_duplicate, dry_run)
    run.report.errors.extend(
        RowError(line=p.line, column=p.column, message=p.message) for p in table.problems
    )
    total = len(table.rows)
    for index, raw in enumerate(table.rows, start=1):
        parsed = _parse(entity, raw.line, raw.values)
        if isinstance(parsed, list):
            run.report.errors.extend(parsed)
        else:
            run.row(raw.line, parsed)
        if index % PROGRESS_EVERY == 0 or index == total:
            progress(index, total)
    run.report.rows = total + len(table.problems)
    run.report.errors.sort(key=lambda e: e.line)
    return run.report
