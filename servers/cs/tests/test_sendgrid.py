"""send_personalized_email (and its preview) through the protocol, with SendGrid faked at the network edge.

Every request is validated against SendGrid's published Mail Send description (OpenAPI 3.1), and every
failure path (no credential, 401, 429, 500, timeout, 2xx without a message id) is checked by counting rows.
"""

from __future__ import annotations

import json
from datetime import date
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
from factories import add_client, add_contact, at
from sqlmodel import select

from revops_core.clock import FakeClock
from revops_core.testing import call_error, call_ok, connect, error_of, override_vendor
from revops_core.vault import Vault
from revops_cs.models.communication import CsEmailMessage
from revops_cs.models.health import CsHealthSnapshot

pytestmark = pytest.mark.anyio
API_KEY = "SG.secret-key-value"
SEND_URL = "https://api.sendgrid.com/v3/mail/send"


@pytest.fixture
def settings(make_settings):
    return steady_settings(make_settings)


def configure(server: Any, settings: Any) -> FakeClock:
    Vault(server.runtime.db, settings).set(
        "sendgrid", "default", {"api_key": API_KEY, "from_email": "cs@vendor.test"}
    )
    clock = FakeClock()
    override_vendor(server, "sendgrid", clock=clock)
    return clock


@pytest.fixture
def acme(cs_server) -> dict[str, int]:
    """A client with two subscribed contacts and one unsubscribed, plus a health snapshot."""
    with cs_server.runtime.db.session(write=True) as s:
        c = add_client(s, "Acme", owner="Dana CSM", renewal_date=date(2027, 3, 1))
        a = add_contact(s, c, "ann@acme.test", first_name="Ann", last_name="Lee")
        b = add_contact(s, c, "bob@acme.test", first_name="Bob")
        u = add_contact(s, c, "gone@acme.test", first_name="Gus", unsubscribed_at=at("2026-01-01"))
        s.add(
            CsHealthSnapshot(
                client_id=c.id,
                as_of=date(2026, 6, 1),
                score=72.4,
                band="yellow",
                components="{}",
                weights="{}",
                inputs_hash="x",
            )
        )
        return {"client": c.id, "ann": a.id, "bob": b.id, "gone": u.id}


def accepted(msg_id: str = "sg-msg-1") -> httpx.Response:
    return httpx.Response(202, headers={"X-Message-Id": msg_id})


async def call(server: Any, **args: Any) -> Any:
    async with connect(server) as client:
        return await client.call_tool("send_personalized_email", args)


def outcome(answer: Any) -> dict[str, Any]:
    """The outcome of a send that needed no plan (one recipient, or nothing left to send)."""
    assert not answer.is_error, answer.content
    out = answer.structured_content
    assert (out["status"], out["plan_id"], out["plan"]) == ("done", None, None)
    return dict(out["result"])


ONE = "Hi {{first_name}}, {{client_name}} renews on {{renewal_date}}. Health: {{health_band}}. {{csm}}"


async def test_one_contact_is_emailed_in_the_documented_shape(cs_server, settings, acme):
    configure(cs_server, settings)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(SEND_URL).mock(return_value=accepted("abc123"))
        answer = await call(
            cs_server,
            client_ids=[acme["client"]],
            contact_ids=[acme["ann"]],
            subject="For {{client_name}}",
            body=ONE,
        )
    out = outcome(answer)
    assert [r["status"] for r in out["recipients"]] == ["accepted"]
    assert out["body"] == "Hi Ann, Acme renews on 2027-03-01. Health: yellow. Dana CSM"
    assert sv.validate_all(sv.SENDGRID, route.calls) == 1
    sent = json.loads(route.calls[0].request.content)
    assert sent["personalizations"][0]["to"] == [{"email": "ann@acme.test", "name": "Ann Lee"}]
    assert sent["from"] == {"email": "cs@vendor.test"}
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {API_KEY}"
    with cs_server.runtime.db.session() as s:
        row = s.exec(select(CsEmailMessage)).one()
    assert (row.status, row.provider_message_id, row.email, row.subject) == (
        "accepted",
        "abc123",
        "ann@acme.test",
        "For Acme",
    )


