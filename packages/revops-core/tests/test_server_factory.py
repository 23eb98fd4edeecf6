"""The server factory through the protocol: structured results, errors, roles, audit in-transaction."""

from __future__ import annotations

from typing import Annotated

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import select

from revops_core.audit import AuditEntry
from revops_core.errors import NotFound
from revops_core.models import CoreCompany
from revops_core.server import Call, Toolset, build_server
from revops_core.testing import connect, error_of

pytestmark = pytest.mark.anyio


class Created(BaseModel):
    company_id: int = Field(description="Id of the new company.")


class Counted(BaseModel):
    companies: int = Field(description="Number of companies.")


def _toolset(fail_after_write: bool = False) -> Toolset:
    ts = Toolset("demo", "test tools")

    @ts.tool(tier="write", idempotent=False)
    def add_company(
        call: Call, name: Annotated[str, Field(min_length=1, max_length=50, description="Company name.")]
    ) -> Created:
        """Add a company."""
        company = CoreCompany(name=name)
        call.db.add(company)
        call.db.flush()
        call.target = f"core_company:{company.id}"
        if fail_after_write:
            raise NotFound("simulated failure after the write")
        return Created(company_id=company.id or 0)

    @ts.tool(tier="read")
    def count_companies(call: Call) -> Counted:
        """Count companies."""
        return Counted(companies=call.db.exec(select(func.count()).select_from(CoreCompany)).one())

    return ts


async def test_write_is_audited_in_the_same_transaction(settings, protocol_mode):
    server = build_server("t", [_toolset()], settings=settings)
    async with connect(server, protocol_mode) as client:
        result = await client.call_tool("add_company", {"name": "Acme"})
        assert not result.is_error
        assert result.structured_content["company_id"] >= 1
        counted = await client.call_tool("count_companies", {})
        assert counted.structured_content == {"companies": 1}
    with server.runtime.db.session() as s:
        entries = list(s.exec(select(AuditEntry)))
    assert [e.action for e in entries] == ["t.add_company"]
    assert entries[0].target == f"core_company:{result.structured_content['company_id']}"


async def test_failed_write_rolls_back_change_and_audit(settings):
    server = build_server("t", [_toolset(fail_after_write=True)], settings=settings)
    async with connect(server) as client:
        result = await client.call_tool("add_company", {"name": "Acme"})
    assert error_of(result)["code"] == "not_found"
    assert "Next step:" in result.content[0].text
    with server.runtime.db.session() as s:
        assert s.exec(select(func.count()).select_from(CoreCompany)).one() == 0
        assert s.exec(select(func.count()).select_from(AuditEntry)).one() == 0


async def test_viewer_cannot_call_write_tool(make_settings):
    server = build_server("t", [_toolset()], settings=make_settings(role="viewer"))
    async with connect(server) as client:
        result = await client.call_tool("add_company", {"name": "Acme"})
    assert error_of(result)["code"] == "permission_denied"


async def test_read_only_mode_lists_only_read_tools(make_settings):
    server = build_server("t", [_toolset()], settings=make_settings(read_only=True))
    async with connect(server) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["count_companies"]


async def test_bad_arguments_are_rejected_naming_the_field(settings):
    server = build_server("t", [_toolset()], settings=settings)
    async with connect(server) as client:
        result = await client.call_tool("add_company", {"name": ""})
    assert result.is_error
    assert "name" in result.content[0].text


async def test_schema_violations_are_structured_validation_errors(settings, protocol_mode):
    server = build_server("t", [_toolset()], settings=settings)
    async with connect(server, protocol_mode) as client:
        result = await client.call_tool("add_company", {"name": "x" * 51})
    err = error_of(result)
    assert err["code"] == "validation_error"
    assert err["field"] == "name"
    assert "x" * 51 not in result.content[0].text  # the rejected value is not echoed


async def test_unknown_tool_is_an_invalid_params_protocol_error(settings, protocol_mode):
    # The spec: an unknown tool is a JSON-RPC error (-32602), not an isError tool result.
    server = build_server("t", [_toolset()], settings=settings)
    async with connect(server, protocol_mode) as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("no_such_tool", {})
    assert info.value.code == INVALID_PARAMS
    assert "no_such_tool" in info.value.message


async def test_the_decorator_names_the_audit_target_from_the_arguments(settings):
    ts = Toolset("demo", "test tools")

    @ts.tool(tier="write", idempotent=True, title="Rename", target="core_company:{company_id}")
    def rename_company(
        call: Call,
        company_id: Annotated[int, Field(ge=1, description="Company id.")],
        name: Annotated[str | None, Field(max_length=50, description="New name.")] = None,
        region: Annotated[str | None, Field(max_length=50, description="Unused here.")] = None,
    ) -> Counted:
        """Rename a company (the body never sets call.target)."""
        return Counted(companies=company_id)

    @ts.tool(tier="write", idempotent=True, title="Tag", target="core_company:{region}")
    def tag_region(
        call: Call, region: Annotated[str | None, Field(max_length=50, description="Region.")] = None
    ) -> Counted:
        """A template naming an argument that was not given leaves the target empty."""
        return Counted(companies=0)

    server = build_server("t", [ts], settings=settings)
    async with connect(server) as client:
        assert not (await client.call_tool("rename_company", {"company_id": 7, "name": "X"})).is_error
        assert not (await client.call_tool("tag_region", {})).is_error
    with server.runtime.db.session() as s:
        targets = [e.target for e in s.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()]
    server.runtime.db.dispose()
    assert targets == ["core_company:7", None]
