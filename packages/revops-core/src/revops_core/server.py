"""`build_server()`: one MCP server from toolsets, with the suite's conventions wired in.

Every tool goes through `_wrap`, which
  1. resolves the actor and role (stdio: configured local user; HTTP: the bearer key),
  2. refuses what the role or `--read-only` forbids,
  3. runs the tool body with a `Call` (one database transaction; writes use BEGIN IMMEDIATE),
  4. appends the audit entry for every write *in that same transaction*, then commits,
  5. maps `RevOpsError` (and anything unexpected) to an `isError` result with code and hint; an
     `MCPError` the body raises on purpose passes through as the protocol error it is,
  6. counts the call and its latency.

Tool bodies are plain functions `def tool(call: Call, <params>) -> Model`. Synchronous bodies run in a
worker thread (SQLite and hashing never block the event loop); `async def` bodies run on the loop
and use `await call.in_thread(fn)` for database work.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
    UnexpectedResourceError,
)
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ValidationError as PydanticValidationError

from revops_core import protocol_extras
from revops_core.errors import DatabaseBusy, InternalError, PermissionDenied, RevOpsError, ValidationFailed
from revops_core.logs import correlation_id, get_logger, new_correlation_id, redact
from revops_core.settings import ROLE_RANK, Role, Settings, get_settings

if TYPE_CHECKING:
    # Imported lazily at run time: SQLAlchemy and prometheus cost more to import than the whole
    # handshake, and a deferred server answers `initialize` before it needs them.
    from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
    from sqlmodel import Session

    from revops_core.db import Database
    from revops_core.metrics import Metrics

Tier = Literal["read", "write", "destructive", "critical"]
TIER_ROLE: dict[str, Role] = {
    "read": "viewer",
    "write": "member",
    "destructive": "member",
    "critical": "admin",
}

log = get_logger("revops.server")
T = TypeVar("T")


@dataclass(frozen=True)
class ToolDef:
    fn: Callable[..., Any]
    name: str
    toolset: str
    tier: Tier
    idempotent: bool
    open_world: bool
    title: str | None
    target: str | None = None  # audit target template, e.g. "cs_client:{client_id}"
    replaces: str | None = None  # the old tool (and action) this one took over, for docs/tools.md

    @property
    def read_only(self) -> bool:
        return self.tier == "read"

    @property
    def annotations(self) -> ToolAnnotations:
        # No annotations.title: the tool's own `title` says it once (it is what current clients
        # show), and every repeated character counts against the tools/list budget.
        # destructiveHint and idempotentHint mean something only when readOnlyHint is false (MCP
        # spec), so a read tool states readOnlyHint and openWorldHint alone.
        if self.read_only:
            return ToolAnnotations(read_only_hint=True, open_world_hint=self.open_world)
        return ToolAnnotations(
            read_only_hint=False,
            destructive_hint=self.tier in ("destructive", "critical"),
            idempotent_hint=self.idempotent,
            open_world_hint=self.open_world,
        )


RegisterExtras = Callable[[MCPServer, "Runtime"], None]


META_TOOLSET = "meta"
"""The toolset every server lists whatever `--toolsets` says (`server_info`)."""
ALL_TOOLSETS = "all"
"""`--toolsets all`: every toolset, the default ones and the others."""


class Toolset:
    """A named group of tools (plus optional resources/prompts registered by `extras`).

    `default=True` toolsets are listed when no `--toolsets` is given; the others only when named
    (or with `--toolsets all`), so a client's default tool list stays within its budget.
    """

    def __init__(self, name: str, description: str, *, default: bool = True) -> None:
        self.name = name
        self.description = description
        self.default = default
        self.tools: list[ToolDef] = []
        self.extras: list[RegisterExtras] = []

    def tool(
        self,
        *,
        tier: Tier,
        idempotent: bool | None = None,
        open_world: bool = False,
        title: str | None = None,
        name: str | None = None,
        target: str | None = None,
        replaces: str | None = None,
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Register a tool. `idempotent` defaults to True for reads and must be stated for writes.

        `target` names the audit entry's target from the arguments (`"cs_client:{client_id}"`); a
        body may still set `call.target` itself (e.g. to an id it just created). `replaces` names
        the old tool/action a renamed or split tool took over (`"handle_support_ticket action=get"`),
        so the tool reference can tell upgrading users where a capability went.
        """
        if idempotent is None:
            if tier != "read":
                raise TypeError("writing tools must state idempotent=True/False explicitly")
            idempotent = True

        def decorator(fn: Callable[..., T]) -> Callable[..., T]:
            self.tools.append(
                ToolDef(
                    fn, name or fn.__name__, self.name, tier, idempotent, open_world, title, target, replaces
                )
            )
            return fn

        return decorator

    def register(self, extras: RegisterExtras) -> RegisterExtras:
        """Register resources, prompts or completions that belong to this toolset."""
        self.extras.append(extras)
        return extras


