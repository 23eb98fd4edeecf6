"""Streamable HTTP through a real uvicorn server on 127.0.0.1: bearer keys, roles, /healthz, /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import pytest
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import select

from revops_core.apikeys import create_key, revoke_key
from revops_core.audit import AuditEntry
from revops_core.http_transport import build_http_app, serve_in_thread, transport_security
from revops_core.models import CoreCompany
from revops_core.server import Call, RevOpsServer, Toolset, build_server
from revops_core.testing import error_of

pytestmark = pytest.mark.anyio


class Created(BaseModel):
    company_id: int = Field(description="Id of the new company.")


class Counted(BaseModel):
    companies: int = Field(description="Number of companies.")


def _toolset() -> Toolset:
    ts = Toolset("demo", "HTTP test tools")

    @ts.tool(tier="write", idempotent=False)
    def add_company(call: Call, name: Annotated[str, Field(max_length=50, description="Name.")]) -> Created:
        """Add a company."""
        company = CoreCompany(name=name)
        call.db.add(company)
        call.db.flush()
        call.target = f"core_company:{company.id}"
        return Created(company_id=company.id or 0)

    @ts.tool(tier="read")
    def count_companies(call: Call) -> Counted:
        """Count companies."""
        return Counted(companies=call.db.exec(select(func.count()).select_from(CoreCompany)).one())

    return ts


@contextmanager
def serving(server: RevOpsServer) -> Iterator[str]:
    """The server's HTTP app on a free loopback port; yields the base URL."""
    with serve_in_thread(build_http_app(server, server.runtime.settings)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def http_server(settings) -> Iterator[tuple[RevOpsServer, str]]:
    server = build_server("t", [_toolset()], settings=settings)
    with serving(server) as url:
        yield server, url
    server.runtime.db.dispose()


def _client(url: str, key: str | None, mode: str = "auto") -> Any:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = streamable_http_client(f"{url}/mcp", http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode=mode)


def _initialize_body() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_no_key_bad_key_and_revoked_key_get_401(http_server):
    server, url = http_server
    key, raw = create_key(server.runtime.db, name="ops", role="member")
    async with httpx.AsyncClient() as http:
        missing = await http.post(f"{url}/mcp", json=_initialize_body(), headers=MCP_HEADERS)
        wrong = await http.post(
            f"{url}/mcp", json=_initialize_body(), headers=MCP_HEADERS | {"Authorization": "Bearer rvk_nope"}
        )
        good = await http.post(
            f"{url}/mcp", json=_initialize_body(), headers=MCP_HEADERS | {"Authorization": f"Bearer {raw}"}
        )
        revoke_key(server.runtime.db, key.id or 0)
        revoked = await http.post(
            f"{url}/mcp", json=_initialize_body(), headers=MCP_HEADERS | {"Authorization": f"Bearer {raw}"}
        )
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert good.status_code == 200
    assert revoked.status_code == 401
    assert raw not in missing.text + wrong.text + revoked.text


async def test_mcp_client_without_key_cannot_connect(http_server):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    _, url = http_server
    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    http_client = httpx2.AsyncClient(event_hooks={"response": [record]})
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the refusal in a generic error
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http_client)) as client:
            await client.list_tools()
    assert statuses
    assert set(statuses) == {401}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_viewer_key_cannot_write_member_key_can(http_server, mode):
    server, url = http_server
    _, viewer = create_key(server.runtime.db, name="analyst", role="viewer")
    _, member = create_key(server.runtime.db, name="rep", role="member")

    async with _client(url, viewer, mode) as client:
        denied = await client.call_tool("add_company", {"name": "Acme"})
        counted = await client.call_tool("count_companies", {})
    assert error_of(denied)["code"] == "permission_denied"
    assert counted.structured_content == {"companies": 0}

    async with _client(url, member, mode) as client:
        created = await client.call_tool("add_company", {"name": "Acme"})
    assert not created.is_error

    with server.runtime.db.session() as s:
        companies = list(s.exec(select(CoreCompany)))
        entries = list(s.exec(select(AuditEntry)))
    assert [c.name for c in companies] == ["Acme"]
    # The audit entry names the key's owner, not the server's configured local user.
    tool_entries = [(e.actor, e.action) for e in entries if not e.action.startswith("apikey.")]
    assert tool_entries == [("key:rep", "t.add_company")]


