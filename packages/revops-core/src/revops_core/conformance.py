"""Run the official MCP conformance suite against each server over streamable HTTP.

`python -m revops_core.conformance [--servers sales,cs] [--scenario S …] [--json]`

For each server: a temp data dir, an admin API key created in its database, the console script
started with `--transport http` on a free port, and — because the conformance CLI cannot send an
`Authorization` header — a tiny local reverse proxy that adds the key to every request and passes
everything else (Host and Origin included, so DNS-rebinding checks still see the tester's values)
through unchanged. Authentication stays on in the server.

Exit status 0 only when every selected scenario passes on every selected server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.types import Message, Receive, Scope, Send

CONFORMANCE_PACKAGE = "@modelcontextprotocol/conformance@0.1.16"
NODE_PACKAGE = "node@22"
SERVERS = ("sales", "marketing", "cs")
SCENARIOS = (
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "logging-set-level",
    "completion-complete",
    "dns-rebinding-protection",
    "server-sse-multiple-streams",
)
# Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)


def npx_command() -> list[str] | None:
    """The npx invocation of the pinned conformance CLI, or None when npx is not installed."""
    npx = shutil.which("npx")
    if npx is None:
        return None
    return [npx, "-y", "-p", NODE_PACKAGE, "-p", CONFORMANCE_PACKAGE, "--", "conformance"]


def resolve_cli(npx: list[str]) -> list[str]:
    """`[node22, conformance-bin]` from npx's cache, so each scenario skips npx's ~8 s registry check.

    Falls back to the full npx command when the paths cannot be resolved (e.g. no POSIX shell).
    """
    probe = [*npx[:-1], "sh", "-c", "command -v node && command -v conformance"]
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell input
            probe, capture_output=True, text=True, timeout=600, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return npx
    paths = [line.strip() for line in out.splitlines() if line.strip().startswith("/")]
    return paths[-2:] if len(paths) >= 2 else npx


# --------------------------------------------------------------------------- auth-injecting proxy


class AuthInjectingProxy:
    """ASGI reverse proxy to `upstream` that sets `Authorization` on every request; streams responses."""

    def __init__(self, upstream: str, authorization: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.authorization = authorization.encode()
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in HOP_BY_HOP and k.lower() != b"authorization"
        ]
        headers.append((b"authorization", self.authorization))
        query = scope.get("query_string", b"").decode()
        url = self.upstream + scope["path"] + (f"?{query}" if query else "")
        assert self.client is not None
        request = self.client.build_request(scope["method"], url, headers=headers, content=bytes(body))
        response = await self.client.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP],
                }
            )
            async with anyio.create_task_group() as group:
                # A client that goes away (e.g. cancels an SSE stream) must end the upstream read too.
                group.start_soon(self._cancel_on_disconnect, receive, group.cancel_scope)
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                group.cancel_scope.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    @staticmethod
    async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


# --------------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(name: str) -> list[str]:
    """The installed console script by absolute path, else `python -m revops_<name>`."""
    script = shutil.which(f"revops-{name}")
    return [script] if script else [sys.executable, "-m", f"revops_{name}"]


def _server_env(data_dir: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_")}
    # A temp SQLite store unless the caller passes a DATABASE_URL on purpose.
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env["REVOPS_DATA_DIR"] = str(data_dir)
    env["REVOPS_LOG_LEVEL"] = "WARNING"
    env.update(extra or {})
    return env


def create_admin_key(env: dict[str, str], name: str = "conformance") -> str:
    """Migrate the database the server will use and create an admin key in it; returns the raw key."""
    from revops_core.apikeys import create_key
    from revops_core.db import Database, upgrade
    from revops_core.settings import Settings

    settings = Settings(
        data_dir=Path(env["REVOPS_DATA_DIR"]),
        database_url=env.get("DATABASE_URL"),
        redis_url=env.get("REDIS_URL"),
        auto_migrate=True,
    )
    db = Database(settings)
    try:
        upgrade(db)
        _, raw = create_key(db, name=name, role="admin")
    finally:
        db.dispose()
    return raw


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    """Poll /healthz until 200; raise with the server's stderr when it exits or never gets healthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"server exited with {process.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base_url} did not become healthy")