# --------------------------------------------------------------------------- runtime


class Runtime:
    """What a running server holds: settings, database, metrics, caches. One per server instance."""

    def __init__(self, server_name: str, settings: Settings, db: Database | None = None) -> None:
        self.server_name = server_name
        self.settings = settings
        self._db = db
        self._metrics: Metrics | None = None
        self.started_at = time.time()
        self.state: dict[str, Any] = {}  # per-server caches (vendor clients, breakers)
        # The one test seam for vendors: keyword options (transport, clock…) handed to every client
        # built for that vendor (see `revops_core.vendor_kit` and `revops_core.testing.override_vendor`).
        self.vendor_options: dict[str, dict[str, Any]] = {}

    @property
    def db(self) -> Database:
        if self._db is None:
            from revops_core.db import Database

            self._db = Database(self.settings)
        return self._db

    @db.setter
    def db(self, database: Database) -> None:
        self._db = database

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            from revops_core.metrics import Metrics

            self._metrics = Metrics(self.server_name)
        return self._metrics

    def resolve_actor(self, ctx: Context | None) -> tuple[str, Role]:
        """The caller: a bearer key's owner over HTTP, else the configured local user."""
        headers = request_headers(ctx)
        if headers is None:
            return self.settings.actor, self.settings.role
        return self.resolve_bearer(headers)

    def resolve_bearer(self, headers: typing.Mapping[str, str]) -> tuple[str, Role]:
        """The owner of the request's API key (a database lookup: call from a worker thread)."""
        from revops_core.apikeys import resolve_bearer

        auth = headers.get("authorization") or headers.get("Authorization")
        principal = resolve_bearer(self.db, auth)
        if principal is None:
            raise PermissionDenied("This request carries no valid API key.")
        return principal


def request_headers(ctx: Context | None) -> typing.Mapping[str, str] | None:
    """HTTP request headers, or None over stdio (where the caller is the local user)."""
    if ctx is None:
        return None
    try:
        return ctx.headers
    except (AttributeError, ValueError, LookupError):
        return None


