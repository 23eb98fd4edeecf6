"""sync_intercom through the protocol, with Intercom faked at the network edge (respx).

Every request is validated against Intercom's published API 2.14 description (OpenAPI 3.0.1), and the
failure paths (no credential, 401, 429, 500, timeout, malformed body) are checked by counting rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
import spec_validation as sv
from comm_helpers import (
    count,
    steady_settings,
)
from comm_helpers import failure as _fail
from factories import add_client, add_contact
from sqlmodel import select
from werkzeug.datastructures import Headers

from revops_core.clock import FakeClock
from revops_core.testing import call_error, call_ok, connect, error_of, override_vendor
from revops_core.vault import Vault
from revops_cs.models.support import CsTicket
from revops_cs.models.vendors import CsExternalRef
from revops_cs.vendors import intercom

pytestmark = pytest.mark.anyio
TOKEN = "ic-token-5ecret"
API = "https://api.intercom.io"


@pytest.fixture
def settings(make_settings):
    return steady_settings(make_settings)


@pytest.fixture
def ic(cs_server, settings) -> dict[str, Any]:
    Vault(cs_server.runtime.db, settings).set(
        "intercom", "default", {"access_token": TOKEN, "admin_id": "991"}
    )
    clock = FakeClock()
    override_vendor(cs_server, intercom.SPEC, clock=clock)
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "Acme")
        ann = add_contact(s, c, "ann@acme.test", first_name="Ann", is_primary=True)
        bob = add_contact(s, c, "bob@acme.test")
        return {"server": cs_server, "clock": clock, "client": c.id, "ann": ann.id, "bob": bob.id}


def search_answer(request: httpx.Request) -> httpx.Response:
    email = json.loads(request.content)["query"]["value"]
    data = [{"type": "contact", "id": "6002", "email": email}] if email.startswith("bob") else []
    return httpx.Response(200, json={"type": "list", "data": data, "total_count": len(data)})


async def tool(server: Any, **args: Any) -> Any:
    async with connect(server) as client:
        return await client.call_tool("sync_intercom", args)


async def test_push_contacts_creates_updates_and_tags_in_the_documented_shape(ic):
    server = ic["server"]
    with respx.mock(assert_all_called=True) as mock:
        search = mock.post(f"{API}/contacts/search").mock(side_effect=search_answer)
        create = mock.post(f"{API}/contacts").respond(200, json={"type": "contact", "id": "6001"})
        update = mock.put(f"{API}/contacts/6002").respond(200, json={"type": "contact", "id": "6002"})
        tags = mock.post(f"{API}/tags").respond(200, json={"type": "tag", "id": "17", "name": "vip"})
        tagged = mock.post(url__regex=rf"{API}/contacts/600[12]/tags").respond(
            200, json={"type": "tag", "id": "17"}
        )
        result = await tool(server, action="push_contacts", client_id=ic["client"], tag="vip")
    assert not result.is_error, result.content
    items = {i["local_id"]: (i["intercom_id"], i["status"]) for i in result.structured_content["items"]}
    assert items == {ic["ann"]: ("6001", "created+tagged"), ic["bob"]: ("6002", "updated+tagged")}
    routes = [search, create, update, tags, tagged]
    assert sum(sv.validate_all(sv.INTERCOM, r.calls) for r in routes) == 8
    sent = create.calls[0].request
    assert sent.headers["Intercom-Version"] == "2.14"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent.content) == {
        "role": "user",
        "email": "ann@acme.test",
        "external_id": str(ic["ann"]),
        "name": "Ann",
    }
    assert count(server, CsExternalRef) == 2


async def test_note_goes_to_the_primary_contact(ic):
    server = ic["server"]
    with server.runtime.db.session(write=True) as s:
        s.add(CsExternalRef(vendor="intercom", kind="contact", local_id=ic["ann"], external_id="6001"))
    with respx.mock(assert_all_called=True) as mock:
        note = mock.post(f"{API}/contacts/6001/notes").respond(200, json={"type": "note", "id": "n1"})
        result = await tool(
            server, action="note", client_id=ic["client"], body="Escalation opened: export bug"
        )
    assert result.structured_content["items"][0]["status"] == "noted"
    assert sv.validate_all(sv.INTERCOM, note.calls) == 1
    assert json.loads(note.calls[0].request.content) == {
        "body": "Escalation opened: export bug",
        "admin_id": "991",
    }


async def test_conversations_import_as_tickets_once(ic):
    server = ic["server"]
    with server.runtime.db.session(write=True) as s:
        s.add(CsExternalRef(vendor="intercom", kind="contact", local_id=ic["bob"], external_id="6002"))

    def conv(cid: str, contact: str, state: str) -> dict[str, Any]:
        return {
            "type": "conversation",
            "id": cid,
            "title": None,
            "created_at": 1_780_000_000,
            "updated_at": 1_780_003_600,
            "state": state,
            "priority": "priority",
            "source": {"subject": "Export broken", "body": "<p>CSV export fails</p>"},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact}]},
        }

    pages = [
        httpx.Response(
            200,
            json={
                "type": "conversation.list",
                "conversations": [conv("101", "6002", "open")],
                "pages": {"type": "pages", "next": {"starting_after": "abc"}},
            },
        ),
        httpx.Response(
            200,
            json={
                "type": "conversation.list",
                "conversations": [conv("102", "9999", "closed")],
                "pages": {"type": "pages"},
            },
        ),
    ]
    with respx.mock() as mock:
        route = mock.get(f"{API}/conversations").mock(side_effect=pages + pages)
        first = await tool(server, action="import_conversations")
        again = await tool(server, action="import_conversations")
    assert sv.validate_all(sv.INTERCOM, route.calls) == 4
    assert route.calls[1].request.url.params["starting_after"] == "abc"
    out = first.structured_content
    assert out["unmapped"] == 1
    assert [i["status"] for i in out["items"]] == ["imported"]
    assert [i["status"] for i in again.structured_content["items"]] == ["updated"]
    with server.runtime.db.session() as s:
        ticket = s.exec(select(CsTicket)).one()
    assert (ticket.client_id, ticket.external_id, ticket.status, ticket.priority) == (
        ic["client"],
        "101",
        "open",
        "high",
    )
    assert (ticket.subject, ticket.description, ticket.channel) == (
        "Export broken",
        "CSV export fails",
        "intercom",
    )


async def test_reply_and_admin_message_match_the_spec(ic, settings):
    server = ic["server"]
    with respx.mock(assert_all_called=True) as mock:
        reply = mock.post(f"{API}/conversations/99/reply").respond(
            200, json={"type": "conversation", "id": "99"}
        )
        message = mock.post(f"{API}/messages").respond(200, json={"type": "user_message", "id": "m1"})
        result = await tool(server, action="reply", conversation_id="99", body="Fixed in 4.2")
        creds = intercom.IntercomCredentials(intercom.Secret(TOKEN), "991")
        async with intercom.IntercomClient(creds, settings, clock=FakeClock()) as client:
            await client.message("6001", "Your QBR", "See you Tuesday")
    assert result.structured_content["items"][0]["status"] == "replied"
    assert sv.validate_all(sv.INTERCOM, reply.calls) + sv.validate_all(sv.INTERCOM, message.calls) == 2


async def test_validator_rejects_a_malformed_intercom_request():
    no_body = httpx.Request(
        "POST", f"{API}/contacts/1/notes", headers={"Authorization": "Bearer x"}, json={"admin_id": "1"}
    )
    with pytest.raises(Exception, match=r"(?i)body"):
        sv.validate(sv.INTERCOM, no_body)
    bad_version = httpx.Request(
        "POST", f"{API}/contacts/1/notes", headers={"Intercom-Version": "9.9"}, json={"body": "x"}
    )
    with pytest.raises(Exception):  # noqa: B017 — the header is an enum in the spec
        sv.validate(sv.INTERCOM, bad_version)


async def test_missing_credentials_name_the_vault_command(cs_server):
    with cs_server.runtime.db.session(write=True) as s:
        client_id = add_client(s, "Acme").id
    result = await tool(cs_server, action="push_contacts", client_id=client_id)
    err = error_of(result)
    assert err["code"] == "configuration_error"
    assert "revops vault set intercom access_token=" in err["hint"]


@pytest.mark.parametrize(
    ("kind", "code", "outcome"),
    [
        ("401", "integration_auth", "failed"),
        ("500", "integration_unavailable", "failed"),
        ("timeout", "integration_unavailable", "unknown"),
        ("malformed", "integration_unavailable", "unknown"),
    ],
)
async def test_failed_create_stores_no_mapping(ic, kind, code, outcome):
    server = ic["server"]
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{API}/contacts/search").mock(side_effect=search_answer)
        create = mock.post(f"{API}/contacts").mock(side_effect=[_fail(kind)] * 5)
        mock.put(f"{API}/contacts/6002").respond(200, json={"id": "6002"})
        result = await tool(server, action="push_contacts", client_id=ic["client"])
    err = error_of(result)
    assert (err["code"], err["outcome"]) == (code, outcome)
    assert create.call_count == 1  # a create is never resent blindly
    assert TOKEN not in result.content[0].text
    assert count(server, CsExternalRef) == 0


@pytest.mark.parametrize(
    ("kind", "code"), [("500", "integration_unavailable"), ("malformed", "integration_unavailable")]
)
async def test_failed_import_stores_no_ticket(ic, kind, code):
    server = ic["server"]
    with respx.mock() as mock:
        mock.get(f"{API}/conversations").mock(side_effect=[_fail(kind)] * 5)
        result = await tool(server, action="import_conversations")
    assert error_of(result)["code"] == code
    assert count(server, CsTicket) == 0


async def test_rate_limit_retry_after_is_honoured(ic):
    server = ic["server"]
    with respx.mock() as mock:
        mock.post(f"{API}/contacts/search").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "5"}),
                search_answer(_req("ann@acme.test")),
            ]
        )
        mock.post(f"{API}/contacts").respond(200, json={"id": "6001"})
        result = await tool(server, action="push_contacts", client_id=ic["client"], contact_id=ic["ann"])
    assert result.structured_content["items"][0]["status"] == "created"
    assert 5.0 in ic["clock"].sleeps


def _req(email: str) -> httpx.Request:
    return httpx.Request("POST", f"{API}/contacts/search", json={"query": {"value": email}})


async def test_note_without_admin_id_names_the_vault_field(cs_server, settings):
    Vault(cs_server.runtime.db, settings).set("intercom", "default", {"access_token": TOKEN})
    with cs_server.runtime.db.session(write=True) as s:
        client_id = add_client(s, "Acme").id
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="api.intercom.io")
        result = await tool(cs_server, action="note", client_id=client_id, body="hello")
    err = error_of(result)
    assert (err["code"], err["field"]) == ("configuration_error", "admin_id")
    assert "admin_id=" in err["hint"]
    assert route.call_count == 0


async def test_required_fields_and_ids_beyond_postgres_integer(ic):
    server = ic["server"]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="api.intercom.io")
        async with connect(server) as client:
            no_client = await call_error(client, "sync_intercom", action="push_contacts")
            no_body = await call_error(client, "sync_intercom", action="note", client_id=ic["client"])
            no_conversation = await call_error(client, "sync_intercom", action="reply", body="hi")
            too_big = await call_error(client, "sync_intercom", action="push_contacts", client_id=2**31)
            big_contact = await call_error(
                client, "sync_intercom", action="push_contacts", client_id=ic["client"], contact_id=2**31
            )
    assert (no_client["code"], no_client["field"]) == ("validation_error", "client_id")
    assert (no_body["code"], no_body["field"]) == ("validation_error", "body")
    assert (no_conversation["code"], no_conversation["field"]) == ("validation_error", "conversation_id")
    assert too_big["code"] == big_contact["code"] == "validation_error"
    assert route.call_count == 0
    assert count(server, CsExternalRef) == 0


# ------------------------------------------------------------ first response (issue 7, finding 5)

CREATED = 1_780_000_000  # 2026-05-28 20:26:40 UTC: a normal ticket's 4 h target runs past that day's end


class _SpecResponse:
    """An `httpx.Response` seen through openapi-core's response protocol (to check our fake answers)."""

    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = "application/json"
        self.headers = Headers(dict(response.headers))


