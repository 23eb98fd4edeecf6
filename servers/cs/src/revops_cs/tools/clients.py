"""CS toolset `clients`: Register, find, update, import and archive client accounts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, ValidationFailed
from revops_core.guards import PlanPreview, require_confirmation
from revops_core.models import CoreCompany
from revops_core.paging import decode_cursor, encode_cursor
from revops_core.server import Call
from revops_cs.common import (
    AsOf,
    ClientId,
    Cursor,
    Limit,
    end_of_day,
    get_client,
    resolve_as_of,
    start_of_day,
)
from revops_cs.models.clients import CsClient, Stage, Tier
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.support import OPEN_STATUSES, CsTicket
from revops_cs.models.usage import CsUsageEvent
from revops_cs.output import Out
from revops_cs.resources import register as register_resources
from revops_cs.services import lifecycle
from revops_cs.services.clients import ClientIn, ClientProfile, create_client, profile
from revops_cs.services.health import latest_snapshots
from revops_cs.services.timeline import KINDS, TimelineEvent, timeline
from revops_cs.toolsets import clients as toolset

toolset.register(register_resources)

Band = Literal["excellent", "good", "at_risk", "critical"]


class Registered(Out):
    client_id: int = Field(description="New client id.")
    company_id: int = Field(description="Shared company id.")
    contact_id: int | None = Field(description="Primary contact id, if given.")


@toolset.tool(tier="write", idempotent=False)
def register_client(
    call: Call,
    name: Annotated[str, Field(min_length=1, max_length=200, description="Client (company) name.")],
    tier: Annotated[Tier, Field(description="Service tier.")],
    domain: Annotated[
        str | None,
        Field(max_length=253, description="Web domain; must be unique."),
    ] = None,
    arr_minor: Annotated[int, Field(ge=0, le=10**13, description="ARR in minor units (cents).")] = 0,
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 currency.")] = "USD",
    owner: Annotated[str | None, Field(max_length=200, description="CSM responsible.")] = None,
    plan: Annotated[str | None, Field(max_length=100, description="Product plan.")] = None,
    seats_purchased: Annotated[int | None, Field(ge=0, le=1_000_000, description="Seats bought.")] = None,
    contract_start: Annotated[date | None, Field(description="Contract start (YYYY-MM-DD).")] = None,
    renewal_date: Annotated[date | None, Field(description="Next renewal (YYYY-MM-DD).")] = None,
    contact_email: Annotated[str | None, Field(max_length=320, description="Primary contact email.")] = None,
    contact_name: Annotated[
        str | None,
        Field(max_length=200, description="Primary contact full name."),
    ] = None,
) -> Registered:
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
    client, contact_id = create_client(call.db, data, tenant=call.tenant, actor=call.actor)
    call.target = f"cs_client:{client.id}"
    return Registered(client_id=client.id or 0, company_id=client.company_id, contact_id=contact_id)


def _client_in(**values: Any) -> ClientIn:
    try:
        return ClientIn(**values)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "renewal_date"
        raise ValidationFailed(
            f"{field}: {err['msg']}", field=field, hint="Correct the value; nothing was saved."
        ) from None


class UsageSummary(Out):
    events: int = Field(description="Usage events in the window.")
    logins: int = Field(description="Login events in the window.")
    active_users: int = Field(description="Distinct users.")
    top_features: dict[str, int] = Field(description="Events per feature (top 5).")
    last_event_at: datetime | None = Field(description="Latest event; null if none.")


class HealthBrief(Out):
    score: float = Field(description="Health score 0–100.")
    band: str = Field(description="Health band.")
    as_of: date = Field(description="Date of the snapshot.")
    missing: list[str] = Field(description="Components that had no data.")


class Overview(Out):
    client: ClientProfile = Field(description="Profile.")
    health: HealthBrief | None = Field(description="Latest stored snapshot; null if none.")
    usage_30d: UsageSummary = Field(description="Usage, last 30 days.")
    open_tickets: int = Field(description="Unsolved tickets.")
    latest_nps: int | None = Field(description="Latest NPS answer; null if none.")
    latest_nps_at: datetime | None = Field(description="When it was given.")
    renewal_in_days: int | None = Field(description="Days to renewal; null if no date.")
    last_stage_change: datetime | None = Field(description="Entered current stage at.")
    missing: list[str] = Field(description="Facts without data.")


def usage_summary(session: Session, client_id: int, as_of: date, days: int = 30) -> UsageSummary:
    start, end = start_of_day(as_of - timedelta(days=days - 1)), end_of_day(as_of)
    in_window = (
        (CsUsageEvent.client_id == client_id)
        & (CsUsageEvent.occurred_at >= start)
        & (CsUsageEvent.occurred_at < end)
    )
    events, users = session.exec(
        select(func.count(), func.count(func.distinct(CsUsageEvent.user_ref))).where(in_window)
    ).one()
    logins = session.exec(select(func.count()).where(in_window, CsUsageEvent.event == "login")).one()
    features = session.exec(
        select(CsUsageEvent.feature, func.count())
        .where(in_window, col(CsUsageEvent.feature).is_not(None))
        .group_by(CsUsageEvent.feature)
        .order_by(func.count().desc(), col(CsUsageEvent.feature))
        .limit(5)
    ).all()
    last = session.exec(
        select(func.max(CsUsageEvent.occurred_at)).where(
            CsUsageEvent.client_id == client_id, CsUsageEvent.occurred_at < end
        )
    ).one()
    return UsageSummary(
        events=events,
        logins=logins,
        active_users=users,
        top_features={str(f): int(n) for f, n in features},
        last_event_at=last,
    )


def build_overview(session: Session, client: CsClient, as_of: date) -> Overview:
    """The overview of one client as of a day (shared by the tool, the resource and the QBR prompt)."""
    cid = client.id or 0
    snap = latest_snapshots(session, [cid], as_of).get(cid)
    open_tickets = session.exec(
        select(func.count()).where(CsTicket.client_id == cid, col(CsTicket.status).in_(OPEN_STATUSES))
    ).one()
    nps = session.exec(
        select(CsFeedback)
        .where(
            CsFeedback.client_id == cid,
            CsFeedback.kind == "nps",
            col(CsFeedback.score).is_not(None),
            CsFeedback.submitted_at < end_of_day(as_of),
        )
        .order_by(col(CsFeedback.submitted_at).desc(), col(CsFeedback.id).desc())
    ).first()
    usage = usage_summary(session, cid, as_of)
    missing = [
        name
        for name, absent in (
            ("health", snap is None),
            ("nps", nps is None),
            ("usage", usage.last_event_at is None),
            ("renewal_date", client.renewal_date is None),
        )
        if absent
    ]
    return Overview(
        client=profile(session, client),
        health=HealthBrief(
            score=snap.score, band=snap.band, as_of=snap.as_of, missing=_json_list(snap.missing)
        )
        if snap
        else None,
        usage_30d=usage,
        open_tickets=open_tickets,
        latest_nps=nps.score if nps else None,
        latest_nps_at=nps.submitted_at if nps else None,
        renewal_in_days=(client.renewal_date - as_of).days if client.renewal_date else None,
        last_stage_change=client.stage_changed_at,
        missing=missing,
    )


def _json_list(text: str) -> list[str]:
    import json

    return [str(x) for x in json.loads(text or "[]")]


@toolset.tool(tier="read")
def get_client_overview(call: Call, client_id: ClientId, as_of: AsOf = None) -> Overview:
    """One client at a glance: profile, latest health, 30-day usage, open tickets, NPS, renewal."""
    return build_overview(call.db, get_client(call.db, client_id), resolve_as_of(as_of))


class Updated(Out):
    client_id: int = Field(description="Client id.")
    stage: str = Field(description="Stage now.")
    changed: list[str] = Field(description="Fields that changed.")
    stage_change_id: int | None = Field(description="Stage history row, if the stage changed.")


@toolset.tool(tier="write", idempotent=True)
def update_client_info(
    call: Call,
    client_id: ClientId,
    name: Annotated[str | None, Field(min_length=1, max_length=200, description="New name.")] = None,
    tier: Annotated[Tier | None, Field(description="New tier.")] = None,
    plan: Annotated[str | None, Field(max_length=100, description="New plan.")] = None,
    arr_minor: Annotated[int | None, Field(ge=0, le=10**13, description="New ARR (minor units).")] = None,
    owner: Annotated[str | None, Field(max_length=200, description="New CSM.")] = None,
    seats_purchased: Annotated[int | None, Field(ge=0, le=1_000_000, description="New seat count.")] = None,
    contract_start: Annotated[date | None, Field(description="New contract start.")] = None,
    renewal_date: Annotated[date | None, Field(description="New renewal date.")] = None,
    stage: Annotated[Stage | None, Field(description="New lifecycle stage (rules apply).")] = None,
    reason: Annotated[
        str | None,
        Field(max_length=500, description="Why (required for churned)."),
    ] = None,
) -> Updated:
    """Change some fields of a client; a stage change follows the lifecycle rules and is recorded."""
    client = get_client(call.db, client_id)
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
    changes = {k: v for k, v in values.items() if v is not None and getattr(client, k) != v}
    if not changes and (stage is None or stage == client.stage):
        raise ValidationFailed(
            "Nothing to update: no field differs from the stored value.",
            field="client_id",
            hint="Pass at least one field with a new value.",
        )
    start = changes.get("contract_start", client.contract_start)
    end = changes.get("renewal_date", client.renewal_date)
    if start and end and end <= start:
        raise ValidationFailed(
            "renewal_date must be after contract_start.",
            field="renewal_date",
            hint="Give a renewal date after the contract start.",
        )
    change_id = None
    if stage is not None and stage != client.stage:
        change_id = lifecycle.transition(call.db, client, stage, actor=call.actor, reason=reason).id
        changes["stage"] = stage
    for key, value in changes.items():
        setattr(client, key, value)
    if "name" in changes:
        company = call.db.get(CoreCompany, client.company_id)
        if company is not None:
            company.name = client.name
            call.db.add(company)
    client.updated_at = datetime.now(UTC)
    call.db.add(client)
    call.db.flush()
    call.target = f"cs_client:{client.id}"
    call.audit_details["changed"] = sorted(changes)
    return Updated(
        client_id=client_id, stage=client.stage, changed=sorted(changes), stage_change_id=change_id
    )


class ClientRow(Out):
    id: int = Field(description="Client id.")
    name: str = Field(description="Name.")
    tier: str = Field(description="Tier.")
    stage: str = Field(description="Stage.")
    arr_minor: int = Field(description="ARR, minor units.")
    currency: str = Field(description="Currency.")
    owner: str | None = Field(description="CSM.")
    renewal_date: date | None = Field(description="Renewal date.")
    health_score: float | None = Field(description="Latest stored score; null if none.")
    health_band: str | None = Field(description="Its band.")


class ClientPage(Out):
    items: list[ClientRow] = Field(description="This page.")
    next_cursor: str | None = Field(description="Next page cursor; null at end.")
    total: int = Field(description="Matches, all pages.")


@toolset.tool(tier="read")
def list_clients(
    call: Call,
    tier: Annotated[Tier | None, Field(description="Only this tier.")] = None,
    stage: Annotated[Stage | None, Field(description="Only this stage.")] = None,
    health_band: Annotated[Band | None, Field(description="Only this band (latest snapshot).")] = None,
    arr_min_minor: Annotated[int | None, Field(ge=0, description="Minimum ARR (minor units).")] = None,
    arr_max_minor: Annotated[int | None, Field(ge=0, description="Maximum ARR (minor units).")] = None,
    owner: Annotated[str | None, Field(max_length=200, description="Only this CSM.")] = None,
    archived: Annotated[bool, Field(description="List archived clients instead of live ones.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ClientPage:
    """List clients with filters (tier, stage, health band, ARR range, owner), paged."""
    if arr_min_minor is not None and arr_max_minor is not None and arr_max_minor < arr_min_minor:
        raise ValidationFailed(
            "arr_max_minor is below arr_min_minor.",
            field="arr_max_minor",
            hint="Give a maximum at or above the minimum.",
        )
    query = select(CsClient).where(CsClient.tenant == call.tenant)
    query = query.where(
        col(CsClient.deleted_at).is_not(None) if archived else col(CsClient.deleted_at).is_(None)
    )
    for column, value in ((CsClient.tier, tier), (CsClient.stage, stage), (CsClient.owner, owner)):
        if value is not None:
            query = query.where(column == value)
    if arr_min_minor is not None:
        query = query.where(CsClient.arr_minor >= arr_min_minor)
    if arr_max_minor is not None:
        query = query.where(CsClient.arr_minor <= arr_max_minor)
    clients = list(call.db.exec(query.order_by(col(CsClient.id))))
    snaps = latest_snapshots(call.db, [c.id or 0 for c in clients])
    if health_band is not None:
        clients = [c for c in clients if (s := snaps.get(c.id or 0)) is not None and s.band == health_band]
    offset = _offset(cursor)
    page = clients[offset : offset + limit]
    rows = [
        ClientRow(
            id=c.id or 0,
            name=c.name,
            tier=c.tier,
            stage=c.stage,
            arr_minor=c.arr_minor,
            currency=c.currency,
            owner=c.owner,
            renewal_date=c.renewal_date,
            health_score=s.score if (s := snaps.get(c.id or 0)) else None,
            health_band=s.band if s else None,
        )
        for c in page
    ]
    more = offset + limit < len(clients)
    return ClientPage(
        items=rows,
        next_cursor=encode_cursor({"offset": offset + limit}) if more else None,
        total=len(clients),
    )


def _offset(cursor: str | None) -> int:
    value = decode_cursor(cursor).get("offset", 0)
    if not isinstance(value, int) or value < 0:
        raise ValidationFailed("The cursor is malformed.", field="cursor", hint="Omit cursor to start again.")
    return value


class TimelinePage(Out):
    items: list[TimelineEvent] = Field(description="Events, newest first.")
    next_cursor: str | None = Field(description="Next page cursor; null at end.")
    total: int = Field(description="Matches, all pages.")


@toolset.tool(tier="read")
def get_client_timeline(
    call: Call,
    client_id: ClientId,
    kinds: Annotated[list[Literal[KINDS]] | None, Field(description="Only these kinds; default all.")] = None,  # type: ignore[valid-type]
    start_date: Annotated[date | None, Field(description="From this day (inclusive).")] = None,
    end_date: Annotated[date | None, Field(description="To this day (inclusive).")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TimelinePage:
    """A client's real history merged from usage, tickets, feedback, stages, billing and messages."""
    client = get_client(call.db, client_id)
    if start_date and end_date and end_date < start_date:
        raise ValidationFailed(
            "end_date is before start_date.",
            field="end_date",
            hint="Give an end_date on or after start_date.",
        )
    start = start_of_day(start_date) if start_date else datetime(1970, 1, 1, tzinfo=UTC)
    end = end_of_day(end_date) if end_date else datetime(9999, 1, 1, tzinfo=UTC)
    events = timeline(call.db, client.id or 0, start, end, set(kinds or KINDS))
    offset = _offset(cursor)
    more = offset + limit < len(events)
    return TimelinePage(
        items=events[offset : offset + limit],
        next_cursor=encode_cursor({"offset": offset + limit}) if more else None,
        total=len(events),
    )


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


