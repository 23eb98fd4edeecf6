"""Salesforce ↔ Sales sync: Account → companies, Contact → contacts, Opportunity → deals; one way in,
Lead → leads and (as `tasks`) completed Task and every Event → activities.

One run, in order: opportunity stages (as the local pipeline "Salesforce", linked by stage name) and
users (OwnerId → the user's name) when deals are synced → per object the changed records (SOQL,
`SystemModstamp >= since`, oldest first, paged with `nextRecordsUrl`) and then the deleted ones
(getDeleted, archived locally) → local changes out (sObject collections, 200 records a request).

The vendor-neutral part — matching, conflicts, writing through the services, one transaction per page
with its cursor — is `sync_pull`; this module only speaks Salesforce. A page is fetched, then written
with its cursor; a failure leaves the pages before it committed and nothing of its own. Query locators
expire after minutes, so an interrupted query is not resumed by its `nextRecordsUrl`: the next run
queries again from the newest `SystemModstamp` committed (records at that instant are read again and
skipped as unchanged, so nothing is duplicated).

API allowance: after every answer the `Sforce-Limit-Info` usage is checked; at or above
`salesforce.USAGE_CEILING` of the 24 h allowance the run stops before its next request, as `partial`
with the reason in its errors; the last usage is stored for `get_sync_status`.

Not synced (yet): OpportunityHistory (see the report: local stage moves are recorded when a deal's
stage changes, at sync time); a local archive is not pushed as a
Salesforce delete; a create that timed out is not resent (its outcome is unknown).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlmodel import Session, select

from revops_core.db import utcnow
from revops_core.server import Call
from revops_sales.models.sync import SalesSyncUsage
from revops_sales.services import (
    salesforce_activities,
    salesforce_leads,
    sync_pull,
    sync_records,
    sync_settings,
)
from revops_sales.services.sync_pull import Dialect, RunContext, SyncRunOut
from revops_sales.services.sync_records import COMPANY, STAGE, Stats
from revops_sales.services.sync_settings import SyncSettingsOut
from revops_sales.vendors import salesforce

VENDOR = "salesforce"
OBJECTS = ("companies", "contacts", "deals", "leads", "tasks")  # tasks: Task and Event → activities
SOBJECT = {"companies": "Account", "contacts": "Contact", "deals": "Opportunity", "leads": "Lead"}
PIPELINE = "Opportunity"  # the org's opportunity stages, as one local pipeline
PIPELINE_LABEL = "Salesforce"
FIRST_DELETED_WINDOW = timedelta(days=1)  # deletions before the first sync concern no linked row
STAGES_SOQL = (
    "SELECT ApiName, MasterLabel, IsClosed, IsWon, DefaultProbability, SortOrder "
    "FROM OpportunityStage WHERE IsActive = true ORDER BY SortOrder"
)
USERS_SOQL = "SELECT Id, Name, Email FROM User"
T = TypeVar("T")
DIALECT = Dialect(
    vendor=VENDOR,
    parse_time=salesforce.parse_time,
    record_time=lambda _obj, r: salesforce.parse_time(r.get("updatedAt")),
    format_date=salesforce.format_date,
    number=float,  # Salesforce currency fields are JSON numbers
    cleared=None,  # Salesforce clears a field given null ("" is refused by number and date fields)
)


class _OverBudget(Exception):
    """The API allowance is used up to the ceiling: stop before the next request."""


@dataclass(frozen=True)
class _Page:
    records: list[dict[str, Any]]


# --------------------------------------------------------------------------- vendor records


def _domain(website: Any) -> str | None:
    """A Website value (`https://www.acme.com/about`) as the domain it names."""
    if website is None or str(website).strip() == "":
        return None
    raw = str(website).strip()
    host = urlsplit(raw if "//" in raw else f"//{raw}").hostname
    return host.removeprefix("www.") if host else raw


def _normalise(obj: str, record: dict[str, Any], fmap: dict[str, str]) -> dict[str, Any]:
    """A Salesforce row in sync_pull's shape (properties by field name; deals' stage as pipeline:stage)."""
    props = {field: record.get(field) for field in fmap.values()}
    if obj == "companies" and "domain" in fmap:
        props[fmap["domain"]] = _domain(record.get(fmap["domain"]))
    if obj == "deals":
        props["pipeline"], props["dealstage"] = PIPELINE, record.get("StageName")
    return {"id": record["Id"], "properties": props, "updatedAt": record.get("SystemModstamp")}


def _fields(obj: str, fmap: dict[str, str]) -> list[str]:
    extra = {"companies": [], "contacts": ["AccountId"], "deals": ["AccountId", "StageName"]}[obj]
    return [*fmap.values(), *extra]


def _pipeline(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """OpportunityStage rows as sync_pull's pipeline shape (a won stage is certain, a lost one nil)."""

    def probability(s: dict[str, Any]) -> str:
        if s.get("IsClosed"):
            return "1.0" if s.get("IsWon") else "0.0"
        return str(Decimal(str(s.get("DefaultProbability") or 0)) / 100)

    return {
        "id": PIPELINE,
        "label": PIPELINE_LABEL,
        "stages": [
            {
                "id": str(s.get("ApiName") or s.get("MasterLabel")),
                "label": str(s.get("MasterLabel") or s.get("ApiName")),
                "displayOrder": int(s.get("SortOrder") or 0),
                "metadata": {"probability": probability(s), "isClosed": str(bool(s.get("IsClosed"))).lower()},
            }
            for s in stages
        ],
    }