@dataclass
class Call:
    """One tool invocation: who, what, and the transaction it runs in."""

    runtime: Runtime
    tool: ToolDef
    actor: str
    role: Role
    arguments: dict[str, Any]
    ctx: Context | None = None
    target: str | None = None
    audit_details: dict[str, Any] = field(default_factory=dict)
    audit_action: str | None = None
    skip_audit: bool = False  # set when a call changed nothing (a plan, a dry run)
    approval: Any = None  # critical tier: the client's answer to the approval prompt (guards.ApprovalAnswer)
    _session: Session | None = None
    _session_cm: Any = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def db(self) -> Session:
        """The call's transaction (opened on first use; committed by the wrapper)."""
        if self._session is None:
            self._session_cm = self.runtime.db.session(write=not self.tool.read_only)
            self._session = self._session_cm.__enter__()
        return self._session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction beside the call's own, for long computations in a write tool.

        A write tool's transaction takes SQLite's write lock when it opens (BEGIN IMMEDIATE), so a
        tool that reads for seconds before it writes reads here and touches `db` only to store.
        """
        with self.runtime.db.session() as session:
            yield session

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def vendor_options(self, provider: str) -> dict[str, Any]:
        """Extra keyword options for a vendor client (empty in production; set by tests)."""
        return dict(self.runtime.vendor_options.get(provider, {}))

    def no_change(self) -> None:
        """Mark this call as having changed nothing (e.g. it returned a plan); no audit entry."""
        self.skip_audit = True

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress from a synchronous tool body (a worker thread)."""
        if self.ctx is None:
            return
        try:
            anyio.from_thread.run(functools.partial(self.ctx.report_progress, done, total, message))
        except RuntimeError:  # not in a worker thread (e.g. called from the loop): skip, never fail
            return

    def run_async(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run a coroutine function (a vendor call) from a synchronous tool body."""
        return anyio.from_thread.run(fn, *args)

    async def in_thread(self, fn: Callable[[], T]) -> T:
        """Run blocking work (database, hashing) from an async tool body."""
        return await anyio.to_thread.run_sync(fn)

    def _finish(self, ok: bool) -> None:
        if self._session_cm is None:
            if ok and not self.tool.read_only and not self.skip_audit:
                # A write that touched no table still gets its audit entry.
                _ = self.db
            else:
                return
        if ok and not self.tool.read_only and not self.skip_audit:
            from revops_core.audit import append as audit_append

            if self.target is None and self.tool.target is not None:
                self.target = _format_target(self.tool.target, self.arguments)

            audit_append(
                self.db,
                actor=self.actor,
                action=self.audit_action or f"{self.runtime.server_name}.{self.tool.name}",
                target=self.target,
                details={"arguments": redact(self.arguments), **redact(self.audit_details)},
                tenant=self.tenant,
            )
        cm, self._session_cm, self._session = self._session_cm, None, None
        if ok:
            cm.__exit__(None, None, None)
        else:
            cm.__exit__(RuntimeError, RuntimeError("tool failed"), None)


def _format_target(template: str, arguments: dict[str, Any]) -> str | None:
    """The audit target from its template; None when an argument it names was not given."""
    import string

    names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    if any(arguments.get(name) is None for name in names):
        return None
    return template.format(**arguments)


def error_result(err: RevOpsError) -> CallToolResult:
    """The `isError` result a client receives: readable text plus the structured error in `_meta`."""
    return CallToolResult(
        content=[TextContent(type="text", text=err.client_text())],
        is_error=True,
        meta={"revops/error": err.to_dict()},  # the field behind the `_meta` alias
    )


def _wrap(runtime: Runtime, tool: ToolDef) -> Callable[..., Awaitable[Any]]:
    """The function MCPServer registers: the tool's own signature minus `call`, plus `ctx`."""
    hints = typing.get_type_hints(tool.fn, localns={"Call": Call}, include_extras=True)
    sig = inspect.signature(tool.fn)
    sig = sig.replace(
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()],
        return_annotation=hints.get("return", sig.return_annotation),
    )
    params = list(sig.parameters.values())
    if not params or params[0].name != "call":
        raise TypeError(f"tool {tool.name} must take `call: Call` as its first parameter")
    if tool.tier in ("destructive", "critical") and "confirm" not in sig.parameters:
        raise TypeError(f"{tool.tier} tool {tool.name} must accept `confirm` (plan → confirm)")
    public = params[1:]
    is_async = inspect.iscoroutinefunction(tool.fn)
    required_rank = ROLE_RANK[TIER_ROLE[tool.tier]]
    metrics = runtime.metrics
    # Critical tools get a resolver-filled parameter that asks a person to approve (see guards).
    approval_param = None
    if tool.tier == "critical":
        from revops_core.guards import approval_parameter

        approval_param = approval_parameter(runtime, tool)

    async def wrapper(ctx: Context, **kwargs: Any) -> Any:
        cid = new_correlation_id()
        started = time.perf_counter()
        status = "ok"
        call: Call | None = None
        approval = kwargs.pop(approval_param.name, None) if approval_param is not None else None
        try:
            headers = request_headers(ctx)
            if headers is None:  # stdio: the configured local user, no lookup needed
                actor, role = runtime.settings.actor, runtime.settings.role
            else:
                actor, role = await anyio.to_thread.run_sync(runtime.resolve_bearer, headers)
            if ROLE_RANK[role] < required_rank:
                raise PermissionDenied(
                    f"Role '{role}' may not call {tool.name} (needs '{TIER_ROLE[tool.tier]}').",
                )
            if runtime.settings.read_only and not tool.read_only:
                raise PermissionDenied(
                    f"The server runs read-only; {tool.name} writes.",
                    hint="Restart the server without --read-only to use writing tools.",
                )
            call = Call(runtime=runtime, tool=tool, actor=actor, role=role, arguments=dict(kwargs), ctx=ctx)
            if approval_param is not None:
                from revops_core.guards import approval_from

                call.approval = approval_from(approval)
            if is_async:
                result = await tool.fn(call, **kwargs)
                await anyio.to_thread.run_sync(call._finish, True)
            else:

                def run_sync() -> Any:
                    assert call is not None
                    out = tool.fn(call, **kwargs)
                    call._finish(True)
                    return out

                result = await anyio.to_thread.run_sync(run_sync)
            return result
        except MCPError:
            # A protocol error the body raised on purpose (the SDK passes these through unchanged,
            # e.g. URL elicitation required): the client gets it as is, nothing is committed.
            status = "protocol_error"
            await _abort(call)
            raise
        except RevOpsError as err:
            status = err.code
            await _abort(call)
            log.info("tool_error", tool=tool.name, code=err.code, message=err.message)
            return error_result(err)
        except Exception as exc:
            await _abort(call)
            from revops_core.db import is_busy

            if is_busy(exc):
                status = DatabaseBusy.code
                log.warning("tool_database_busy", tool=tool.name, error=str(exc))
                return error_result(
                    DatabaseBusy(
                        "The database stayed locked by another write for "
                        f"{runtime.settings.db_busy_timeout_seconds:g} s; "
                        f"{tool.name} changed nothing.",
                        retry_after=5,
                    )
                )
            status = "internal_error"
            log.exception("tool_crashed", tool=tool.name)
            return error_result(
                InternalError(f"Unexpected error in {tool.name} (correlation id {cid}); nothing was changed.")
            )
        finally:
            metrics.observe(tool.name, status, time.perf_counter() - started)
            correlation_id.set(None)

    wrapper.__name__ = tool.name
    wrapper.__qualname__ = tool.name
    wrapper.__doc__ = inspect.getdoc(tool.fn)
    ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    extra = [approval_param] if approval_param is not None else []
    # inspect.signature() reads __signature__; typeshed does not declare it on functions.
    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in public] + extra + [ctx_param]
    )
    wrapper.__annotations__ = {p.name: p.annotation for p in public + extra} | {
        "ctx": Context,
        "return": sig.return_annotation,
    }
    return wrapper


