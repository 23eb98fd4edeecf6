"""Streamable HTTP for a RevOps server: the SDK's `/mcp` app behind a host guard and a bearer-key gate.

Routes
  /mcp       the MCP streamable HTTP endpoint (SDK)
  /healthz   liveness + database check, no key needed (load balancers and Compose probe it)
  /metrics   Prometheus text of this server's counters, key needed (tool names are not public)

In front of every route, in this order:
1. `HostGuardMiddleware`: DNS-rebinding protection. A `Host` this server does not answer to gets
   421, a foreign `Origin` 403, on every path (not only `/mcp`), before anything else runs.
2. `BearerKeyMiddleware`: every path except `/healthz` needs `Authorization: Bearer rvk_…` (see
   `revops_core.apikeys`); a missing, unknown or revoked key gets 401 with `WWW-Authenticate:
   Bearer` before the request reaches the SDK. A streamable-HTTP session (`Mcp-Session-Id`) belongs
   to the key that opened it: a request for it with another key gets 403, and a request that finds
   the session's own key revoked ends the session (its id answers 404 from then on).

The gate only admits; *who* the caller is for a tool call is resolved again from the same header by
`Runtime.resolve_actor`, so a revoked key stops working on the next request.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from revops_core.logs import get_logger

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.requests import Request
    from starlette.responses import Response

    from revops_core.db import Database
    from revops_core.server import RevOpsServer
    from revops_core.settings import Settings

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
PUBLIC_PATHS = frozenset({HEALTH_PATH})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

log = get_logger("revops.http")


def transport_security(settings: Settings, extra_hosts: Iterable[str] = ()) -> TransportSecuritySettings:
    """Host/Origin allow-lists for DNS-rebinding protection (always on).

    Loopback names on any port are always allowed. A server bound to a specific non-loopback address
    also answers to that address; one bound to 0.0.0.0 answers only to loopback plus the names listed
    in `settings.http_allowed_hosts` — a wildcard bind never means "any Host header".
    """
    from mcp.server.transport_security import TransportSecuritySettings

    names = list(LOOPBACK_HOSTS)
    host = settings.http_host
    if host not in ("0.0.0.0", "::", "127.0.0.1", "localhost", "::1"):  # noqa: S104 - compared, not bound
        names.append(f"[{host}]" if ":" in host else host)
    names.extend(settings.http_allowed_hosts)
    names.extend(extra_hosts)
    allowed_hosts: list[str] = []
    for name in dict.fromkeys(names):
        # A bare name is allowed on any port and without one (port 80 behind a proxy).
        allowed_hosts.extend([name] if _has_port(name) else [f"{name}:*", name])
    allowed_origins = [f"{scheme}://{h}" for h in allowed_hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )


def _has_port(host: str) -> bool:
    return ":" in host.rsplit("]", 1)[-1]


def _json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _send_simple(
    send: Send, status: int, body: bytes, content_type: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


SESSION_HEADER = "mcp-session-id"
OWNER_PREFIX = "rvk-sha256:"
"""A session's owner as the SDK records it: the SHA-256 of the key that opened it (never the key)."""


