"""Protocol-level answers every server gives whatever its toolsets.

Two jobs: the methods every server answers (`logging/setLevel`, `completion/complete`), and the
mapping of a client's mistakes to JSON-RPC errors (`unknown_tool`, `unknown_prompt`, `protocol_error`).

Clients (and the official conformance suite) send these to any server that advertises them, and a
server that lacks them answers "method not found". Installing them here keeps the three servers alike:

- `logging/setLevel` records the level the client asked for in `runtime.state["client_log_level"]`.
  Our servers write their logs to stderr (never to the client), so there is nothing else to filter;
  the answer is the empty result the spec requires.
- `completion/complete` gets a default that answers "no suggestions" (an empty list). A toolset that
  offers real completions registers its own handler with `@mcp.completion()` in its extras, which
  replaces this default — so `install` must run *before* toolset extras are registered.

Handlers are registered on the low-level server directly (not via the deprecated `on_set_logging_level`
constructor argument), so no deprecation warning is raised.

Client mistakes are protocol errors, not crashes: an unknown tool or prompt, a missing prompt argument,
or a prompt/resource whose record does not exist answers -32602 (INVALID_PARAMS; for resources with
`data.uri`, SEP-2164) and is logged at INFO without a traceback. Only an exception outside our error
tree is a crash: logged once with its traceback, answered -32603 with a correlation id and no internals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmptyResult,
    SetLevelRequestParams,
)

from revops_core.errors import NotFound, RevOpsError, ValidationFailed
from revops_core.logs import get_logger, new_correlation_id

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from revops_core.server import Runtime

CLIENT_LOG_LEVEL = "client_log_level"
ERROR_KEY = "revops/error"
"""Where the structured error (code, message, hint) rides: tool results' `_meta`, errors' `data`."""
CLIENT_MISTAKES: tuple[type[RevOpsError], ...] = (NotFound, ValidationFailed)
"""Errors that mean the request named something that does not exist or is malformed: -32602."""

log = get_logger("revops.protocol")


def install(mcp: MCPServer, runtime: Runtime) -> None:
    """Register the default `logging/setLevel` and `completion/complete` handlers on `mcp`."""
    lowlevel = mcp._lowlevel_server  # the public MCPServer API offers no way to add a request handler

    async def set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
        runtime.state[CLIENT_LOG_LEVEL] = params.level
        return EmptyResult()

    async def complete(ctx: Any, params: CompleteRequestParams) -> CompleteResult:
        return CompleteResult(completion=Completion(values=[], total=0, has_more=False))

    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    lowlevel.add_request_handler("completion/complete", CompleteRequestParams, complete)


# --------------------------------------------------------------------------- client mistakes


def unknown_tool(name: str) -> MCPError:
    """`tools/call` of a tool this server does not list: a protocol error (spec), not a tool result."""
    log.info("unknown_tool", tool=name)
    return MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}", data={"name": name})


def unknown_prompt(name: str) -> MCPError:
    log.info("unknown_prompt", prompt=name)
    return MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}", data={"name": name})


def missing_prompt_arguments(name: str, missing: list[str]) -> MCPError:
    log.info("prompt_arguments_missing", prompt=name, missing=missing)
    return MCPError(
        code=INVALID_PARAMS,
        message=f"Prompt {name} needs the argument(s): {', '.join(missing)}",
        data={"name": name, "missing": missing},
    )


def revops_error_in(exc: BaseException) -> RevOpsError | None:
    """The first `RevOpsError` in the exception's chain (the SDK wraps what a handler raised)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RevOpsError):
            return current
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return None


def protocol_error(
    exc: BaseException, what: str, data: dict[str, Any], message: str | None = None
) -> MCPError:
    """The JSON-RPC error for a failed prompt or resource read, logged once at the right level.

    A client mistake in our error tree answers -32602 and logs no traceback; another `RevOpsError`
    (an integration down, say) answers -32603 with its safe message; anything else is a crash.
    """
    err = revops_error_in(exc)
    if err is None:
        cid = new_correlation_id()
        log.error("handler_crashed", handler=what, exc_info=exc)
        return MCPError(
            code=INTERNAL_ERROR, message=f"Unexpected error in {what} (correlation id {cid}).", data=data
        )
    code = INVALID_PARAMS if isinstance(err, CLIENT_MISTAKES) else INTERNAL_ERROR
    log.info("protocol_error", handler=what, code=err.code, message=err.message)
    return MCPError(code=code, message=message or err.message, data={**data, ERROR_KEY: err.to_dict()})