@toolset.tool(tier="write", idempotent=False)
def import_clients_csv(
    call: Call,
    csv_text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2_000_000,
            description=(
                "CSV with a header. Columns: "
                + ", ".join(CSV_COLUMNS)
                + ". name and tier required; arr in major units."
            ),
        ),
    ],
    dry_run: Annotated[bool, Field(description="Validate only; write nothing.")] = False,
) -> ImportReport:
    """Import clients from CSV: valid rows are created, invalid rows are reported by row and field."""
    reader = csv.DictReader(io.StringIO(csv_text))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if not header or "name" not in header or "tier" not in header or unknown:
        raise ValidationFailed(
            "Bad CSV header: "
            + (f"unknown columns {', '.join(unknown)}." if unknown else "needs name and tier."),
            field="csv_text",
            hint="Columns allowed: " + ", ".join(CSV_COLUMNS) + "; nothing was imported.",
        )
    rows = list(reader)
    errors: list[RowError] = []
    created: list[int] = []
    seen_domains: set[str] = set()
    seen_emails: set[str] = set()
    valid = 0
    for index, raw in enumerate(rows):
        line = index + 2
        values = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        values = {k: v for k, v in values.items() if v != ""}
        try:
            if "arr" in values:
                from revops_core.money import to_minor

                values["arr_minor"] = to_minor(values.pop("arr"), values.get("currency", "USD"))
            data = ClientIn(**values)
        except PydanticValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else "row"
                errors.append(
                    RowError(row=line, field="arr" if field == "arr_minor" else field, message=err["msg"])
                )
            continue
        except ArithmeticError:
            errors.append(RowError(row=line, field="arr", message="not a number"))
            continue
        duplicate = (data.domain and data.domain in seen_domains) or (
            data.contact_email and data.contact_email in seen_emails
        )
        if duplicate:
            field = "domain" if data.domain in seen_domains else "contact_email"
            errors.append(RowError(row=line, field=field, message="repeats an earlier row of this file"))
            continue
        try:
            if dry_run:
                from revops_cs.services.clients import check_unique

                check_unique(call.db, call.tenant, data)
            else:
                client, _ = create_client(call.db, data, tenant=call.tenant, actor=call.actor)
                created.append(client.id or 0)
        except Conflict as exc:
            errors.append(RowError(row=line, field=exc.field or "row", message=exc.message))
            continue
        valid += 1
        seen_domains.update([data.domain] if data.domain else [])
        seen_emails.update([data.contact_email] if data.contact_email else [])
        if (index + 1) % 25 == 0 or index + 1 == len(rows):
            call.progress(index + 1, len(rows), f"{index + 1}/{len(rows)} rows")
    if dry_run or not created:
        call.no_change()
    call.audit_details.update(imported=len(created), errors=len(errors))
    return ImportReport(
        rows=len(rows), imported=len(created), valid=valid, errors=errors, client_ids=created, dry_run=dry_run
    )