async def _abort(call: Call | None) -> None:
    if call is not None and call._session_cm is not None:
        await anyio.to_thread.run_sync(call._finish, False)


# --------------------------------------------------------------------------- factory


class RevOpsMCPServer(MCPServer):
    """MCPServer whose failures reach the client in the suite's shapes.

    - Argument-validation failures are our structured `validation_error` (the SDK validates before
      our wrapper runs and reports plain text; clients and the fuzz test rely on a code, the field
      names and a next step). The rejected values are never echoed: they are the caller's data.
    - A client's protocol mistakes are JSON-RPC errors, never tool results or crashes: an unknown
      tool or prompt, a missing prompt argument, a prompt or resource naming a record that does not
      exist all answer -32602 (resources with `data.uri`, SEP-2164), without a logged traceback
      (see `protocol_extras`).
    """

    _wire_tools: list[Any] | None = None

    async def list_tools(self) -> list[Any]:
        """The tools with compact wire schemas (see `wire_schema`), computed once."""
        if self._wire_tools is None:
            from revops_core.wire_schema import compact_input_schema, compact_output_schema

            self._wire_tools = [
                tool.model_copy(
                    update={
                        "input_schema": compact_input_schema(tool.input_schema),
                        "output_schema": compact_output_schema(tool.output_schema)
                        if tool.output_schema
                        else None,
                    }
                )
                for tool in await super().list_tools()
            ]
        return self._wire_tools

    async def list_tools_full(self) -> list[Any]:
        """The tools with pydantic's full schemas (every description), for the generated docs."""
        return await super().list_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        if self._tool_manager.get_tool(name) is None:
            raise protocol_extras.unknown_tool(name)
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, PydanticValidationError):
                raise
            problems = [
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in cause.errors(include_input=False, include_url=False)
            ]
            first = cause.errors()[0]["loc"] if cause.errors() else ()
            return error_result(
                ValidationFailed(
                    f"Invalid arguments for {name}: " + "; ".join(problems[:8]),
                    field=".".join(str(p) for p in first) or None,
                    hint="Correct the named field(s) per the tool's input schema; nothing was changed.",
                )
            )

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Any = None
    ) -> Any:
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            raise protocol_extras.unknown_prompt(name)
        given = arguments or {}
        missing = sorted(a.name for a in prompt.arguments or [] if a.required and a.name not in given)
        if missing:
            raise protocol_extras.missing_prompt_arguments(name, missing)
        try:
            return await super().get_prompt(name, arguments, context)
        except MCPError:
            raise
        except Exception as exc:
            raise protocol_extras.protocol_error(exc, f"prompt {name}", {"name": name}) from exc

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        try:
            return await super().read_resource(uri, context)
        except ResourceNotFoundError:
            raise  # no resource or template matches: the SDK answers -32602 with data.uri
        except ResourceError as exc:
            if protocol_extras.revops_error_in(exc) is None:
                raise  # the SDK's own answer: -32603, a traceback only for a crash
            # A deliberate ResourceError carries the resource's own message; a bare RevOpsError
            # (wrapped by the SDK as unexpected) carries its own.
            message = None if isinstance(exc, UnexpectedResourceError) else str(exc)
            raise protocol_extras.protocol_error(
                exc, f"resource {uri}", {"uri": str(uri)}, message=message
            ) from exc