def _statistics_fields() -> set[str]:
    """The property names Intercom documents for `conversation_statistics`."""
    schemas = sv.load(sv.INTERCOM).spec / "components" / "schemas"
    return set((schemas / "conversation_statistics" / "properties").keys())


def _conversation(cid: str, statistics: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "conversation",
        "id": cid,
        "title": "Export broken",
        "created_at": CREATED,
        "updated_at": CREATED + 600,
        "state": "open",
        "priority": "not_priority",
        "source": {"subject": "Export broken", "body": "<p>CSV export fails</p>"},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "6002"}]},
        "statistics": statistics,
    }


async def _map_bob(ic: dict[str, Any]) -> None:
    """push_contacts for bob: Intercom finds him as contact 6002 and the mapping is stored."""
    with respx.mock(assert_all_called=True) as mock:
        mock.post(f"{API}/contacts/search").mock(side_effect=search_answer)
        mock.put(f"{API}/contacts/6002").respond(200, json={"type": "contact", "id": "6002"})
        pushed = await tool(
            ic["server"], action="push_contacts", client_id=ic["client"], contact_id=ic["bob"]
        )
    assert not pushed.is_error, pushed.content


async def _import(ic: dict[str, Any], conversations: list[dict[str, Any]]) -> Any:
    """Import one page of `conversations` (an answer checked against Intercom's description too)."""
    await _map_bob(ic)
    answer = httpx.Response(
        200, json={"type": "conversation.list", "conversations": conversations, "pages": {"type": "pages"}}
    )
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(f"{API}/conversations").mock(return_value=answer)
        result = await tool(ic["server"], action="import_conversations")
    assert sv.validate_all(sv.INTERCOM, route.calls) == 1
    sv.load(sv.INTERCOM).validate_response(
        sv.HttpxOpenAPIRequest(route.calls[0].request), _SpecResponse(answer)
    )
    return result