def _owners(ctx: RunContext, users: list[dict[str, Any]]) -> None:
    for user in users:
        uid = str(user["Id"])
        label = str(user.get("Name") or user.get("Email") or uid).strip()[:200]
        ctx.owner_label[uid] = label
        ctx.owner_id.setdefault(label, uid)


# --------------------------------------------------------------------------- pull


def _check_budget(sf: salesforce.SalesforceClient) -> None:
    if sf.usage is not None and sf.usage[1] > 0 and sf.usage[0] >= salesforce.USAGE_CEILING * sf.usage[1]:
        raise _OverBudget(
            f"Salesforce API usage is {sf.usage[0]}/{sf.usage[1]}, at or above "
            f"{salesforce.USAGE_CEILING:.0%} of the 24 h allowance: stopped early; run again later."
        )


async def _walk(
    call: Call,
    sf: salesforce.SalesforceClient,
    ctx: RunContext,
    stream: str,
    statement: Callable[[datetime | None], str],
    store: Callable[[Session, list[dict[str, Any]], Callable[[Session], None]], Stats],
    stats: Stats,
) -> None:
    """Page through one SOQL query of changes since the stream's cursor; each page is written by
    `store(session, records, advance)` in one transaction with the cursor."""
    since, _, high = await call.in_thread(partial(sync_pull.read_cursor, ctx, stream))
    since = high or since  # an interrupted query restarts at the newest committed change
    first = statement(since)
    next_url: str | None = None
    for _ in range(ctx.max_pages):
        _check_budget(sf)
        page = await (sf.query(next_url=next_url) if next_url else sf.query(first))
        times = [t for r in page.records if (t := salesforce.parse_time(r.get("SystemModstamp")))]
        high = max([*times, *([high] if high else [])], default=high)
        next_url = page.next_url
        if next_url is None:
            since, high = high or since, None
        advance = sync_pull.advance(ctx, stream, since=since, after=next_url, high_water=high)
        stats.add(await call.in_thread(ctx.write(store, page.records, advance)))
        if next_url is None:
            return
    ctx.complete = False


async def _pull(
    call: Call,
    sf: salesforce.SalesforceClient,
    ctx: RunContext,
    obj: str,
    settings: SyncSettingsOut,
    stats: Stats,
) -> None:
    fmap = sync_settings.mapped(settings)

    def store(session: Session, rows: list[dict[str, Any]], advance: Callable[[Session], None]) -> Stats:
        records = _Page([_normalise(obj, r, fmap) for r in rows])
        companies_of = {r["Id"]: [r["AccountId"]] for r in rows if r.get("AccountId")}
        return sync_pull.store_page(session, ctx, obj, settings, records, companies_of, advance)

    def statement(since: datetime | None) -> str:
        return salesforce.soql(SOBJECT[obj], _fields(obj, fmap), since=since)

    await _walk(call, sf, ctx, obj, statement, store, stats)
    await _pull_deleted(call, sf, ctx, obj, stats)


async def _pull_leads(call: Call, sf: salesforce.SalesforceClient, ctx: RunContext, stats: Stats) -> None:
    """Leads in (one way; see `salesforce_leads`), then the deleted ones archived."""

    def store(session: Session, rows: list[dict[str, Any]], advance: Callable[[Session], None]) -> Stats:
        return salesforce_leads.store_page(session, ctx.tenant, ctx.owner_label, rows, _domain, advance)

    def statement(since: datetime | None) -> str:
        return salesforce.soql("Lead", salesforce_leads.FIELDS, since=since)

    await _walk(call, sf, ctx, "leads", statement, store, stats)
    await _pull_deleted(call, sf, ctx, "leads", stats)