@dataclass
class RevOpsServer:
    mcp: RevOpsMCPServer
    runtime: Runtime
    tools: list[ToolDef]
    loader: ToolLoader | None = None

    @property
    def name(self) -> str:
        return self.runtime.server_name


ToolsetSource = Iterable[Toolset] | Callable[[], Iterable[Toolset]]
# Requests a deferred server answers before its tools are loaded: the handshake and liveness.
_UNGATED_METHODS = frozenset({"initialize", "ping", "server/discover", "logging/setLevel"})


class ToolLoader:
    """Loads toolsets into a server: schema check, tool modules, registration.

    Run inline (`load()`), errors propagate: a misconfigured server does not start. Deferred, the
    stdio server answers the handshake at once; loading starts in a thread when the handshake is
    complete (`notifications/initialized`, or the first other request), so it never competes with
    the `initialize` answer for the GIL, and `gate` holds every other request until loading is
    done — or answers it with the loading error (e.g. a schema that needs `revops db upgrade`),
    so the client can show it.
    """

    def __init__(self, server: RevOpsServer, toolsets: ToolsetSource, *, check_schema: bool) -> None:
        self.server = server
        self.toolsets = toolsets
        self.check_schema = check_schema
        self.done = threading.Event()
        self.error: RevOpsError | None = None
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None

    def load(self) -> None:
        runtime, mcp = self.server.runtime, self.server.mcp
        settings = runtime.settings
        if self.check_schema:
            from revops_core.db import ensure_schema

            ensure_schema(runtime.db)
        toolsets = list(self.toolsets() if callable(self.toolsets) else self.toolsets)
        wanted = selected_toolsets(toolsets, settings.toolsets)
        for ts in toolsets:
            if ts.name not in wanted:
                continue
            for tool in ts.tools:
                if settings.read_only and not tool.read_only:
                    continue
                mcp.add_tool(
                    _wrap(runtime, tool),
                    name=tool.name,
                    title=tool.title,
                    annotations=tool.annotations,
                    structured_output=True,
                )
                self.server.tools.append(tool)
            for extras in ts.extras:
                extras(mcp, runtime)
        self.done.set()

    def start(self) -> None:
        """Begin loading in the background (once; later calls do nothing)."""
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._load_in_background, name="revops-loader", daemon=True
                )
                self._thread.start()

    def _load_in_background(self) -> None:
        try:
            self.load()
        except RevOpsError as err:
            self.error = err
            log.error("load_failed", code=err.code, message=err.message, hint=err.hint)
        except Exception:
            self.error = InternalError("The server failed to load its tools; see its log (stderr).")
            log.exception("load_crashed")
        finally:
            self.done.set()

    async def gate(self, ctx: Any, call_next: Any) -> Any:
        """Server middleware: hold requests (not the handshake) until the tools are loaded."""
        if ctx.request_id is None or ctx.method in _UNGATED_METHODS:
            result = await call_next(ctx)
            if ctx.method == "notifications/initialized":
                self.start()
            return result
        if not self.done.is_set():
            self.start()
            await anyio.to_thread.run_sync(self.done.wait)
        if self.error is not None:
            from mcp.types import INTERNAL_ERROR

            raise MCPError(code=INTERNAL_ERROR, message=self.error.client_text(), data=self.error.to_dict())
        return await call_next(ctx)


def hidden_tools(tools: Iterable[ToolDef], role: Role) -> set[str]:
    """The tools `role` may not call (their tier needs a higher role)."""
    rank = ROLE_RANK[role]
    return {tool.name for tool in tools if rank < ROLE_RANK[TIER_ROLE[tool.tier]]}


async def caller_role(runtime: Runtime, request: Any) -> Role | None:
    """The role of whoever sent `request`: the configured local role over stdio (no HTTP request),
    else the bearer key's role (as the HTTP gate resolved it, or resolved here); None for no valid key.
    """
    if request is None:
        return runtime.settings.role
    state = getattr(request, "scope", {}).get("state") or {}
    principal = state.get("revops_principal")
    if principal is not None:
        return typing.cast("Role", principal[1])
    headers = getattr(request, "headers", None)
    if headers is None:
        return runtime.settings.role
    try:
        _, role = await anyio.to_thread.run_sync(runtime.resolve_bearer, headers)
    except PermissionDenied:
        return None
    return role


