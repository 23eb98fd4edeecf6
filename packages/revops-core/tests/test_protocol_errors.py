"""A client's mistakes are JSON-RPC errors (-32602), never tool results or crashes; crashes stay visible.

Through `mcp.Client` against real servers, in both protocol eras, with the servers' own JSON logs
(`configure_logging`) captured: a client mistake must leave no traceback and no error-level line.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import structlog
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import BaseModel, Field

from revops_core.errors import IntegrationUnavailable, NotFound
from revops_core.logs import configure_logging
from revops_core.models import CoreCompany
from revops_core.server import Call, RevOpsServer, Runtime, Toolset, build_server
from revops_core.testing import connect, count_rows, error_of

pytestmark = pytest.mark.anyio


class JsonLogs:
    """The servers' JSON log lines, as written to stderr in production."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def tracebacks(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if "exception" in line or line.get("level") == "error"]


@pytest.fixture
def json_logs() -> Iterator[JsonLogs]:
    """Route structlog and the standard library to a buffer at DEBUG; restore both afterwards."""
    logs = JsonLogs()
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG", stream=logs.stream)
    try:
        yield logs
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


class Renamed(BaseModel):
    account_id: int = Field(description="Id of the renamed account.")


def _extras_toolset() -> Toolset:
    """A prompt and resources that fail the ways real ones do: a missing record, a vendor, a bug."""
    ts = Toolset("demo", "prompts and resources that fail")

    @ts.tool(tier="write", idempotent=False)
    def rename_account(
        call: Call, account_id: Annotated[int, Field(ge=1, le=2**31 - 1, description="Account id.")]
    ) -> Renamed:
        """Rename an account (fails: every way a client can get it wrong)."""
        call.db.add(CoreCompany(name="written before failing"))
        call.db.flush()
        if account_id == 7:
            raise MCPError(code=INVALID_PARAMS, message="Account 7 needs the caller to sign in first.")
        raise NotFound(f"No account with id {account_id}.")

    @ts.register
    def extras(mcp: Any, runtime: Runtime) -> None:
        @mcp.prompt(description="Brief one account.")
        def account_brief(account_id: str) -> str:
            if account_id == "crash":
                raise RuntimeError("secret internals")
            if account_id == "vendor":
                raise IntegrationUnavailable("The CRM did not answer.")
            raise NotFound(f"No account with id {account_id}.", hint="List the accounts first.")

        @mcp.resource("demo://accounts/{account_id}", mime_type="application/json", description="An account.")
        def account(account_id: str) -> str:
            if account_id == "crash":
                raise RuntimeError("secret internals")
            raise NotFound(f"No account with id {account_id}.")

    return ts


@pytest.fixture
def demo(settings) -> RevOpsServer:
    return build_server("t", [_extras_toolset()], settings=settings)


async def _protocol_error(call: Any) -> MCPError:
    with pytest.raises(MCPError) as info:
        await call
    return info.value


async def test_unknown_tool_is_invalid_params_naming_the_tool(demo, json_logs, protocol_mode):
    async with connect(demo, protocol_mode) as client:
        err = await _protocol_error(client.call_tool("no_such_tool", {}))
    assert err.code == INVALID_PARAMS
    assert "no_such_tool" in err.message
    assert err.data == {"name": "no_such_tool"}
    assert json_logs.tracebacks() == []


async def test_tool_mistakes_are_error_results_without_traceback(demo, json_logs, protocol_mode):
    async with connect(demo, protocol_mode) as client:
        bad_arguments = await client.call_tool("rename_account", {"account_id": 2**31})
        missing = await client.call_tool("rename_account", {"account_id": 42})
    assert error_of(bad_arguments)["code"] == "validation_error"
    assert error_of(missing)["code"] == "not_found"
    assert json_logs.tracebacks() == []


async def test_protocol_error_raised_by_a_tool_passes_through_and_rolls_back(demo, json_logs):
    async with connect(demo) as client:
        err = await _protocol_error(client.call_tool("rename_account", {"account_id": 7}))
    assert (err.code, err.message) == (INVALID_PARAMS, "Account 7 needs the caller to sign in first.")
    assert count_rows(demo.runtime.db, CoreCompany) == 0
    assert json_logs.tracebacks() == []


