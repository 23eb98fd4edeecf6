"""MCP beyond tools for the clients toolset: client resources, QBR / at-risk prompts, id completion.

Resources and prompts read the same stored rows as the tools (no numbers of their own): the client
resource is `get_client_overview`, the health resource the latest stored snapshot with its parts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.types import Completion, PromptReference, ResourceTemplateReference
from sqlmodel import Session

from revops_core.errors import NotFound
from revops_core.params import MAX_ID, today
from revops_core.server import Runtime
from revops_cs.models.clients import CsClient
from revops_cs.services.clients import get_client, live_clients, live_ids
from revops_cs.services.health import latest_snapshot, latest_snapshots
from revops_cs.services.overview import build_overview

MAX_COMPLETIONS = 100
T = TypeVar("T")


def _client_or_error(session: Session, client_id: str) -> CsClient:
    """The client a resource URI names; a malformed or unknown id is `NotFound` (JSON-RPC -32602)."""
    message = f"No client with id {client_id!r}; list_clients shows valid ids."
    try:
        number = int(client_id)
    except ValueError as exc:
        raise NotFound(message, field="uri") from exc
    if not 1 <= number <= MAX_ID:  # beyond what the column holds: no such client, not a crash
        raise NotFound(message, field="uri")
    try:
        return get_client(session, number)
    except NotFound as exc:
        raise NotFound(message, field="uri") from exc


def client_json(runtime: Runtime, client_id: str) -> str:
    with runtime.db.session() as session:
        client = _client_or_error(session, client_id)
        overview = build_overview(session, client, today())
        return overview.model_dump_json()


def health_json(runtime: Runtime, client_id: str) -> str:
    with runtime.db.session() as session:
        client = _client_or_error(session, client_id)
        snap = latest_snapshot(session, client.id or 0)
        if snap is None:
            body: dict[str, Any] = {
                "client_id": client.id,
                "health": None,
                "missing": "no health snapshot yet; call calculate_health_score",
            }
        else:
            body = {
                "client_id": client.id,
                "as_of": snap.as_of.isoformat(),
                "score": snap.score,
                "band": snap.band,
                "components": json.loads(snap.components),
                "weights": json.loads(snap.weights),
                "missing": json.loads(snap.missing),
                "inputs_hash": snap.inputs_hash,
            }
        return json.dumps(body)


def qbr_text(runtime: Runtime, client_id: str) -> str:
    overview = json.loads(client_json(runtime, client_id))
    health = json.loads(health_json(runtime, client_id))
    return (
        f"Prepare a quarterly business review for client {overview['client']['name']} (id {client_id}).\n"
        "Use only the stored facts below and what the tools return; say explicitly when data is missing.\n\n"
        f"Overview: {json.dumps(overview)}\n\nHealth: {json.dumps(health)}\n\n"
        "Steps: 1) get_client_timeline for the last 90 days; 2) track_usage_engagement period_days=90; "
        "3) analyze_health_trends for this client; 4) draft: wins, usage and adoption, support, risks, "
        "renewal plan, and three agreed next steps."
    )


def at_risk_text(runtime: Runtime) -> str:
    with runtime.db.session() as session:
        tenant = runtime.settings.tenant
        clients = {c.id or 0: c for c in live_clients(session, tenant)}
        snaps = latest_snapshots(session, live_ids(tenant))
        rows = [
            {
                "client_id": cid,
                "name": clients[cid].name,
                "score": s.score,
                "band": s.band,
                "as_of": s.as_of.isoformat(),
                "arr_minor": clients[cid].arr_minor,
                "currency": clients[cid].currency,
                "renewal_date": renewal.isoformat() if (renewal := clients[cid].renewal_date) else None,
                "owner": clients[cid].owner,
            }
            for cid, s in sorted(snaps.items(), key=lambda kv: kv[1].score)
            if s.band in ("at_risk", "critical")
        ]
        unscored = len(clients) - len(snaps)
    listing = json.dumps(rows) if rows else "none (no client's latest snapshot is at_risk or critical)"
    return (
        "Weekly at-risk review. Clients whose latest stored health is at_risk or critical, lowest first:\n"
        f"{listing}\n{unscored} live client(s) have no health snapshot yet.\n\n"
        "For each client: run analyze_engagement_patterns and get_client_overview, name the main driver "
        "(the lowest sub-score), and propose one owner action with a date. Finish with the ARR at risk "
        "from generate_health_report."
    )


def complete_clients(runtime: Runtime, partial: str) -> Completion:
    """Client ids whose id starts with, or whose name contains, the partial value."""
    needle = partial.strip().lower()
    with runtime.db.session() as session:
        clients = live_clients(session, runtime.settings.tenant)
    ids = [
        str(c.id) for c in clients if not needle or str(c.id).startswith(needle) or needle in c.name.lower()
    ]
    return Completion(values=ids[:MAX_COMPLETIONS], has_more=len(ids) > MAX_COMPLETIONS)


def register(mcp: MCPServer, runtime: Runtime) -> None:
    """Add the client resources, prompts and client-id completion to a server."""

    async def in_thread(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, runtime, *args)

    @mcp.resource("cs://clients/{client_id}", mime_type="application/json", description="Client overview.")
    async def client_resource(client_id: str) -> str:
        return await in_thread(client_json, client_id)

    @mcp.resource(
        "cs://clients/{client_id}/health", mime_type="application/json", description="Latest health snapshot."
    )
    async def health_resource(client_id: str) -> str:
        return await in_thread(health_json, client_id)

    @mcp.prompt(description="Prepare a QBR for one client from its stored data.")
    async def qbr_preparation(client_id: str) -> str:
        return await in_thread(qbr_text, client_id)

    @mcp.prompt(description="Review at-risk and critical clients for the week.")
    async def weekly_at_risk_review() -> str:
        return await in_thread(at_risk_text)

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        wants_client = argument.name == "client_id" and (
            (isinstance(ref, PromptReference) and ref.name == "qbr_preparation")
            or (isinstance(ref, ResourceTemplateReference) and ref.uri.startswith("cs://clients/"))
        )
        if not wants_client:
            return None
        return await in_thread(complete_clients, argument.value or "")