def key_owner(authorization: str | None) -> str | None:
    """The owner id of a bearer token: `rvk-sha256:<hex>`, or None without a bearer token."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    raw = authorization[7:].strip()
    return OWNER_PREFIX + hashlib.sha256(raw.encode()).hexdigest() if raw else None


class SessionOwners:
    """The SDK's open streamable-HTTP sessions and the key each one was opened with.

    The SDK records a session's owner from `scope["user"]` (which the gate sets to the key's
    fingerprint) and itself answers 404 to a request from anyone else; this view lets the gate
    answer that case with a clear 403, and end a session whose own key no longer resolves. It reads
    the session manager's private maps, so it checks for them when the app is built: an SDK that
    moved them stops the server from starting instead of silently unbinding sessions.
    """

    _REQUIRED = ("_session_owners", "_server_instances", "_discard_session")

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        missing = [name for name in self._REQUIRED if not hasattr(manager, name)]
        if missing:
            raise RuntimeError(
                "This mcp SDK's session manager lacks " + ", ".join(missing) + "; sessions cannot be "
                "bound to API keys. Install the version in uv.lock."
            )
        self.manager = manager

    def owner(self, session_id: str) -> str | None:
        """The owner id the session was opened with; None for no such (open) session."""
        context = self.manager._session_owners.get(session_id)
        return None if context is None else context["client_id"]

    async def end(self, session_id: str) -> bool:
        """Terminate the session (its id answers 404 from now on); False when it was not open."""
        transport = self.manager._server_instances.get(session_id)
        if transport is None:
            return False
        await self.manager._discard_session(session_id, transport)
        return True


class HostGuardMiddleware:
    """ASGI guard: DNS-rebinding protection on every HTTP route (Host → 421, Origin → 403).

    The same allow-lists and matching as the SDK applies on `/mcp` (`transport_security`), checked
    before the key gate, so `/healthz`, `/metrics` and unknown paths never answer a rebound page.
    """

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        from mcp.server.transport_security import TransportSecurityMiddleware

        self.app = app
        self.checker = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from starlette.requests import Request

            refusal = await self.checker.validate_request(Request(scope), is_post=False)
            if refusal is not None:
                misdirected = refusal.status_code == 421
                log.warning(
                    "http_host_refused",
                    path=scope["path"],
                    header="host" if misdirected else "origin",
                )
                body = _json_body(
                    {
                        "error": "misdirected_request" if misdirected else "forbidden_origin",
                        "message": "This server does not answer to that Host."
                        if misdirected
                        else "Requests from that Origin are refused.",
                        "hint": "Add the name to REVOPS_HTTP_ALLOWED_HOSTS if this server should answer it.",
                    }
                )
                await _send_simple(send, refusal.status_code, body, "application/json")
                return
        await self.app(scope, receive, send)


def _jsonrpc_error(message: str, data: dict[str, Any]) -> bytes:
    return _json_body(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message, "data": data}}
    )


class BearerKeyMiddleware:
    """ASGI gate: every HTTP request outside `public_paths` needs a valid API key, else 401.

    With `sessions`, a request naming a session (`Mcp-Session-Id`) must carry the key that opened
    it (else 403), and a request carrying that key after it was revoked ends the session.
    """

    def __init__(
        self,
        app: ASGIApp,
        db: Database,
        public_paths: frozenset[str] = PUBLIC_PATHS,
        sessions: SessionOwners | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.public_paths = public_paths
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
        from mcp.server.auth.provider import AccessToken

        from revops_core.apikeys import resolve_bearer

        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        owner = key_owner(authorization)
        session_id = headers.get(SESSION_HEADER) if self.sessions is not None else None
        principal = await anyio.to_thread.run_sync(resolve_bearer, self.db, authorization)
        if principal is None:
            if (
                self.sessions is not None
                and session_id
                and owner is not None
                and self.sessions.owner(session_id) == owner
                and await self.sessions.end(session_id)
            ):
                # The session's own key no longer resolves (revoked or deleted): the session ends.
                log.info("http_session_ended", reason="key_no_longer_valid", session=session_id[:8])
            log.info("http_unauthorized", path=scope["path"], had_header=authorization is not None)
            body = _json_body(
                {
                    "error": "unauthorized",
                    "message": "A valid API key is required.",
                    "hint": "Send `Authorization: Bearer rvk_…`; create a key with `revops keys create`.",
                }
            )
            challenge = b'Bearer realm="revops", error="invalid_token"' if authorization else b"Bearer"
            await _send_simple(send, 401, body, "application/json", [(b"www-authenticate", challenge)])
            return
        assert owner is not None  # a key resolved, so there was a bearer token
        if self.sessions is not None and session_id:
            session_owner = self.sessions.owner(session_id)
            if session_owner is not None and session_owner != owner:
                log.warning("http_session_key_mismatch", path=scope["path"], session=session_id[:8])
                body = _jsonrpc_error(
                    "This session was opened with another API key; a session answers only the key "
                    "that opened it.",
                    {
                        "error": "session_key_mismatch",
                        "hint": "Open your own session: send initialize without Mcp-Session-Id.",
                    },
                )
                await _send_simple(send, 403, body, "application/json")
                return
        _, role = principal
        # The SDK binds a new session to this user and refuses (404) anyone else on it; the
        # fingerprint, not the key, is what it keeps.
        scope["user"] = AuthenticatedUser(AccessToken(token=owner, client_id=owner, scopes=[role]))
        # The tools/list filter reads the role from here; tools resolve the caller from the header.
        scope.setdefault("state", {})["revops_principal"] = principal
        await self.app(scope, receive, send)


def _database_ok(db: Database) -> bool:
    from sqlalchemy import text

    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver failure means "unreachable" to a probe
        log.warning("healthz_db_unreachable", error_type=type(exc).__name__)
        return False
    return True


def _add_routes(server: RevOpsServer) -> None:
    """Register /healthz and /metrics on the SDK app (the gate in front decides who may call them)."""
    from starlette.responses import JSONResponse, Response

    runtime = server.runtime

    async def healthz(request: Request) -> Response:
        ok = await anyio.to_thread.run_sync(_database_ok, runtime.db)
        payload = {
            "status": "ok" if ok else "unavailable",
            "server": server.name,
            "database": runtime.db.dialect if ok else "unreachable",
        }
        return JSONResponse(payload, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    server.mcp.custom_route(HEALTH_PATH, methods=["GET"], include_in_schema=False)(healthz)
    server.mcp.custom_route(METRICS_PATH, methods=["GET"], include_in_schema=False)(metrics)


def build_http_app(server: RevOpsServer, settings: Settings) -> ASGIApp:
    """The ASGI app serving `server` over streamable HTTP, gated by API keys. Build it once per server."""
    _add_routes(server)
    security = transport_security(settings)
    app = server.mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=security,
        host=settings.http_host,
    )
    sessions = SessionOwners(server.mcp.session_manager)
    return HostGuardMiddleware(BearerKeyMiddleware(app, server.runtime.db, sessions=sessions), security)


def serve_http(server: RevOpsServer, settings: Settings) -> None:
    """Serve until interrupted (uvicorn; SIGTERM drains open requests). Logs stay JSON on stderr."""
    import uvicorn

    app = build_http_app(server, settings)
    log.info("http_listening", server=server.name, host=settings.http_host, port=settings.http_port)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep the root JSON handler configure_logging installed
        log_level=settings.log_level.lower(),
        proxy_headers=False,  # never trust X-Forwarded-* from an arbitrary client
        server_header=False,
    )
    uvicorn.Server(config).run()


@contextmanager
def serve_in_thread(app: ASGIApp, *, start_timeout: float = 30.0) -> Iterator[int]:
    """Run an ASGI app under uvicorn on a free 127.0.0.1 port in a daemon thread; yield the port.

    For tests and the conformance runner: the socket is bound before uvicorn starts, so there is no
    race for the port, and the context exit stops the server and waits for it.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:  # wait for start-up; nothing is measured
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the HTTP server did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