@contextmanager
def running_server(
    name: str, env: dict[str, str], port: int | None = None, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """Start `revops-<name> --transport http` as a subprocess; yield its base URL; stop it on exit."""
    port = port or _free_port()
    command = [*server_command(name), "--transport", "http", "--port", str(port), *extra_args]
    process = subprocess.Popen(  # noqa: S603 - our own console script
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stderr:
            process.stderr.close()


# --------------------------------------------------------------------------- the suite


@dataclass
class ScenarioResult:
    scenario: str
    passed: bool
    checks: dict[str, int] = field(default_factory=dict)  # status → count
    failures: list[str] = field(default_factory=list)


def _parse_checks(output_dir: Path) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for path in sorted(output_dir.rglob("checks.json")):
        data = json.loads(path.read_text())
        checks.extend(data if isinstance(data, list) else data.get("checks", []))
    return checks


def run_scenario(cli: list[str], url: str, scenario: str, workdir: Path) -> ScenarioResult:
    """One scenario through the official CLI; pass = exit 0 and no FAILURE check in its results."""
    output_dir = workdir / scenario
    proc = subprocess.run(  # noqa: S603 - the pinned conformance CLI
        [*cli, "server", "--url", url, "--scenario", scenario, "-o", str(output_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    checks = _parse_checks(output_dir)
    counts: dict[str, int] = {}
    for check in checks:
        counts[check.get("status", "?")] = counts.get(check.get("status", "?"), 0) + 1
    failures = [
        f"{c.get('id')}: {c.get('errorMessage', '')}"
        for c in checks
        if c.get("status") in ("FAILURE", "ERROR")
    ]
    if proc.returncode != 0 and not failures:
        failures.append(f"conformance CLI exited {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}")
    if not checks:
        failures.append("no check results were written")
    return ScenarioResult(scenario, passed=not failures, checks=counts, failures=failures)


def run_server_suite(
    name: str, scenarios: Sequence[str], cli: list[str], workdir: Path
) -> dict[str, ScenarioResult]:
    """Start one server and its auth proxy, then run every scenario against the proxy's /mcp."""
    from revops_core.http_transport import serve_in_thread

    data_dir = workdir / name / "data"
    data_dir.mkdir(parents=True)
    env = _server_env(data_dir, None)
    key = create_admin_key(env)
    results: dict[str, ScenarioResult] = {}
    with running_server(name, env) as base_url:
        proxy = AuthInjectingProxy(base_url, f"Bearer {key}")
        with serve_in_thread(proxy) as proxy_port:
            url = f"http://127.0.0.1:{proxy_port}/mcp"
            for scenario in scenarios:
                results[scenario] = run_scenario(cli, url, scenario, workdir / name / "results")
    return results


def run_all(
    servers: Sequence[str] = SERVERS, scenarios: Sequence[str] = SCENARIOS
) -> dict[str, dict[str, ScenarioResult]]:
    """Every scenario on every server (servers in parallel); raises RuntimeError when npx is missing."""
    from concurrent.futures import ThreadPoolExecutor

    npx = npx_command()
    if npx is None:
        raise RuntimeError("npx is not installed; install Node.js (20+) and npm to run the conformance suite")
    cli = resolve_cli(npx)
    with (
        tempfile.TemporaryDirectory(prefix="revops-conformance-") as tmp,
        ThreadPoolExecutor(len(servers)) as pool,
    ):
        futures = {name: pool.submit(run_server_suite, name, scenarios, cli, Path(tmp)) for name in servers}
        return {name: future.result() for name, future in futures.items()}


def format_table(results: dict[str, dict[str, ScenarioResult]]) -> str:
    lines = [f"{'scenario':32} " + " ".join(f"{s:>10}" for s in results)]
    scenarios = list(next(iter(results.values()), {}))
    for scenario in scenarios:
        cells = " ".join(f"{'pass' if results[s][scenario].passed else 'FAIL':>10}" for s in results)
        lines.append(f"{scenario:32} {cells}")
    for server, by_scenario in results.items():
        for result in by_scenario.values():
            lines.extend(f"  {server}/{result.scenario}: {failure}" for failure in result.failures)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revops_core.conformance", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="Comma-separated servers (default: all)."
    )
    parser.add_argument(
        "--scenario", action="append", help="A scenario to run (repeatable; default: the set)."
    )
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}; choose from {', '.join(SERVERS)}")
    try:
        results = run_all(servers, args.scenario or SCENARIOS)
    except RuntimeError as err:
        print(f"conformance: {err}", file=sys.stderr)
        return 2
    if args.json:
        payload = {
            server: {
                s: {"passed": r.passed, "checks": r.checks, "failures": r.failures} for s, r in by.items()
            }
            for server, by in results.items()
        }
        print(json.dumps(payload, indent=2))
    else:
        print(format_table(results))
    ok = all(r.passed for by in results.values() for r in by.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