async def test_validator_rejects_a_malformed_request():
    # Without this, a validator that accepts everything would make the shape tests meaningless.
    no_from = httpx.Request(
        "POST", SEND_URL, headers={"Authorization": "Bearer x"}, json={"personalizations": [{"to": []}]}
    )
    with pytest.raises(Exception, match=r"(?i)body|from"):
        sv.validate(sv.SENDGRID, no_from)
    wrong_path = httpx.Request("POST", "https://api.sendgrid.com/v3/mail/sendx", json={})
    with pytest.raises(Exception):  # noqa: B017 — any openapi-core error: the path is not in the spec
        sv.validate(sv.SENDGRID, wrong_path)


async def test_unknown_variable_and_missing_data_are_validation_errors(cs_server, settings, acme):
    configure(cs_server, settings)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(return_value=accepted())
        unknown = await call(cs_server, client_ids=[acme["client"]], subject="x", body="Hi {{nickname}}")
        missing = await call(
            cs_server,
            client_ids=[acme["client"]],
            contact_ids=[acme["bob"]],
            subject="x",
            body="{{last_name}}",
        )
    assert (error_of(unknown)["code"], error_of(unknown)["field"]) == ("validation_error", "nickname")
    assert (error_of(missing)["code"], error_of(missing)["field"]) == ("validation_error", "last_name")
    assert route.call_count == 0
    assert count(cs_server, CsEmailMessage) == 0


async def test_no_credential_names_the_vault_command_and_stores_nothing(cs_server, acme):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(return_value=accepted())
        result = await call(
            cs_server, client_ids=[acme["client"]], contact_ids=[acme["ann"]], subject="s", body="b"
        )
    err = error_of(result)
    assert err["code"] == "configuration_error"
    assert "revops vault set sendgrid api_key=" in err["hint"]
    assert route.call_count == 0
    assert count(cs_server, CsEmailMessage) == 0


async def test_many_recipients_need_a_confirmed_plan_and_skip_unsubscribed(cs_server, settings, acme):
    configure(cs_server, settings)
    args = {
        "client_ids": [acme["client"]],
        "subject": "News for {{client_name}}",
        "body": "Hello {{first_name}}",
    }
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(side_effect=[accepted("m1"), accepted("m2")])
        planned = await call(cs_server, **args)
        assert route.call_count == 0
        assert count(cs_server, CsEmailMessage) == 0
        assert planned.structured_content["status"] == "planned"
        assert planned.structured_content["result"] is None
        plan = planned.structured_content["plan"]
        assert plan["affected_count"] == 2
        done = await call(cs_server, **args, confirm=plan["plan_id"])
    assert done.structured_content["status"] == "done"
    out = done.structured_content["result"]
    statuses = {r["email"]: r["status"] for r in out["recipients"]}
    assert statuses == {
        "ann@acme.test": "accepted",
        "bob@acme.test": "accepted",
        "gone@acme.test": "unsubscribed",
    }
    assert sv.validate_all(sv.SENDGRID, route.calls) == 2
    assert count(cs_server, CsEmailMessage) == 2


async def test_preview_renders_and_sends_nothing(cs_server, settings, acme):
    configure(cs_server, settings)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(return_value=accepted())
        async with connect(cs_server) as client:
            out = await call_ok(
                client,
                "preview_personalized_email",
                client_ids=[acme["client"]],
                subject="s",
                body="{{first_name}}",
            )
    assert out["note"] == "Preview: nothing sent."
    assert out["body"] == "Ann"
    assert sorted(r["status"] for r in out["recipients"]) == ["preview", "preview", "unsubscribed"]
    assert route.call_count == 0
    assert count(cs_server, CsEmailMessage) == 0