async def test_unknown_prompt_is_invalid_params(demo, json_logs, protocol_mode):
    async with connect(demo, protocol_mode) as client:
        err = await _protocol_error(client.get_prompt("no_such_prompt", {}))
    assert (err.code, err.message) == (INVALID_PARAMS, "Unknown prompt: no_such_prompt")
    assert json_logs.tracebacks() == []


async def test_missing_prompt_argument_is_invalid_params_naming_it(demo, json_logs, protocol_mode):
    async with connect(demo, protocol_mode) as client:
        err = await _protocol_error(client.get_prompt("account_brief", {}))
    assert err.code == INVALID_PARAMS
    assert err.data == {"name": "account_brief", "missing": ["account_id"]}
    assert json_logs.tracebacks() == []


async def test_prompt_for_a_missing_record_is_invalid_params(demo, json_logs, protocol_mode):
    async with connect(demo, protocol_mode) as client:
        err = await _protocol_error(client.get_prompt("account_brief", {"account_id": "42"}))
    assert (err.code, err.message) == (INVALID_PARAMS, "No account with id 42.")
    assert err.data["revops/error"]["code"] == "not_found"
    assert err.data["revops/error"]["hint"] == "List the accounts first."
    assert json_logs.tracebacks() == []


async def test_prompt_failing_on_a_vendor_is_internal_error_without_traceback(demo, json_logs):
    async with connect(demo) as client:
        err = await _protocol_error(client.get_prompt("account_brief", {"account_id": "vendor"}))
    assert (err.code, err.message) == (INTERNAL_ERROR, "The CRM did not answer.")
    assert err.data["revops/error"]["code"] == "integration_unavailable"
    assert json_logs.tracebacks() == []


async def test_resource_raising_not_found_is_invalid_params_with_the_uri(demo, json_logs, protocol_mode):
    uri = "demo://accounts/42"
    async with connect(demo, protocol_mode) as client:
        err = await _protocol_error(client.read_resource(uri))
    assert err.code == INVALID_PARAMS
    assert err.data["uri"] == uri
    assert err.data["revops/error"]["code"] == "not_found"
    assert json_logs.tracebacks() == []


async def test_unknown_resource_is_invalid_params_with_the_uri(demo, json_logs, protocol_mode):
    async with connect(demo, protocol_mode) as client:
        err = await _protocol_error(client.read_resource("demo://nothing/1"))
    assert (err.code, err.data) == (INVALID_PARAMS, {"uri": "demo://nothing/1"})
    assert json_logs.tracebacks() == []


@pytest.mark.parametrize("method", ["prompt", "resource"])
async def test_a_crash_is_internal_error_logged_once_with_its_traceback(demo, json_logs, method):
    async with connect(demo) as client:
        if method == "prompt":
            err = await _protocol_error(client.get_prompt("account_brief", {"account_id": "crash"}))
        else:
            err = await _protocol_error(client.read_resource("demo://accounts/crash"))
    assert err.code == INTERNAL_ERROR
    assert "secret internals" not in err.message  # no internals reach the client
    logged = json_logs.tracebacks()
    assert len(logged) == 1
    assert "RuntimeError: secret internals" in logged[0]["exception"]


# --------------------------------------------------------------------------- the CS server's own resources


@pytest.mark.parametrize("client_ref", ["999999", "abc", str(2**31)])
async def test_cs_resource_of_a_missing_client_is_invalid_params_with_the_uri(
    settings, json_logs, protocol_mode, client_ref
):
    from revops_cs.server import create_server

    uri = f"cs://clients/{client_ref}"
    async with connect(create_server(settings), protocol_mode) as client:
        err = await _protocol_error(client.read_resource(uri))
        prompt_err = await _protocol_error(client.get_prompt("qbr_preparation", {"client_id": "999999"}))
    assert err.code == INVALID_PARAMS
    assert err.data["uri"] == uri
    assert client_ref in err.message
    assert prompt_err.code == INVALID_PARAMS
    assert json_logs.tracebacks() == []
