"""Zendesk mirroring and sync through the protocol, with Zendesk faked at the network edge (respx).

Every request our client sends is checked against the documented Zendesk Support API v2 shape, and
every failure path (401, 429, 500, timeout, malformed body) leaves no local row half-written.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import jsonschema
import pytest
import respx
from factories import add_client
from sqlalchemy import func
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.testing import call_ok, connect, error_of, override_vendor
from revops_core.vault import Vault
from revops_cs.models.support import CsSyncCursor, CsTicket, CsTicketComment
from revops_cs.vendors import zendesk

pytestmark = pytest.mark.anyio
TOKEN = "zd-token-5ecret-value"
EMAIL = "agent@acme.test"

_COMMENT = {
    "type": "object",
    "required": ["body"],
    "additionalProperties": False,
    "properties": {"body": {"type": "string", "minLength": 1}, "public": {"type": "boolean"}},
}
_TICKET_FIELDS = {
    "subject": {"type": "string", "minLength": 1},
    "comment": _COMMENT,
    "priority": {"enum": ["urgent", "high", "normal", "low"]},
    "status": {"enum": ["new", "open", "pending", "hold", "solved", "closed"]},
    "tags": {"type": "array", "items": {"type": "string"}},
    "external_id": {"type": "string"},
}
# POST /api/v2/tickets.json: subject and the first comment are required.
CREATE_TICKET = {
    "type": "object",
    "required": ["ticket"],
    "additionalProperties": False,
    "properties": {
        "ticket": {
            "type": "object",
            "required": ["subject", "comment"],
            "additionalProperties": False,
            "properties": _TICKET_FIELDS,
        }
    },
}
# PUT /api/v2/tickets/{id}.json: any subset, at least one field.
UPDATE_TICKET = {
    "type": "object",
    "required": ["ticket"],
    "additionalProperties": False,
    "properties": {
        "ticket": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": _TICKET_FIELDS,
        }
    },
}
CREATE_OR_UPDATE_USER = {
    "type": "object",
    "required": ["user"],
    "properties": {
        "user": {
            "type": "object",
            "required": ["email"],
            "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
        }
    },
}


def body_of(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


def count(server: Any, model: Any) -> int:
    with server.runtime.db.session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


@pytest.fixture
def zd(cs_server, settings):
    """The CS server with Zendesk credentials in the vault, a fake clock and a unique subdomain."""
    sub = f"acme{uuid.uuid4().hex[:8]}"
    Vault(cs_server.runtime.db, settings).set(
        "zendesk", "default", {"subdomain": sub, "email": EMAIL, "api_token": TOKEN}
    )
    clock = FakeClock()
    override_vendor(cs_server, "zendesk", clock=clock)
    with cs_server.runtime.db.session(write=True) as s:
        client = add_client(s, "Acme", external_ids=json.dumps({"zendesk": 501}))
        client_id = client.id
    return cs_server, f"https://{sub}.zendesk.com", clock, client_id


def remote_ticket(tid: int, **fields: Any) -> dict[str, Any]:
    base = {
        "id": tid,
        "subject": "Export fails",
        "description": "CSV export times out",
        "status": "open",
        "priority": "high",
        "tags": ["export"],
        "organization_id": 501,
        "created_at": "2026-03-02T09:00:00Z",
        "updated_at": "2026-03-02T10:00:00Z",
        "via": {"channel": "email"},
    }
    return base | fields


async def test_ticket_changes_are_mirrored_in_the_documented_shape(zd):
    server, base, _, client_id = zd
    with respx.mock(assert_all_called=True) as mock:
        create = mock.post(f"{base}/api/v2/tickets.json").respond(201, json={"ticket": remote_ticket(35436)})
        update = mock.put(f"{base}/api/v2/tickets/35436.json").respond(
            200, json={"ticket": remote_ticket(35436)}
        )
        async with connect(server) as client:
            created = await client.call_tool(
                "create_ticket",
                {
                    "client_id": client_id,
                    "subject": "Export fails",
                    "body": "CSV export times out",
                    "priority": "high",
                    "tags": ["export"],
                },
            )
            out = created.structured_content
            tid = out["ticket"]["id"]
            await client.call_tool("update_ticket", {"action": "comment", "ticket_id": tid, "body": "On it"})
            await client.call_tool(
                "update_ticket",
                {"action": "comment", "ticket_id": tid, "body": "note", "public": False},
            )
            await client.call_tool("update_ticket", {"action": "resolve", "ticket_id": tid})
            local_only = await client.call_tool(
                "update_ticket", {"action": "update", "ticket_id": tid, "assignee": "ann"}
            )
    assert out["mirrored"] is True
    assert out["mirror_note"] is None
    assert out["ticket"]["zendesk_id"] == "35436"
    assert local_only.structured_content["mirrored"] is False  # nothing Zendesk holds changed: no call
    assert "Zendesk was not called" in local_only.structured_content["mirror_note"]
    sent = body_of(create.calls[0].request)
    jsonschema.validate(sent, CREATE_TICKET)
    assert sent["ticket"]["comment"] == {"body": "CSV export times out", "public": True}
    assert sent["ticket"]["external_id"].startswith("revops-cs:")
    expected = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
    assert create.calls[0].request.headers["Authorization"] == expected
    updates = [body_of(c.request) for c in update.calls]
    for u in updates:
        jsonschema.validate(u, UPDATE_TICKET)
    assert updates == [
        {"ticket": {"comment": {"body": "On it", "public": True}}},
        {"ticket": {"comment": {"body": "note", "public": False}}},
        {"ticket": {"status": "solved"}},
    ]
    with server.runtime.db.session() as s:
        ticket = s.get(CsTicket, tid)
        assert (ticket.external_source, ticket.external_id, ticket.status) == ("zendesk", "35436", "solved")


def _fail(kind: str) -> Any:
    if kind == "timeout":
        return httpx.ReadTimeout("no answer")
    if kind == "malformed":
        return httpx.Response(201, content=b"<html>oops</html>", headers={"Content-Type": "application/json"})
    return httpx.Response({"401": 401, "500": 500}[kind], json={"error": "x"})


@pytest.mark.parametrize(
    ("kind", "code", "outcome"),
    [
        ("401", "integration_auth", "failed"),
        ("500", "integration_unavailable", "failed"),
        ("timeout", "integration_unavailable", "unknown"),
        ("malformed", "integration_unavailable", "unknown"),
    ],
)
async def test_failed_create_writes_nothing_locally(zd, kind, code, outcome):
    server, base, _, client_id = zd
    with respx.mock() as mock:
        route = mock.post(f"{base}/api/v2/tickets.json").mock(side_effect=[_fail(kind)] * 10)
        async with connect(server) as client:
            result = await client.call_tool(
                "create_ticket", {"client_id": client_id, "subject": "S", "body": "B"}
            )
    err = error_of(result)
    assert (err["code"], err["outcome"]) == (code, outcome)
    assert route.call_count == 1  # a POST is never resent blindly
    assert TOKEN not in result.content[0].text
    assert count(server, CsTicket) == 0


async def test_failed_update_leaves_the_local_ticket_untouched(zd):
    server, base, _, client_id = zd
    with server.runtime.db.session(write=True) as s:
        t = CsTicket(
            client_id=client_id, subject="S", status="open", external_source="zendesk", external_id="77"
        )
        s.add(t)
        s.flush()
        tid = t.id
    with respx.mock() as mock:
        mock.put(f"{base}/api/v2/tickets/77.json").respond(500)
        async with connect(server) as client:
            resolved = await client.call_tool(
                "update_ticket", {"action": "resolve", "ticket_id": tid, "body": "x"}
            )
            escalated = await client.call_tool("update_ticket", {"action": "escalate", "ticket_id": tid})
    assert error_of(resolved)["code"] == "integration_unavailable"
    assert error_of(escalated)["code"] == "integration_unavailable"
    with server.runtime.db.session() as s:
        ticket = s.get(CsTicket, tid)
        assert (ticket.status, ticket.solved_at, ticket.escalated) == ("open", None, False)
    assert count(server, CsTicketComment) == 0
    from revops_cs.models.escalations import CsEscalation

    assert count(server, CsEscalation) == 0


async def test_rate_limit_retry_after_is_honoured(zd):
    server, base, clock, client_id = zd
    with respx.mock() as mock:
        route = mock.post(f"{base}/api/v2/tickets.json").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "7"}),
                httpx.Response(201, json={"ticket": remote_ticket(9)}),
            ]
        )
        async with connect(server) as client:
            result = await client.call_tool(
                "create_ticket", {"client_id": client_id, "subject": "S", "body": "B"}
            )
    assert result.structured_content["ticket"]["zendesk_id"] == "9"
    assert route.call_count == 2
    assert 7.0 in clock.sleeps


async def test_without_credentials_vendor_tools_name_the_missing_vault_command(cs_server):
    with respx.mock(assert_all_called=False) as mock:
        any_call = mock.route().respond(500)
        async with connect(cs_server) as client:
            result = await client.call_tool("sync_zendesk_tickets", {})
    err = error_of(result)
    assert err["code"] == "configuration_error"
    assert (
        "revops vault set zendesk subdomain=<subdomain> email=<agent email> api_token=<api token>"
        in err["hint"]
    )
    assert not any_call.called


def test_partial_credentials_list_only_the_missing_fields():
    missing = zendesk.credentials_from_fields({"subdomain": "acme", "email": "a@b.c"})
    assert missing == ("api_token",)
    assert zendesk.setup_command(missing) == "revops vault set zendesk api_token=<api token>"
    with pytest.raises(zendesk.ConfigurationError):
        zendesk.credentials_from_fields({"subdomain": "evil.com/x", "email": "a", "api_token": "t"})
    creds = zendesk.credentials_from_fields({"subdomain": "acme", "email": "a@b.c", "api_token": "t0k"})
    assert "t0k" not in repr(creds)


async def test_sync_pages_through_the_cursor_export_and_upserts(zd):
    server, base, _, client_id = zd
    export = f"{base}/api/v2/incremental/tickets/cursor.json"
    pages = [
        {
            "tickets": [remote_ticket(1), remote_ticket(2, organization_id=999)],
            "metric_sets": [{"ticket_id": 1, "reply_time_in_minutes": {"calendar": 25, "business": 20}}],
            "after_cursor": "c1",
            "end_of_stream": False,
        },
        {
            "tickets": [remote_ticket(1, status="solved", updated_at="2026-03-03T09:00:00Z")],
            "metric_sets": [
                {
                    "ticket_id": 1,
                    "reply_time_in_minutes": {"calendar": 25},
                    "solved_at": "2026-03-03T09:00:00Z",
                }
            ],
            "after_cursor": "c2",
            "end_of_stream": True,
        },
        {"tickets": [], "after_cursor": None, "end_of_stream": True},
    ]
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    with respx.mock() as mock:
        route = mock.get(export).mock(side_effect=[httpx.Response(200, json=p) for p in pages])
        async with connect(server) as client:
            first = await client.call_tool("sync_zendesk_tickets", {}, progress_callback=on_progress)
            second = await client.call_tool("sync_zendesk_tickets", {})
    params = [dict(c.request.url.params) for c in route.calls]
    assert params == [
        {"include": "metric_sets", "start_time": "0"},
        {"include": "metric_sets", "cursor": "c1"},
        {"include": "metric_sets", "cursor": "c2"},
    ]
    assert first.structured_content == {
        "pages": 2,
        "fetched": 3,
        "created": 1,
        "updated": 1,
        "skipped_unmatched": 1,
        "end_of_stream": True,
        "cursor_saved": True,
    }
    assert second.structured_content["fetched"] == 0
    assert progress == [1, 2]
    with server.runtime.db.session() as s:
        rows = s.exec(select(CsTicket)).all()
        cursor = s.exec(select(CsSyncCursor)).one()
    assert len(rows) == 1
    ticket = rows[0]
    assert (ticket.client_id, ticket.external_id, ticket.status, ticket.priority) == (
        client_id,
        "1",
        "solved",
        "high",
    )
    assert ticket.first_response_at.isoformat() == "2026-03-02T09:25:00+00:00"
    assert ticket.solved_at.isoformat() == "2026-03-03T09:00:00+00:00"
    assert json.loads(ticket.tags) == ["export"]
    assert cursor.cursor == "c2"


async def test_sync_failure_mid_export_stores_nothing(zd):
    server, base, _, _ = zd
    export = f"{base}/api/v2/incremental/tickets/cursor.json"
    page = {"tickets": [remote_ticket(1)], "after_cursor": "c1", "end_of_stream": False}
    with respx.mock() as mock:
        mock.get(export).mock(side_effect=[httpx.Response(200, json=page)] + [httpx.Response(401)] * 5)
        async with connect(server) as client:
            result = await client.call_tool("sync_zendesk_tickets", {})
    assert error_of(result)["code"] == "integration_auth"
    assert count(server, CsTicket) == 0
    assert count(server, CsSyncCursor) == 0


async def test_client_search_users_and_comments_use_the_documented_endpoints(settings):
    creds = zendesk.credentials_from_fields({"subdomain": "acmeapi", "email": EMAIL, "api_token": TOKEN})
    assert isinstance(creds, zendesk.ZendeskCredentials)
    base = creds.base_url
    with respx.mock(assert_all_called=True) as mock:
        search = mock.get(f"{base}/api/v2/search.json").respond(200, json={"results": [{"id": 5}]})
        user = mock.get(f"{base}/api/v2/users/42.json").respond(200, json={"user": {"id": 42}})
        upsert = mock.post(f"{base}/api/v2/users/create_or_update.json").respond(
            200, json={"user": {"id": 43}}
        )
        comments = mock.get(f"{base}/api/v2/tickets/5/comments.json").respond(
            200, json={"comments": [{"id": 1}]}
        )
        async with zendesk.ZendeskClient(creds, settings, clock=FakeClock()) as zd:
            assert await zd.search("type:ticket status:open") == [{"id": 5}]
            assert (await zd.get_user("42"))["id"] == 42
            assert (await zd.create_or_update_user({"email": "c@d.e", "name": "C"}))["id"] == 43
            assert await zd.list_comments("5") == [{"id": 1}]
    assert search.calls[0].request.url.params["query"] == "type:ticket status:open"
    jsonschema.validate(body_of(upsert.calls[0].request), CREATE_OR_UPDATE_USER)
    assert user.called
    assert comments.called


async def test_restarted_sync_starts_at_since_and_local_only_tickets_are_not_mirrored(zd):
    server, base, _, client_id = zd
    with server.runtime.db.session(write=True) as s:
        s.add(CsSyncCursor(vendor="zendesk", stream="tickets", cursor="old"))
        local = CsTicket(client_id=client_id, subject="made before Zendesk", status="open")
        s.add(local)
        s.flush()
        local_id = local.id
    with respx.mock() as mock:
        route = mock.get(f"{base}/api/v2/incremental/tickets/cursor.json").respond(
            200, json={"tickets": [], "after_cursor": "fresh", "end_of_stream": True}
        )
        async with connect(server) as client:
            await client.call_tool("sync_zendesk_tickets", {"restart": True, "since": "2026-03-01"})
            commented = await client.call_tool(
                "update_ticket", {"action": "comment", "ticket_id": local_id, "body": "hello"}
            )
    assert dict(route.calls[0].request.url.params)["start_time"] == "1772323200"  # 2026-03-01T00:00Z
    assert commented.structured_content["mirrored"] is False
    assert "no Zendesk id" in commented.structured_content["mirror_note"]
    assert count(server, CsTicketComment) == 1
    with server.runtime.db.session() as s:
        assert s.exec(select(CsSyncCursor)).one().cursor == "fresh"


async def test_a_vendor_id_linked_through_update_client_info_matches_the_organisation(zd):
    """Issue 7: organisations matched only through external_ids that no tool could write."""
    server, base, _, _ = zd
    export = f"{base}/api/v2/incremental/tickets/cursor.json"
    page = {"tickets": [remote_ticket(7, organization_id=777)], "after_cursor": None, "end_of_stream": True}
    with respx.mock() as mock:
        mock.get(export).mock(side_effect=[httpx.Response(200, json=page), httpx.Response(200, json=page)])
        async with connect(server) as client:
            new = await call_ok(client, "register_client", name="Linked Co", tier="smb")
            unmatched = await client.call_tool("sync_zendesk_tickets", {})
            linked = await call_ok(
                client, "update_client_info", client_id=new["client_id"], external_ids={"zendesk": "777"}
            )
            matched = await client.call_tool("sync_zendesk_tickets", {"restart": True})
    assert unmatched.structured_content["skipped_unmatched"] == 1
    assert "external_ids" in linked["changed"]
    assert matched.structured_content["created"] == 1
    with server.runtime.db.session() as s:
        ticket = s.exec(select(CsTicket).where(CsTicket.external_id == "7")).one()
    assert ticket.client_id == new["client_id"]