async def test_healthz_is_public_and_reports_the_database(http_server):
    server, url = http_server
    async with httpx.AsyncClient() as http:
        ok = await http.get(f"{url}/healthz")
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok", "server": "t", "database": server.runtime.db.dialect}


async def test_healthz_is_503_when_the_database_is_unreachable(make_settings, tmp_path):
    settings = make_settings()
    server = build_server("t", [_toolset()], settings=settings)
    with serving(server) as url:
        # Point the runtime at a database that cannot be opened (a directory where the file should be).
        from revops_core.db import Database

        broken_dir = tmp_path / "broken"
        (broken_dir / "revops.db").mkdir(parents=True)
        server.runtime.db = Database(
            make_settings(data_dir=broken_dir, database_url=None)
            if settings.database_url is None
            else make_settings(database_url="postgresql://nobody@127.0.0.1:1/none")
        )
        async with httpx.AsyncClient() as http:
            down = await http.get(f"{url}/healthz")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert "nobody" not in down.text


async def test_metrics_need_a_key_and_count_calls(http_server):
    server, url = http_server
    _, raw = create_key(server.runtime.db, name="prom", role="viewer")
    async with _client(url, raw) as client:
        await client.call_tool("count_companies", {})
    async with httpx.AsyncClient() as http:
        anonymous = await http.get(f"{url}/metrics")
        scraped = await http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {raw}"})
    assert anonymous.status_code == 401
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert 'revops_tool_calls_total{server="t",status="ok",tool="count_companies"} 1.0' in scraped.text


async def test_foreign_host_header_is_refused_even_with_a_key(http_server):
    server, url = http_server
    _, raw = create_key(server.runtime.db, name="ops", role="admin")
    auth = {"Authorization": f"Bearer {raw}"}
    async with httpx.AsyncClient() as http:
        rebound = await http.post(
            f"{url}/mcp",
            json=_initialize_body(),
            headers=MCP_HEADERS | auth | {"Host": "evil.example.com", "Origin": "http://evil.example.com"},
        )
        foreign_origin = await http.post(
            f"{url}/mcp",
            json=_initialize_body(),
            headers=MCP_HEADERS | auth | {"Origin": "http://evil.example"},
        )
    assert rebound.status_code == 421
    assert foreign_origin.status_code == 403


def test_allowed_hosts_for_wildcard_bind_are_loopback_plus_named(make_settings, monkeypatch):
    monkeypatch.setenv("REVOPS_HTTP_ALLOWED_HOSTS", "sales:8101, revops.example.com")
    security = transport_security(make_settings(http_host="0.0.0.0"))  # noqa: S104 - not bound
    assert "0.0.0.0:*" not in security.allowed_hosts
    assert {"127.0.0.1:*", "localhost:*", "[::1]:*", "sales:8101", "revops.example.com:*"} <= set(
        security.allowed_hosts
    )
    assert "http://sales:8101" in security.allowed_origins


async def test_logging_set_level_and_default_completion_answer(http_server):
    server, url = http_server
    _, raw = create_key(server.runtime.db, name="ops", role="viewer")
    async with _client(url, raw, "legacy") as client:
        from mcp.shared.exceptions import MCPDeprecationWarning
        from mcp.types import PromptReference

        with pytest.warns(MCPDeprecationWarning):  # the client warns; the server must still answer
            await client.set_logging_level("warning")

        completed = await client.complete(
            PromptReference(type="ref/prompt", name="x"), {"name": "a", "value": "b"}
        )
    assert server.runtime.state["client_log_level"] == "warning"
    assert completed.completion.values == []
