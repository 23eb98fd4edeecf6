"""Streamable HTTP for a RevOps server: the SDK's `/mcp` app behind a bearer-key gate.

Routes
  /mcp       the MCP streamable HTTP endpoint (SDK), DNS-rebinding protection on
  /healthz   liveness + database check, no key needed (load balancers and Compose probe it)
  /metrics   Prometheus text of this server's counters, key needed (tool names are not public)

Every path except `/healthz` needs `Authorization: Bearer rvk_…` (see `revops_core.apikeys`); a
missing, unknown or revoked key gets 401 with `WWW-Authenticate: Bearer` before the request reaches
the SDK. The gate only admits; *who* the caller is for a tool call is resolved again from the same
header by `Runtime.resolve_actor`, so a revoked key stops working on the next request, even inside a
session that was opened while it was valid.
"""

from __future__ import annotations

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


class BearerKeyMiddleware:
    """ASGI gate: every HTTP request outside `public_paths` needs a valid API key, else 401."""

    def __init__(self, app: ASGIApp, db: Database, public_paths: frozenset[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self.db = db
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        from revops_core.apikeys import resolve_bearer

        authorization = Headers(scope=scope).get("authorization")
        principal = await anyio.to_thread.run_sync(resolve_bearer, self.db, authorization)
        if principal is None:
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
        # Kept for handlers that want it; tools resolve the caller themselves from the header.
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
    app = server.mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings),
        host=settings.http_host,
    )
    return BearerKeyMiddleware(app, server.runtime.db)


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
