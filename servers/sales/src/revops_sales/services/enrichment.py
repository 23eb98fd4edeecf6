"""Apollo enrichment of a lead and Apollo searches, with the credit estimate the plan shows.

Each enriched record (person by e-mail, organisation by domain) is cached with its `as_of`. A cached
record younger than `FRESH_DAYS` is served without calling Apollo (no credits). When Apollo is down
(circuit open, 5xx, timeout, unusable answer) an older cached record is served instead, marked stale
with its `as_of`; with nothing cached the error is returned. 401 and 429 are never masked by the
cache: they need the user (a new key, or waiting `retry_after`). Every vendor call finishes before
anything is stored, so a failure writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import Field
from sqlmodel import Session, select

from revops_core.db import utcnow
from revops_core.errors import CircuitOpen, IntegrationUnavailable, ValidationFailed
from revops_core.guards import PlanPreview
from revops_core.outputs import Out
from revops_core.server import Call
from revops_sales.models.leads import SalesEnrichment, SalesLead
from revops_sales.services import leads
from revops_sales.vendors import apollo

FRESH_DAYS = 30
DOWN = (IntegrationUnavailable, CircuitOpen)
Kind = Literal["person", "organization"]
T = TypeVar("T")


class RecordOut(Out):
    kind: str = Field(description="person or organization.")
    lookup: str = Field(description="E-mail or domain looked up.")
    found: bool = Field(description="Apollo had a record.")
    data: dict[str, Any] | None = Field(description="The record (documented Apollo fields).")
    served_from: str = Field(description="apollo, cache (fresh) or stale_cache (Apollo was down).")
    as_of: datetime = Field(description="When Apollo gave this answer (UTC).")
    stale: bool = Field(description="True: Apollo could not be reached; this is the last answer.")
    error: str | None = Field(description="Why Apollo was not used (stale only).")


class EnrichmentOut(Out):
    lead_id: int = Field(description="Lead enriched.")
    records: list[RecordOut] = Field(description="Person and/or organisation records.")
    filled: list[str] = Field(description="Lead fields that were empty and are now filled.")
    credits_estimated: int = Field(description="Records fetched from Apollo (estimated credits).")


class SearchOut(Out):
    kind: str = Field(description="people or organizations.")
    page: int = Field(description="Page returned.")
    per_page: int = Field(description="Page size.")
    total_entries: int = Field(description="Matches Apollo reports.")
    items: list[dict[str, Any]] = Field(description="Matches (documented Apollo fields).")


def lookups(lead: SalesLead) -> list[tuple[Kind, str]]:
    out: list[tuple[Kind, str]] = []
    if lead.email:
        out.append(("person", lead.email.lower()))
    if lead.company_domain:
        out.append(("organization", lead.company_domain.lower()))
    if not out:
        raise ValidationFailed(
            f"Lead {lead.id} has neither e-mail nor company domain to enrich by.",
            field="lead_id",
            hint="Set email or company_domain with save_lead.",
        )
    return out


def _cached(session: Session, tenant: str, kind: str, lookup: str) -> SalesEnrichment | None:
    return session.exec(
        select(SalesEnrichment).where(
            SalesEnrichment.tenant == tenant, SalesEnrichment.kind == kind, SalesEnrichment.lookup == lookup
        )
    ).first()


def _fresh(row: SalesEnrichment | None, now: datetime) -> bool:
    return row is not None and now - row.as_of < timedelta(days=FRESH_DAYS)


def enrichment_preview(
    session: Session, tenant: str, lead: SalesLead
) -> tuple[PlanPreview, dict[str, Any], int]:
    """The plan of an enrichment, its fingerprint and the estimated credits (0: all fresh in cache)."""
    now = utcnow()
    wanted = lookups(lead)
    rows = {(k, v): _cached(session, tenant, k, v) for k, v in wanted}
    to_fetch = [(k, v) for k, v in wanted if not _fresh(rows[(k, v)], now)]
    preview = PlanPreview(
        summary=f"Enrich lead {lead.id} from Apollo: ~{len(to_fetch)} credit(s).",
        affected_count=1,
        sample=[{"kind": k, "lookup": v, "cached": rows[(k, v)] is not None} for k, v in wanted],
        reversible=False,
        notes=[
            "Estimate: one Apollo credit per record fetched; records cached in the last "
            f"{FRESH_DAYS} days are served from the cache for free. Apollo bills per your plan."
        ],
    )
    fingerprint = {
        "lead": lead.id,
        "updated_at": lead.updated_at.isoformat(),
        "cache": {f"{k}:{v}": (r.as_of.isoformat() if r else None) for (k, v), r in rows.items()},
    }
    return preview, fingerprint, len(to_fetch)


def _with_client(
    call: Call, creds: apollo.ApolloCredentials, work: Callable[[apollo.ApolloClient], Awaitable[T]]
) -> T:
    async def run() -> T:
        options = call.vendor_options(apollo.SPEC.provider)
        async with apollo.ApolloClient(creds, call.settings, **options) as client:
            return await work(client)

    return call.run_async(run)


# Lead fields an enrichment may fill (only when empty), from which record field.
FILL: dict[str, tuple[tuple[str, str], ...]] = {
    "person": (("title", "title"), ("country", "country"), ("company_name", "company_name")),
    "organization": (
        ("industry", "industry"),
        ("employees", "employees"),
        ("company_name", "name"),
        ("country", "country"),
    ),
}


def enrich(call: Call, creds: apollo.ApolloCredentials, lead_id: int) -> EnrichmentOut:
    session = call.db
    lead = leads.get(session, call.tenant, lead_id)
    now = utcnow()
    wanted = lookups(lead)
    rows = {(k, v): _cached(session, call.tenant, k, v) for k, v in wanted}
    to_fetch = [(k, v) for k, v in wanted if not _fresh(rows[(k, v)], now)]

    async def fetch(client: apollo.ApolloClient) -> dict[tuple[str, str], dict[str, Any] | Exception | None]:
        got: dict[tuple[str, str], dict[str, Any] | Exception | None] = {}
        for kind, lookup in to_fetch:
            try:
                got[(kind, lookup)] = await (
                    client.enrich_person(lookup) if kind == "person" else client.enrich_organization(lookup)
                )
            except DOWN as exc:
                if rows[(kind, lookup)] is None:
                    raise
                got[(kind, lookup)] = exc
        return got

    fetched = _with_client(call, creds, fetch) if to_fetch else {}
    records: list[RecordOut] = []
    credits = 0
    for kind, lookup in wanted:
        row = rows[(kind, lookup)]
        answer = fetched.get((kind, lookup), "cache")
        if isinstance(answer, Exception) or answer == "cache":
            assert row is not None
            data = json.loads(row.payload)
            stale = isinstance(answer, Exception)
            records.append(
                RecordOut(
                    kind=kind,
                    lookup=lookup,
                    found=data is not None,
                    data=data,
                    served_from="stale_cache" if stale else "cache",
                    as_of=row.as_of,
                    stale=stale,
                    error=str(answer) if stale else None,
                )
            )
            continue
        credits += 1
        record = answer if isinstance(answer, dict) else None
        row = row or SalesEnrichment(tenant=call.tenant, kind=kind, lookup=lookup, payload="null", as_of=now)
        row.payload, row.as_of = json.dumps(record, sort_keys=True), now
        session.add(row)
        records.append(
            RecordOut(
                kind=kind,
                lookup=lookup,
                found=record is not None,
                data=record,
                served_from="apollo",
                as_of=now,
                stale=False,
                error=None,
            )
        )
    filled: list[str] = []
    for rec in records:
        for attr, key in FILL[rec.kind]:
            value = (rec.data or {}).get(key)
            if attr == "country" and not (isinstance(value, str) and len(value) == 2):
                continue  # Apollo often gives a country name; the lead keeps ISO codes only
            if getattr(lead, attr) is None and value is not None and attr not in filled:
                setattr(lead, attr, value.upper() if attr == "country" else value)
                filled.append(attr)
    if filled:
        lead.updated_at = now
        session.add(lead)
    session.flush()
    call.target = f"sales_lead:{lead_id}"
    return EnrichmentOut(lead_id=lead_id, records=records, filled=filled, credits_estimated=credits)


def search(
    call: Call,
    creds: apollo.ApolloCredentials,
    kind: Literal["people", "organizations"],
    body: dict[str, Any],
) -> SearchOut:
    async def run(client: apollo.ApolloClient) -> tuple[list[dict[str, Any]], dict[str, int]]:
        if kind == "people":
            return await client.search_people(body)
        return await client.search_organizations(body)

    items, pagination = _with_client(call, creds, run)
    call.target = f"apollo:{kind}"
    return SearchOut(kind=kind, items=items, **pagination)