async def test_imported_reply_time_feeds_first_response_sla(ic):
    # Answered 5 minutes after it was opened: Intercom reports the first admin reply in `statistics`.
    answered = {
        "type": "conversation_statistics",
        "first_contact_reply_at": CREATED,
        "first_admin_reply_at": CREATED + 300,
        "time_to_admin_reply": 300,
    }
    # Not answered yet (statistics may be null): unanswered, not a reply time of zero.
    assert set(answered) <= _statistics_fields()
    result = await _import(ic, [_conversation("201", answered), _conversation("202", None)])
    assert [i["status"] for i in result.structured_content["items"]] == ["imported", "imported"]
    async with connect(ic["server"]) as client:
        same_day = await call_ok(client, "analyze_support_performance", as_of="2026-05-28")
        next_day = await call_ok(client, "analyze_support_performance", as_of="2026-05-29")
    # Same day: 201 met its 4 h target (5 min); 202 is 3 h 33 min old at the day's end, still pending.
    assert same_day["first_response"] == {"tickets": 1, "median_min": 5.0, "p90_min": 5.0}
    assert same_day["sla"][0]["first_response"] == [1, 0, 1]
    assert same_day["first_response_compliance"] == 100.0
    # A day later 202 is past its target with no reply: breached.
    assert next_day["sla"][0]["first_response"] == [1, 1, 0]
    assert next_day["first_response_compliance"] == 50.0
    with ic["server"].runtime.db.session() as s:
        replies = {t.external_id: t.first_response_at for t in s.exec(select(CsTicket))}
    assert replies == {"201": datetime.fromtimestamp(CREATED + 300, UTC), "202": None}


async def test_a_reply_time_that_is_not_a_time_stores_nothing(ic):
    broken = {"type": "conversation_statistics", "first_admin_reply_at": "soon"}
    server = ic["server"]
    answer = {"type": "conversation.list", "conversations": [_conversation("203", broken)], "pages": {}}
    await _map_bob(ic)
    with respx.mock() as mock:
        mock.get(f"{API}/conversations").respond(200, json=answer)
        result = await tool(server, action="import_conversations")
    err = error_of(result)
    assert (err["code"], err["outcome"]) == ("integration_unavailable", "failed")
    assert "first_admin_reply_at" in err["message"]
    assert count(server, CsTicket) == 0
