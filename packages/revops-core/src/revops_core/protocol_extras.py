"""Protocol methods every server answers whatever its toolsets: `logging/setLevel`, `completion/complete`.

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp.types import CompleteRequestParams, CompleteResult, Completion, EmptyResult, SetLevelRequestParams

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from revops_core.server import Runtime

CLIENT_LOG_LEVEL = "client_log_level"


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
