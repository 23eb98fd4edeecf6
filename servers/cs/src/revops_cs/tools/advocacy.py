"""CS toolset `reviews`: the advocacy programme — records, the points ledger, promoter candidates."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import AsOf, Count, Cursor, Id, Limit, Text, require, resolve_as_of
from revops_core.server import Call
from revops_cs.output import Out
from revops_cs.params import ClientId, OptClient
from revops_cs.services import advocacy
from revops_cs.services.advocacy import AdvocacyOut, Candidate
from revops_cs.services.clients import get_client
from revops_cs.toolsets import reviews as toolset

AdvocacyStatus = Literal["proposed", "active", "done"]
MAX_POINTS = 1_000_000
"""Largest single earn or redeem: a guard against a typo, far above any real award."""


class PointsBalance(Out):
    client_id: int = Field(description="Client.")
    balance: int = Field(description="Points: the sum of the client's ledger rows.")


class Candidates(Out):
    as_of: date = Field(description="Evaluation date.")
    candidates: list[Candidate] = Field(description="By client id, with the evidence.")


class AdvocacyChange(Out):
    record: AdvocacyOut | None = Field(description="The record added (add).")
    balance: int = Field(description="The client's points after the change.")


@toolset.tool(tier="read", title="List advocacy records", replaces="manage_advocacy action=list")
def list_advocacy(
    call: Call,
    client_id: OptClient = None,
    status: Annotated[AdvocacyStatus | None, Field(description="Filter.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AdvocacyOut]:
    """Advocacy records, oldest first."""
    if client_id is not None:
        get_client(call.db, client_id)
    return advocacy.page(call.db, call.tenant, client_id=client_id, status=status, limit=limit, cursor=cursor)


@toolset.tool(tier="read", title="Advocacy points balance", replaces="manage_advocacy action=balance")
def get_advocacy_balance(call: Call, client_id: ClientId) -> PointsBalance:
    """A client's advocacy points (the sum of its ledger)."""
    client = get_client(call.db, client_id)
    return PointsBalance(client_id=client_id, balance=advocacy.balance(call.db, client.id or 0))


@toolset.tool(tier="read", title="Advocacy candidates", replaces="manage_advocacy action=candidates")
def list_advocacy_candidates(call: Call, as_of: AsOf = None, limit: Limit = 50) -> Candidates:
    """Promoters (latest NPS 9–10) in excellent/good health who are not active advocates yet."""
    day = resolve_as_of(as_of)
    return Candidates(as_of=day, candidates=advocacy.candidates(call.db, call.tenant, day, limit))


@toolset.tool(tier="write", idempotent=False, title="Record advocacy")
def manage_advocacy(
    call: Call,
    action: Annotated[Literal["add", "record_points"], Field(description="What to do.")],
    client_id: ClientId,
    contact_id: Annotated[int | None, Id("contact")] = None,
    kind: Annotated[
        Literal["reference", "case_study", "review", "referral"] | None, Field(description="Kind (add).")
    ] = None,
    status: Annotated[AdvocacyStatus | None, Field(description="Default proposed.")] = None,
    points: Annotated[int | None, Count("+earn / −redeem.", ge=-MAX_POINTS, le=MAX_POINTS)] = None,
    notes: Annotated[str | None, Text("Notes.", max_length=2000)] = None,
) -> AdvocacyChange:
    """Add an advocacy record (kind) or earn/redeem advocacy points (points)."""
    client = get_client(call.db, client_id)
    if action == "record_points":
        row, balance = advocacy.record_points(
            call.db,
            actor=call.actor,
            client=client,
            contact_id=contact_id,
            points=require(points, "points", when="action=record_points"),
            notes=notes,
        )
        call.target = f"cs_advocacy_points:{row.id}"
        return AdvocacyChange(record=None, balance=balance)
    record = advocacy.add(
        call.db,
        tenant=call.tenant,
        actor=call.actor,
        client=client,
        contact_id=contact_id,
        kind=require(kind, "kind", when="action=add"),
        status=status,
        notes=notes,
    )
    call.target = f"cs_advocacy:{record.id}"
    return AdvocacyChange(
        record=AdvocacyOut.model_validate(record), balance=advocacy.balance(call.db, client_id)
    )
