"""HTTP hardening over a real uvicorn server on 127.0.0.1, with real API keys.

- a streamable-HTTP session answers only the key that opened it, and ends when that key is revoked;
- `tools/list` shows only the tools the caller's role may call (HTTP: the key's role; stdio: the
  configured local role);
- the allowed-hosts (DNS-rebinding) check guards every route, not only `/mcp`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import pytest
from pydantic import BaseModel, Field

from revops_core.apikeys import create_key, revoke_key
from revops_core.http_transport import build_http_app, serve_in_thread
from revops_core.server import ROLE_RANK, TIER_ROLE, Call, RevOpsServer, Toolset, build_server
from revops_core.settings import Role, Settings
from revops_core.testing import connect, error_of

pytestmark = pytest.mark.anyio

PROTOCOL = "2025-11-25"  # the initialize-handshake era: sessions (Mcp-Session-Id)
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
Confirm = Annotated[str | None, Field(default=None, description="plan_id of a plan to execute.")]


class Done(BaseModel):
    done: bool = Field(description="Always true.")


def _toolset() -> Toolset:
    ts = Toolset("demo", "one tool per tier")

    @ts.tool(tier="read")
    def read_things(call: Call) -> Done:
        """Read."""
        return Done(done=True)

    @ts.tool(tier="write", idempotent=False)
    def write_thing(call: Call) -> Done:
        """Write."""
        return Done(done=True)

    @ts.tool(tier="destructive", idempotent=False)
    def delete_thing(call: Call, confirm: Confirm = None) -> Done:
        """Delete (plan → confirm)."""
        call.no_change()
        return Done(done=True)

    @ts.tool(tier="critical", idempotent=False)
    def purge_things(call: Call, confirm: Confirm = None) -> Done:
        """Purge (approval)."""
        call.no_change()
        return Done(done=True)

    return ts


Served = tuple[RevOpsServer, str]
TIERS = {
    "read_things": "read",
    "write_thing": "write",
    "delete_thing": "destructive",
    "purge_things": "critical",
}


def _callable_by(role: str) -> set[str]:
    """The tools a role may call, from the tier → role table the wrapper enforces."""
    return {name for name, tier in TIERS.items() if ROLE_RANK[role] >= ROLE_RANK[TIER_ROLE[tier]]}


@contextmanager
def serving(server: RevOpsServer) -> Iterator[str]:
    with serve_in_thread(build_http_app(server, server.runtime.settings)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def http_server(settings: Settings) -> Iterator[Served]:
    server = build_server("t", [_toolset()], settings=settings)
    with serving(server) as url:
        yield server, url
    server.runtime.db.dispose()


def _auth(raw: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"} if raw else {}


def _rpc(method: str, request_id: int | None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        body["id"] = request_id
    if params is not None:
        body["params"] = params
    return body


def _message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message in a response (a JSON body, or the first SSE `data:` line)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return dict(json.loads(data[0]))
    return dict(response.json())


async def _open_session(http: httpx.AsyncClient, url: str, raw: str) -> str:
    """initialize + notifications/initialized with `raw`; the session id the server issued."""
    init = await http.post(
        f"{url}/mcp",
        json=_rpc(
            "initialize",
            1,
            {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        ),
        headers=MCP_HEADERS | _auth(raw),
    )
    assert init.status_code == 200, init.text
    session_id = init.headers["mcp-session-id"]
    ready = await http.post(
        f"{url}/mcp",
        json=_rpc("notifications/initialized", None),
        headers=MCP_HEADERS | _auth(raw) | {"mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL},
    )
    assert ready.status_code == 202, ready.text
    return session_id


async def _in_session(
    http: httpx.AsyncClient, url: str, session_id: str, raw: str | None, request_id: int = 2
) -> httpx.Response:
    return await http.post(
        f"{url}/mcp",
        json=_rpc("tools/list", request_id),
        headers=MCP_HEADERS | _auth(raw) | {"mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL},
    )


# --------------------------------------------------------------------------- sessions bound to keys


async def test_a_session_answers_only_the_key_that_opened_it(http_server: Served) -> None:
    server, url = http_server
    _, owner = create_key(server.runtime.db, name="owner", role="viewer")
    _, other = create_key(server.runtime.db, name="other", role="admin")  # a stronger key is no excuse
    async with httpx.AsyncClient() as http:
        session_id = await _open_session(http, url, owner)
        foreign = await _in_session(http, url, session_id, other)
        anonymous = await _in_session(http, url, session_id, None)
        foreign_delete = await http.delete(
            f"{url}/mcp",
            headers=_auth(other) | {"mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL},
        )
        own = await _in_session(http, url, session_id, owner)
    assert foreign.status_code == 403
    error = _message(foreign)["error"]
    assert error["data"]["error"] == "session_key_mismatch"
    assert "opened with another API key" in error["message"]
    assert other not in foreign.text
    assert owner not in foreign.text
    assert anonymous.status_code == 401
    # Another key cannot end the owner's session either.
    assert foreign_delete.status_code == 403
    assert own.status_code == 200
    assert {t["name"] for t in _message(own)["result"]["tools"]} == _callable_by("viewer")


async def test_revoking_its_key_ends_the_session(http_server: Served) -> None:
    server, url = http_server
    key, owner = create_key(server.runtime.db, name="owner", role="member")
    _, other = create_key(server.runtime.db, name="other", role="member")
    async with httpx.AsyncClient() as http:
        session_id = await _open_session(http, url, owner)
        assert (await _in_session(http, url, session_id, owner)).status_code == 200
        before = await _in_session(http, url, session_id, other)  # the session exists: 403, not 404
        revoke_key(server.runtime.db, key.id or 0)
        revoked = await _in_session(http, url, session_id, owner, 3)
        after = await _in_session(http, url, session_id, other, 4)
        fresh = await _open_session(http, url, other)  # the server itself still serves other keys
    assert before.status_code == 403
    assert revoked.status_code == 401
    # The session is gone: its id now answers 404 (spec: a terminated session), whoever asks.
    assert after.status_code == 404
    assert fresh != session_id


# --------------------------------------------------------------------------- tools/list by role


@pytest.mark.parametrize("role", ["viewer", "member", "admin"])
async def test_tools_list_over_http_shows_only_what_the_keys_role_may_call(
    http_server: Served, protocol_mode: str, role: Role
) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    server, url = http_server
    _, raw = create_key(server.runtime.db, name=f"k-{role}", role=role)
    transport = streamable_http_client(f"{url}/mcp", http_client=create_mcp_http_client(headers=_auth(raw)))
    async with Client(transport, mode=protocol_mode) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        hidden = sorted(set(TIERS) - listed)
        # A hidden tool is still refused for its role (not reported as unknown), and nothing runs.
        refused = [error_of(await client.call_tool(name, {}))["code"] for name in hidden]
    assert listed == _callable_by(role)
    assert refused == ["permission_denied"] * len(hidden)


@pytest.mark.parametrize("role", ["viewer", "member", "admin"])
async def test_tools_list_over_stdio_follows_the_local_role(
    make_settings: Callable[..., Settings], protocol_mode: str, role: str
) -> None:
    server = build_server("t", [_toolset()], settings=make_settings(role=role))
    try:
        async with connect(server, protocol_mode) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
    finally:
        server.runtime.db.dispose()
    assert listed == _callable_by(role)


async def test_a_filtered_tools_list_is_one_complete_page(http_server: Served) -> None:
    """The filter keeps the page complete: no cursor, and a cursor sent back changes nothing."""
    server, url = http_server
    _, raw = create_key(server.runtime.db, name="v", role="viewer")
    async with httpx.AsyncClient() as http:
        session_id = await _open_session(http, url, raw)
        first = _message(await _in_session(http, url, session_id, raw))["result"]
        again = await http.post(
            f"{url}/mcp",
            json=_rpc("tools/list", 5, {"cursor": "anything"}),
            headers=MCP_HEADERS
            | _auth(raw)
            | {"mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL},
        )
    assert "nextCursor" not in first
    assert [t["name"] for t in first["tools"]] == ["read_things"]
    assert [t["name"] for t in _message(again)["result"]["tools"]] == ["read_things"]


# --------------------------------------------------------------------------- allowed hosts on every route


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/mcp", "/no-such-route"])
async def test_every_route_refuses_a_foreign_host_and_origin(http_server: Served, path: str) -> None:
    server, url = http_server
    _, raw = create_key(server.runtime.db, name="ops", role="admin")
    async with httpx.AsyncClient() as http:
        rebound = await http.get(f"{url}{path}", headers=_auth(raw) | {"Host": "evil.example.com"})
        foreign_origin = await http.get(
            f"{url}{path}", headers=_auth(raw) | {"Origin": "http://evil.example"}
        )
    assert rebound.status_code == 421
    assert rebound.json()["error"] == "misdirected_request"
    assert foreign_origin.status_code == 403
    assert foreign_origin.json()["error"] == "forbidden_origin"
    assert raw not in rebound.text + foreign_origin.text


async def test_allowed_hosts_still_reach_healthz_and_metrics(http_server: Served) -> None:
    server, url = http_server
    port = url.rsplit(":", 1)[1]
    _, raw = create_key(server.runtime.db, name="prom", role="viewer")
    async with httpx.AsyncClient() as http:
        health = await http.get(f"{url}/healthz", headers={"Host": f"localhost:{port}"})
        metrics = await http.get(
            f"{url}/metrics",
            headers=_auth(raw) | {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
        )
    assert health.status_code == 200
    assert metrics.status_code == 200