async def _pull_activities(
    call: Call, sf: salesforce.SalesforceClient, ctx: RunContext, stats: Stats
) -> None:
    """Tasks and events in, as activities (one way; see `salesforce_activities`)."""
    for sobject, fields in salesforce_activities.FIELDS.items():

        def store(
            session: Session,
            rows: list[dict[str, Any]],
            advance: Callable[[Session], None],
            kind: str = sobject,
        ) -> Stats:
            return salesforce_activities.store_page(session, ctx.tenant, ctx.owner_label, kind, rows, advance)

        def statement(since: datetime | None, kind: str = sobject, wanted: list[str] = fields) -> str:
            return salesforce.soql(kind, wanted, since=since)

        await _walk(call, sf, ctx, f"activities:{sobject}", statement, store, stats)


async def _pull_deleted(
    call: Call, sf: salesforce.SalesforceClient, ctx: RunContext, obj: str, stats: Stats
) -> None:
    stream = f"{obj}:deleted"
    start, _, _ = await call.in_thread(partial(sync_pull.read_cursor, ctx, stream))
    end = sf.now()
    start = start or end - FIRST_DELETED_WINDOW
    if end - start < timedelta(minutes=1):
        return  # Salesforce reads whole minutes: nothing new to ask for yet
    _check_budget(sf)
    found = await sf.deleted(SOBJECT[obj], start, end)
    records = [{"id": rid, "archivedAt": salesforce.format_time(at) if at else None} for rid, at in found.ids]
    advance = sync_pull.advance(ctx, stream, since=found.covered_until or end)
    stats.add(await call.in_thread(ctx.write(sync_pull.store_archived, ctx, obj, _Page(records), advance)))


# --------------------------------------------------------------------------- push


@dataclass
class _Push:
    creates: list[tuple[int, dict[str, Any], dict[str, Any]]]  # local id, record, values
    updates: list[tuple[int, dict[str, Any], dict[str, Any]]]  # link id, record (with Id), new base


def _plan_push(session: Session, ctx: RunContext, obj: str, settings: SyncSettingsOut, stats: Stats) -> _Push:
    fmap = sync_settings.mapped(settings)
    fields = sync_pull.fields_of(obj, fmap)
    stage_keys = {v: k for k, v in sync_records.local_ids(session, ctx.tenant, VENDOR, "stage").items()}
    accounts = {v: k for k, v in sync_records.local_ids(session, ctx.tenant, VENDOR, "companies").items()}
    plan = _Push([], [])

    def record(row: Any, values: dict[str, Any]) -> dict[str, Any] | None:
        out = sync_pull.to_vendor(values, fmap, getattr(row, "currency", "USD"), ctx)
        if STAGE in values:
            key = stage_keys.get(values[STAGE])
            if key is None:
                stats.error(f"deal {row.id}: its stage is not a Salesforce stage; not pushed")
                return None
            out["StageName"] = key.split(":", 1)[1]
        if COMPANY in values:
            company = values[COMPANY]
            if company is not None and company not in accounts:
                stats.error(f"{obj} {row.id}: its company is not in Salesforce; not pushed")
                return None
            out["AccountId"] = accounts.get(company) if company is not None else None
        return out

    for row in sync_records.unlinked_rows(session, ctx.tenant, VENDOR, obj):
        values = sync_records.local_values(obj, row, fields)
        made = record(row, values)
        if made is not None:
            plan.creates.append((int(row.id), {k: v for k, v in made.items() if v is not None}, values))
    for row, lnk in sync_records.linked_rows(session, ctx.tenant, VENDOR, obj):
        if row.deleted_at is not None:
            continue  # deletes are not pushed (see the module docstring)
        values = sync_records.local_values(obj, row, fields)
        base = json.loads(lnk.synced_values)
        changed = {k: v for k, v in values.items() if v != base.get(k)}
        made = record(row, changed) if changed else None
        if made:
            plan.updates.append((int(lnk.id or 0), {"Id": lnk.vendor_id, **made}, {**base, **changed}))
    return plan


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), salesforce.COLLECTION_SIZE):
        yield items[start : start + salesforce.COLLECTION_SIZE]


def _refused(result: dict[str, Any]) -> str:
    errors = result.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    return f"{first.get('statusCode') or 'refused'}: {first.get('message') or 'no reason given'}"


def _store_created(
    session: Session,
    ctx: RunContext,
    obj: str,
    batch: list[tuple[int, dict[str, Any], dict[str, Any]]],
    results: list[dict[str, Any]],
) -> Stats:
    stats = Stats()
    for (local_id, _, values), result in zip(batch, results, strict=True):
        if not result["success"] or not isinstance(result.get("id"), str):
            stats.error(f"{obj} {local_id}: Salesforce refused it ({_refused(result)})")
            continue
        sync_records.link(session, ctx.tenant, VENDOR, obj, local_id, result["id"], values)
        stats.pushed_created += 1
    return stats


