"""`query_audit_log`: this server's tool calls for the caller's tenant, filtered and paged."""

from __future__ import annotations

import pytest

from revops_core.audit import append
from revops_core.testing import call_error, call_ok, connect

pytestmark = pytest.mark.anyio


async def test_the_audit_log_shows_this_servers_calls_for_this_tenant_only(sales_server) -> None:
    with sales_server.runtime.db.session() as session, session.begin():
        append(session, actor="ops", action="vault.decrypt", target=None, details={})  # not a tool call
        append(session, actor="ops", action="sales.create_company", target="x", details={}, tenant="other")
        # the prefix is "sales." with its dot: another server whose name starts alike is not ours
        append(session, actor="ops", action="salesforce.create_company", target="y", details={})
    async with connect(sales_server) as client:
        first = await call_ok(client, "create_company", name="Acme")
        await call_ok(client, "create_company", name="Globex")
        await call_ok(client, "update_company", company_id=first["id"], industry="Retail")
        everything = await call_ok(client, "query_audit_log")
        created = await call_ok(client, "query_audit_log", tool_name="create_company", limit=1)
        rest = await call_ok(
            client, "query_audit_log", tool_name="create_company", cursor=created["next_cursor"]
        )
        on_acme = await call_ok(client, "query_audit_log", target=f"core_company:{first['id']}")
        later = await call_ok(client, "query_audit_log", since="2999-01-01T00:00:00Z")
        naive = await call_error(client, "query_audit_log", since="2026-01-01T00:00:00")
        bad_tool = await call_error(client, "query_audit_log", tool_name="sales.create_company")
    assert [e["action"] for e in everything["items"]] == [
        "sales.create_company",
        "sales.create_company",
        "sales.update_company",
    ]
    assert everything["total"] == 3
    assert {e["tenant"] for e in everything["items"]} == {"default"}
    assert (created["total"], len(created["items"]), len(rest["items"])) == (2, 1, 1)
    assert created["items"][0]["seq"] < rest["items"][0]["seq"]
    assert [e["action"] for e in on_acme["items"]] == ["sales.create_company", "sales.update_company"]
    assert (later["items"], later["total"]) == ([], 0)
    assert (naive["code"], naive["field"]) == ("validation_error", "since")
    assert (bad_tool["code"], bad_tool["field"]) == ("validation_error", "tool_name")