def role_filtered_tools_list(server: RevOpsServer) -> ServerMiddleware[Any]:
    """Server middleware: `tools/list` lists only the tools the caller's role may call.

    A viewer's list holds no write tool it would be refused; a hidden tool called by name is still
    refused for its role by the wrapper (never reported as unknown). The page is the SDK's own
    (one complete page; any cursor or list_changed behaviour unchanged), minus the hidden entries;
    the admin view is the whole list the tools/list budgets measure. A request without a valid key
    lists nothing.
    """

    async def filter_tools_list(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/list" or ctx.request_id is None:
            return await call_next(ctx)
        role = await caller_role(server.runtime, ctx.request)
        result = await call_next(ctx)
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            hidden = hidden_tools(server.tools, role) if role is not None else None
            tools = [t for t in result["tools"] if hidden is not None and t.get("name") not in hidden]
            result = {**result, "tools": tools}
            if "cacheScope" in result:  # the list depends on who asks: never shared between callers
                result["cacheScope"] = "private"
        return result

    return filter_tools_list


def selected_toolsets(toolsets: list[Toolset], requested: list[str] | None) -> set[str]:
    """The toolsets to list: the default ones (no request), every one (`all`), or those named.

    `meta` (server_info) is always listed: a client must always be able to ask what it talks to.
    """
    known = {ts.name for ts in toolsets}
    if not requested:
        return {ts.name for ts in toolsets if ts.default} | {META_TOOLSET}
    if ALL_TOOLSETS in requested:
        return known
    unknown = set(requested) - known
    if unknown:
        raise ValidationFailed(
            f"Unknown toolset(s): {', '.join(sorted(unknown))}.",
            field="toolsets",
            hint=f"Choose from: {', '.join(sorted(known | {ALL_TOOLSETS}))}.",
        )
    return set(requested) | {META_TOOLSET}


def build_server(
    name: str,
    toolsets: ToolsetSource,
    *,
    settings: Settings | None = None,
    db: Database | None = None,
    instructions: str | None = None,
    version: str = "0.1.0",
    check_schema: bool = True,
    defer: bool = False,
) -> RevOpsServer:
    """Build a server. `settings.toolsets` / `settings.read_only` narrow what is listed.

    `toolsets` may be a callable, so a deferred server imports its tool modules only when loading.
    With `defer=False` (tests, HTTP) everything is loaded before this returns and errors raise.
    """
    settings = settings or get_settings()
    runtime = Runtime(name, settings, db)
    loader_holder: list[ToolLoader] = []

    async def gate(ctx: Any, call_next: Any) -> Any:
        return await loader_holder[0].gate(ctx, call_next)

    mcp = RevOpsMCPServer(
        name=f"revops-{name}",
        instructions=instructions,
        version=version,
        middleware=[gate] if defer else None,
    )
    # logging/setLevel + a default completion/complete (see protocol_extras); before toolset extras,
    # so a toolset's own @mcp.completion() replaces the default.
    protocol_extras.install(mcp, runtime)
    server = RevOpsServer(mcp=mcp, runtime=runtime, tools=[])
    # After the loading gate: tools/list is filtered by the caller's role once the tools are there.
    mcp.middleware.append(role_filtered_tools_list(server))
    runtime.state["server"] = server  # server_info reports what was registered
    loader = ToolLoader(server, toolsets, check_schema=check_schema)
    loader_holder.append(loader)
    server.loader = loader
    if not defer:
        loader.load()
    return server


def load_tool_modules(package: str) -> None:
    """Import every module of a server's `tools` package; each registers its tools on a toolset.

    Discovered rather than listed, so adding a tool module never means editing a shared list.
    """
    import importlib
    import pkgutil

    root = importlib.import_module(package)
    for module in pkgutil.iter_modules(root.__path__):
        importlib.import_module(f"{package}.{module.name}")


def server_info_toolset(server_name: str, description: str, *, audit_query: bool = False) -> Toolset:
    """The `meta` toolset every server has: what is this server and what does it hold.

    `audit_query=True` adds `query_audit_log` (this server's tool calls in the audit log)."""
    from revops_core.info import register_server_info

    return register_server_info(server_name, description, audit_query=audit_query)


def run_stdio(server: RevOpsServer) -> None:
    """Serve over stdio (stdout is the protocol; logs go to stderr)."""
    server.mcp.run("stdio")