async def _push(
    call: Call,
    sf: salesforce.SalesforceClient,
    ctx: RunContext,
    obj: str,
    settings: SyncSettingsOut,
    stats: Stats,
) -> None:
    def plan_in_read() -> _Push:
        with ctx.runtime.db.session() as session:
            return _plan_push(session, ctx, obj, settings, stats)

    plan = await call.in_thread(plan_in_read)
    sobject = SOBJECT[obj]
    for creates in _chunks(plan.creates):
        _check_budget(sf)
        results = await sf.create(sobject, [entry for _, entry, _ in creates])
        stats.add(await call.in_thread(ctx.write(_store_created, ctx, obj, creates, results)))
    for updates in _chunks(plan.updates):
        _check_budget(sf)
        results = await sf.update(sobject, [entry for _, entry, _ in updates])
        accepted = []
        for (link_id, entry, base), result in zip(updates, results, strict=True):
            if result["success"]:
                accepted.append((link_id, {"id": entry["Id"]}, base))
            else:
                stats.error(f"{obj} {entry['Id']}: Salesforce refused the update ({_refused(result)})")
        # No modification time comes back: the next pull compares values and finds them equal.
        times: dict[str, datetime | None] = {entry["id"]: None for _, entry, _ in accepted}
        stats.add(await call.in_thread(ctx.write(sync_pull.store_updated, accepted, times)))


# --------------------------------------------------------------------------- the run


def _save_usage(session: Session, tenant: str, usage: tuple[int, int]) -> None:
    row = session.exec(
        select(SalesSyncUsage).where(SalesSyncUsage.tenant == tenant, SalesSyncUsage.vendor == VENDOR)
    ).first() or SalesSyncUsage(tenant=tenant, vendor=VENDOR, used=0, allowed=0)
    row.used, row.allowed, row.read_at = usage[0], usage[1], utcnow()
    session.add(row)


async def _sync(
    call: Call,
    sf: salesforce.SalesforceClient,
    ctx: RunContext,
    settings: dict[str, SyncSettingsOut],
    one_way: set[str],
    stats: Stats,
) -> None:
    if "deals" in settings:
        stages = await sf.query_all(STAGES_SOQL, keyed=False)
        remote = [_pipeline(stages)]
        stats.add(await call.in_thread(ctx.write(sync_pull.store_pipelines, ctx, remote)))
    if ("deals" in settings and "owner" in sync_settings.mapped(settings["deals"])) or one_way:
        _owners(ctx, await sf.query_all(USERS_SOQL))
    for obj, chosen in sync_pull.flowing(settings, "pull"):
        await _pull(call, sf, ctx, obj, chosen, stats)
    if "leads" in one_way:
        await _pull_leads(call, sf, ctx, stats)
    if "tasks" in one_way:
        await _pull_activities(call, sf, ctx, stats)
    for obj, chosen in sync_pull.flowing(settings, "push"):
        await _push(call, sf, ctx, obj, chosen, stats)


async def run(call: Call, *, objects: list[str], max_pages: int) -> SyncRunOut:
    """Pull then push the given objects (in dependency order); see the module docstring."""
    credentials = await call.in_thread(partial(salesforce.require_credentials, call.runtime))
    ordered = [o for o in OBJECTS if o in objects]
    ctx = RunContext(call.runtime, call.tenant, call.actor, max_pages, DIALECT)
    settings = await call.in_thread(
        partial(sync_pull.load_settings, call.runtime, call.tenant, VENDOR, ordered)
    )

    async def body(stats: Stats) -> None:
        async with salesforce.SalesforceClient(
            credentials, call.runtime, **call.vendor_options(salesforce.PROVIDER)
        ) as sf:
            try:
                await _sync(call, sf, ctx, settings, {"leads", "tasks"} & set(ordered), stats)
            except _OverBudget as stop:
                ctx.complete = False  # the pages so far stay committed: the run is partial
                stats.error(str(stop), skipped=False)
            finally:
                await _record_usage(call, sf)

    return await sync_pull.recorded_run(call, ctx, ordered, body)


async def _record_usage(call: Call, sf: salesforce.SalesforceClient) -> None:
    usage = sf.usage
    if usage is not None:
        tenant = call.tenant

        def save() -> None:
            with call.runtime.db.session(write=True) as session:
                _save_usage(session, tenant, usage)

        await call.in_thread(save)