async def test_preview_works_on_a_read_only_server_without_a_credential(make_settings, acme, cs_server):
    from revops_cs.server import create_server

    readonly = create_server(make_settings(read_only=True))
    try:
        async with connect(readonly) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            out = await call_ok(
                client, "preview_personalized_email", client_ids=[acme["client"]], subject="s", body="b"
            )
    finally:
        readonly.runtime.db.dispose()
    assert {"preview_personalized_email", "get_email_stats"} <= names
    assert "send_personalized_email" not in names
    assert len(out["recipients"]) == 3


async def test_ids_beyond_postgres_integer_are_validation_errors(cs_server, acme):
    async with connect(cs_server) as client:
        for tool in ("send_personalized_email", "preview_personalized_email"):
            err = await call_error(client, tool, client_ids=[2**31], subject="s", body="b")
            assert err["code"] == "validation_error", err
            err = await call_error(
                client, tool, client_ids=[acme["client"]], contact_ids=[2**31], subject="s", body="b"
            )
            assert err["code"] == "validation_error", err
        err = await call_error(client, "get_email_stats", client_ids=[2**31])
    assert err["code"] == "validation_error"
    assert count(cs_server, CsEmailMessage) == 0


async def test_a_repeated_call_does_not_send_twice(cs_server, settings, acme):
    configure(cs_server, settings)
    args = {"client_ids": [acme["client"]], "contact_ids": [acme["ann"]], "subject": "s", "body": "b"}
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(return_value=accepted())
        await call(cs_server, **args)
        again = await call(cs_server, **args)
    assert route.call_count == 1
    assert [r["status"] for r in outcome(again)["recipients"]] == ["already_sent"]
    assert count(cs_server, CsEmailMessage) == 1


@pytest.mark.parametrize(
    ("kind", "code"),
    [("401", "integration_auth"), ("500", "integration_unavailable"), ("400", "validation_error")],
)
async def test_failed_sends_store_nothing(cs_server, settings, acme, kind, code):
    configure(cs_server, settings)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(side_effect=[_fail(kind)] * 5)
        result = await call(
            cs_server, client_ids=[acme["client"]], contact_ids=[acme["ann"]], subject="s", body="b"
        )
    err = error_of(result)
    assert (err["code"], err["outcome"]) == (code, "failed")
    assert route.call_count == 1  # a send is never resent blindly
    assert API_KEY not in result.content[0].text
    assert count(cs_server, CsEmailMessage) == 0


async def test_timeout_is_recorded_as_unknown_and_never_resent(cs_server, settings, acme):
    configure(cs_server, settings)
    args = {"client_ids": [acme["client"]], "contact_ids": [acme["ann"]], "subject": "s", "body": "b"}
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(side_effect=[_fail("timeout"), accepted()])
        first = await call(cs_server, **args)
        retry = await call(cs_server, **args)
    assert [r["status"] for r in outcome(first)["recipients"]] == ["unknown"]
    assert "not resent" in outcome(first)["note"]
    assert [r["status"] for r in outcome(retry)["recipients"]] == ["already_sent"]
    assert route.call_count == 1
    with cs_server.runtime.db.session() as s:
        assert s.exec(select(CsEmailMessage.status)).all() == ["unknown"]


async def test_accepted_without_message_id_is_unknown(cs_server, settings, acme):
    configure(cs_server, settings)
    with respx.mock(assert_all_called=False) as mock:
        mock.post(SEND_URL).mock(return_value=httpx.Response(202))
        answer = await call(
            cs_server, client_ids=[acme["client"]], contact_ids=[acme["ann"]], subject="s", body="b"
        )
    assert [r["status"] for r in outcome(answer)["recipients"]] == ["unknown"]
    assert count(cs_server, CsEmailMessage) == 1


async def test_rate_limit_retry_after_is_honoured(cs_server, settings, acme):
    clock = configure(cs_server, settings)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(SEND_URL).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), accepted()]
        )
        answer = await call(
            cs_server, client_ids=[acme["client"]], contact_ids=[acme["ann"]], subject="s", body="b"
        )
    assert [r["status"] for r in outcome(answer)["recipients"]] == ["accepted"]
    assert route.call_count == 2
    assert 7.0 in clock.sleeps
    assert count(cs_server, CsEmailMessage) == 1