class ArchiveResult(Out):
    client_id: int = Field(description="Client id.")
    action: str = Field(description="archive or restore.")
    done: bool = Field(description="Applied (false while a plan awaits confirm).")
    archived: bool = Field(description="Whether the client is archived now.")
    plan: dict[str, Any] | None = Field(
        default=None, description="Plan (plan_id, summary, sample); null once done."
    )


@toolset.tool(tier="destructive", idempotent=False)
def archive_client(
    call: Call,
    client_id: ClientId,
    action: Annotated[
        Literal["archive", "restore"], Field(description="archive (soft delete) or restore.")
    ] = "archive",
    confirm: Annotated[
        str | None,
        Field(max_length=100, description="plan_id from the first call."),
    ] = None,
) -> ArchiveResult:
    """Archive (soft-delete) or restore a client: first call returns a plan, then confirm=<plan_id>."""
    client = get_client(call.db, client_id, include_deleted=True)
    archived = client.deleted_at is not None
    if (action == "archive") == archived:
        raise ValidationFailed(
            f"Client {client_id} is {'already' if archived else 'not'} archived.",
            field="action",
            hint="Use action=restore for archived clients and action=archive for live ones.",
        )
    preview = PlanPreview(
        summary=f"{action.capitalize()} client {client.name} (id {client.id}).",
        affected_count=1,
        sample=[{"id": client.id, "name": client.name, "arr_minor": client.arr_minor, "stage": client.stage}],
        reversible=True,
        notes=["Archived clients are hidden from lists and analytics; their history is kept."]
        if action == "archive"
        else [],
    )
    fingerprint = {
        "id": client.id,
        "deleted_at": str(client.deleted_at),
        "updated_at": str(client.updated_at),
    }
    plan = require_confirmation(call, confirm=confirm, preview=preview, fingerprint=fingerprint)
    if plan is not None:
        return ArchiveResult(
            client_id=client_id,
            action=action,
            done=False,
            archived=archived,
            plan=plan.model_dump(mode="json"),
        )
    now = datetime.now(UTC)
    client.deleted_at = now if action == "archive" else None
    client.updated_at = now
    call.db.add(client)
    call.db.flush()
    call.target = f"cs_client:{client.id}"
    return ArchiveResult(client_id=client_id, action=action, done=True, archived=action == "archive")
