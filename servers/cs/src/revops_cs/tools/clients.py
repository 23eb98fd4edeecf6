"""CS toolset `clients`: register, find, update and import client accounts (archiving: client_archive)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from revops_core.errors import ValidationFailed
from revops_core.paging import Page
from revops_core.params import (
    AsOf,
    Count,
    Cursor,
    End,
    Limit,
    MultiLine,
    SingleLine,
    Start,
    Text,
    resolve_as_of,
)
from revops_core.server import Call
from revops_cs.models.clients import Stage, Tier
from revops_cs.params import ClientId
from revops_cs.resources import register as register_resources
from revops_cs.services import client_import, clients, overview, timeline
from revops_cs.services.clients import (
    ArrMinor,
    ContractStart,
    CurrencyCode,
    Domain,
    Email,
    Name,
    Owner,
    Plan,
    RenewalDate,
    Seats,
    StageField,
    TierField,
)
from revops_cs.toolsets import clients as toolset

toolset.register(register_resources)

Band = Literal["excellent", "good", "at_risk", "critical"]


def _client_in(**values: Any) -> clients.ClientIn:
    """The checks beyond each field's bounds (domain, email, dates) as a validation_error on their field."""
    try:
        return clients.ClientIn(**values)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "renewal_date"
        raise ValidationFailed(
            f"{field}: {err['msg']}", field=field, hint="Correct the value; nothing was saved."
        ) from None


@toolset.tool(tier="write", idempotent=False, title="Register a client")
def register_client(
    call: Call,
    name: Name,
    tier: TierField,
    domain: Domain | None = None,
    arr_minor: ArrMinor = 0,
    currency: CurrencyCode = "USD",
    owner: Owner | None = None,
    plan: Plan | None = None,
    seats_purchased: Seats | None = None,
    contract_start: ContractStart | None = None,
    renewal_date: RenewalDate | None = None,
    contact_email: Email | None = None,
    contact_name: Annotated[
        str | None, Field(max_length=200, description="Primary contact full name."), SingleLine
    ] = None,
) -> clients.Registered:
    """Register a new client: shared company record, CS client and optional primary contact."""
    first, _, last = (contact_name or "").strip().partition(" ")
    data = _client_in(
        name=name,
        tier=tier,
        domain=domain,
        arr_minor=arr_minor,
        currency=currency,
        owner=owner,
        plan=plan,
        seats_purchased=seats_purchased,
        contract_start=contract_start,
        renewal_date=renewal_date,
        contact_email=contact_email,
        contact_first_name=first or None,
        contact_last_name=last or None,
    )
    registered = clients.register(call.db, data, tenant=call.tenant, actor=call.actor)
    call.target = f"cs_client:{registered.client_id}"
    return registered


@toolset.tool(tier="read", title="Client overview")
def get_client_overview(call: Call, client_id: ClientId, as_of: AsOf = None) -> overview.Overview:
    """One client at a glance: profile, latest health, 30-day usage, open tickets, NPS, renewal."""
    return overview.build_overview(call.db, clients.get_client(call.db, client_id), resolve_as_of(as_of))


VendorName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")]


@toolset.tool(tier="write", idempotent=True, title="Update a client", target="cs_client:{client_id}")
def update_client_info(
    call: Call,
    client_id: ClientId,
    name: Name | None = None,
    tier: TierField | None = None,
    plan: Plan | None = None,
    arr_minor: ArrMinor | None = None,
    owner: Owner | None = None,
    seats_purchased: Seats | None = None,
    contract_start: ContractStart | None = None,
    renewal_date: RenewalDate | None = None,
    stage: StageField | None = None,
    reason: Annotated[
        str | None, Field(max_length=500, description="Why (required for churned)."), MultiLine
    ] = None,
    external_ids: Annotated[
        dict[VendorName, Annotated[str, Field(min_length=1, max_length=100)]] | None,
        Field(max_length=10, description='Vendor ids to link, merged in, e.g. {"zendesk": "501"}.'),
    ] = None,
) -> clients.ClientUpdated:
    """Change some fields of a client (omitted = kept); a stage change follows the lifecycle rules."""
    values = {
        "name": name,
        "tier": tier,
        "plan": plan,
        "arr_minor": arr_minor,
        "owner": owner,
        "seats_purchased": seats_purchased,
        "contract_start": contract_start,
        "renewal_date": renewal_date,
    }
    client = clients.get_client(call.db, client_id)
    if external_ids:
        values["external_ids"] = clients.merged_external_ids(client, external_ids)
    updated = clients.update(call.db, client, values, stage=stage, reason=reason, actor=call.actor)
    call.audit_details["changed"] = updated.changed
    return updated


@toolset.tool(tier="read", title="List clients")
def list_clients(
    call: Call,
    tier: Annotated[Tier | None, Field(description="Only this tier.")] = None,
    stage: Annotated[Stage | None, Field(description="Only this stage.")] = None,
    health_band: Annotated[Band | None, Field(description="Only this band (latest snapshot).")] = None,
    arr_min_minor: Annotated[int | None, Count("Minimum ARR (minor units).")] = None,
    arr_max_minor: Annotated[int | None, Count("Maximum ARR (minor units).")] = None,
    owner: Annotated[str | None, Text("Only this CSM.")] = None,
    archived: Annotated[bool, Field(description="List archived clients instead of live ones.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[clients.ClientRow]:
    """Clients by id with their latest health, filtered by tier, stage, band, ARR range or owner; paged."""
    return clients.page(
        call.db,
        call.tenant,
        tier=tier,
        stage=stage,
        health_band=health_band,
        arr_min_minor=arr_min_minor,
        arr_max_minor=arr_max_minor,
        owner=owner,
        archived=archived,
        limit=limit,
        cursor=cursor,
    )


@toolset.tool(tier="read", title="Client timeline")
def get_client_timeline(
    call: Call,
    client_id: ClientId,
    kinds: Annotated[
        list[timeline.TimelineKind] | None, Field(max_length=9, description="Only these kinds; default all.")
    ] = None,
    start_date: Start = None,
    end_date: End = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[timeline.TimelineEvent]:
    """A client's history, newest first: first uses, tickets, feedback, stages, billing, emails and more."""
    client = clients.get_client(call.db, client_id)
    return timeline.page(
        call.db,
        client.id or 0,
        kinds=list(kinds) if kinds else None,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        cursor=cursor,
    )


@toolset.tool(tier="write", idempotent=False, title="Import clients from CSV")
def import_clients_csv(
    call: Call,
    csv_text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2_000_000,
            description=(
                "CSV with a header. Columns: "
                + ", ".join(client_import.CSV_COLUMNS)
                + ". name and tier required; arr in major units."
            ),
        ),
    ],
    dry_run: Annotated[bool, Field(description="Validate only; write nothing.")] = False,
) -> client_import.ImportReport:
    """Import clients from CSV: valid rows are created, invalid rows are reported by row and field."""
    report = client_import.import_csv(
        call.db,
        csv_text,
        tenant=call.tenant,
        actor=call.actor,
        dry_run=dry_run,
        progress=lambda done, total: call.progress(done, total, f"{done}/{total} rows"),
    )
    if dry_run or not report.imported:
        call.no_change()
    call.audit_details.update(imported=report.imported, errors=len(report.errors))
    return report
