"""Run the official MCP conformance suite against each server over streamable HTTP.

`python -m revops_core.conformance [--servers sales,cs] [--scenario S …] [--requirements R,…]
[--json | --markdown]`

For each server: a temp data dir, an admin API key created in its database, the console script
started with `--transport http` on a free port, and — because the conformance CLI cannot send an
`Authorization` header — a tiny local reverse proxy that adds the key to every request and passes
everything else (Host and Origin included, so DNS-rebinding checks still see the tester's values)
through unchanged. Authentication stays on in the server.

Each scenario runs under each spec revision (requirement set) it belongs to, at that revision's
wire. Checks that only the suite's reference fixture can pass are listed in `EXPECTED_FAILURES`
with their reasons. Exit status 0 only when every selected run passes on every selected server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.types import Message, Receive, Scope, Send

CONFORMANCE_PACKAGE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
NODE_PACKAGE = "node@22"
SERVERS = ("sales", "marketing", "cs")
STATEFUL, STATELESS = "2025-11-25", "2026-07-28"
REQUIREMENT_SETS = (STATEFUL, STATELESS)
"""The spec revisions we run. Each scenario runs at its revision's wire (`--spec-version`): through
2025-11-25 the stateful initialize handshake, 2026-07-28 stateless with per-request `_meta`; a
scenario of both revisions runs once under each, as the requirement sets say."""
BOTH = REQUIREMENT_SETS
SCENARIOS: dict[str, tuple[str, ...]] = {
    # Stateful only: removed from the 2026-07-28 wire (server/discover and per-request _meta).
    "server-initialize": (STATEFUL,),
    "ping": (STATEFUL,),
    "logging-set-level": (STATEFUL,),
    "server-session-lifecycle": (STATEFUL,),  # 2025-11-25: run, not scored (added after release)
    "tools-list": BOTH,
    "resources-list": BOTH,
    "prompts-list": BOTH,
    "completion-complete": BOTH,
    "dns-rebinding-protection": BOTH,
    "server-sse-multiple-streams": BOTH,
    # Introduced with 2026-07-28.
    "server-stateless": (STATELESS,),
    "sep-2164-resource-not-found": (STATELESS,),
    "caching": (STATELESS,),
    "http-header-validation": (STATELESS,),  # 2026-07-28: run, not scored (pending)
}
"""Scenario → the requirement sets it runs under. The requirement sets' other server scenarios
(tools-call-*, resources-read-*, prompts-get-*, input-required-result-*, elicitation, sampling…)
call the reference fixture's `test_*` tools, resources and prompts, which a real server lacks."""
_FIXTURE_TOOL = "calls the reference fixture's diagnostic tool {tool}, which our servers do not have"
EXPECTED_FAILURES: dict[str, str] = {
    # Every entry is a check that needs the reference fixture, never a shortcoming of ours.
    "server-stateless:sep-2575-server-rejects-undeclared-capability": _FIXTURE_TOOL.format(
        tool="test_missing_capability (a tool that needs a client capability)"
    ),
    "server-stateless:sep-2575-missing-capability-http-400": _FIXTURE_TOOL.format(
        tool="test_missing_capability (the HTTP 400 of its -32021 answer)"
    ),
    "server-stateless:sep-2575-http-server-no-independent-requests-on-stream": _FIXTURE_TOOL.format(
        tool="test_streaming_elicitation (a tool that elicits mid-stream)"
    ),
    "server-stateless:sep-2575-server-no-log-without-loglevel": _FIXTURE_TOOL.format(
        tool="test_logging_tool (a tool that logs to the client)"
    ),
    "server-stateless:sep-2575-server-sends-prompts-list-changed-on-subscription": _FIXTURE_TOOL.format(
        tool="test_trigger_prompt_change (mutates the prompt list; a WARNING, SHOULD)"
    ),
    "server-stateless:sep-2575-server-sends-tools-list-changed-on-subscription": _FIXTURE_TOOL.format(
        tool="test_trigger_tool_change (mutates the tool list; a WARNING, SHOULD)"
    ),
}
"""`<scenario>:<check id>` → why it cannot pass against a real server. Passed to the CLI as its
`--expected-failures` baseline; a listed check that passes is stale and fails the run."""
SERVER_ARGS = ("--toolsets", "all")  # every tool listed: every schema crosses the validated wire
NOT_PASSING = frozenset({"FAILURE", "ERROR", "WARNING"})  # what the CLI's baseline counts as failed
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


def _log_tail(log_path: Path | None, limit: int = 2000) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return log_path.read_text(errors="replace")[-limit:]


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes], timeout: float = 180.0, log_path: Path | None = None
) -> None:
    """Poll /healthz until 200; raise with the server's log tail when it exits or never gets healthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {_log_tail(log_path)}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base_url} did not become healthy: {_log_tail(log_path)}")


@contextlib.contextmanager
def running_server(
    name: str,
    env: dict[str, str],
    port: int | None = None,
    extra_args: Sequence[str] = (),
    log_path: Path | None = None,
) -> Iterator[str]:
    """Start `revops-<name> --transport http` as a subprocess; yield its base URL; stop it on exit.

    The server's stderr (its JSON log) goes to a file, `log_path` or a temporary one: a pipe that
    nobody reads fills after enough requests, and the server then blocks writing its log.
    """
    port = port or _free_port()
    command = [*server_command(name), "--transport", "http", "--port", str(port), *extra_args]
    with contextlib.ExitStack() as stack:
        if log_path is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="revops-server-log-")))
            log_path /= f"{name}.log"
        log_file = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(  # noqa: S603 - our own console script
            command, env=env, stdout=subprocess.DEVNULL, stderr=log_file
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base_url, process, log_path=log_path)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# --------------------------------------------------------------------------- the suite


@dataclass
class ScenarioResult:
    scenario: str
    requirement_set: str
    passed: bool
    checks: dict[str, int] = field(default_factory=dict)  # status → count
    failures: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # baselined checks that failed, as expected


Results = dict[str, dict[str, dict[str, ScenarioResult]]]
"""server → requirement set → scenario → result."""


def planned_runs(
    scenarios: Sequence[str] | None = None, requirement_sets: Sequence[str] = REQUIREMENT_SETS
) -> list[tuple[str, str]]:
    """(requirement set, scenario) pairs to run: every scenario under each set it belongs to."""
    wanted = list(scenarios or SCENARIOS)
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return [(rs, sc) for rs in requirement_sets for sc in wanted if rs in SCENARIOS[sc]]


def write_baseline(path: Path) -> Path:
    """The CLI's `--expected-failures` file (YAML): one `<scenario>:<check id>` per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("server:\n" + "".join(f"  - {entry}\n" for entry in EXPECTED_FAILURES))
    return path


def _parse_checks(output_dir: Path) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for path in sorted(output_dir.rglob("checks.json")):
        data = json.loads(path.read_text())
        checks.extend(data if isinstance(data, list) else data.get("checks", []))
    return checks


def judge(
    scenario: str, requirement_set: str, checks: list[dict[str, Any]], exit_code: int, output: str
) -> ScenarioResult:
    """Pass = every check passed or is a listed expected failure, none listed passed, and the CLI agreed."""
    counts: dict[str, int] = {}
    failures: list[str] = []
    expected: list[str] = []
    for check in checks:
        status = str(check.get("status", "?"))
        counts[status] = counts.get(status, 0) + 1
        key = f"{scenario}:{check.get('id')}"
        if status in NOT_PASSING:
            if key in EXPECTED_FAILURES:
                expected.append(f"{check.get('id')}: {EXPECTED_FAILURES[key]}")
            else:
                failures.append(f"{check.get('id')} ({status}): {check.get('errorMessage', '')}")
        elif status == "SUCCESS" and key in EXPECTED_FAILURES:
            failures.append(f"{check.get('id')}: passes but is listed as an expected failure (stale)")
    if not checks:
        if "not applicable" in output:
            failures.append(f"not applicable at {requirement_set}; correct SCENARIOS")
        else:
            failures.append("no check results were written")
    if exit_code != 0 and not failures:
        failures.append(f"conformance CLI exited {exit_code}: {output[-1500:]}")
    return ScenarioResult(
        scenario,
        requirement_set,
        passed=not failures,
        checks=counts,
        failures=failures,
        expected=sorted(set(expected)),
    )


def run_scenario(
    cli: list[str], url: str, scenario: str, requirement_set: str, workdir: Path, baseline: Path
) -> ScenarioResult:
    """One scenario at one revision's wire through the official CLI, judged by `judge`."""
    output_dir = workdir / requirement_set / scenario
    command = [*cli, "server", "--url", url, "--scenario", scenario, "--spec-version", requirement_set]
    proc = subprocess.run(  # noqa: S603 - the pinned conformance CLI
        [*command, "--expected-failures", str(baseline), "-o", str(output_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return judge(
        scenario, requirement_set, _parse_checks(output_dir), proc.returncode, proc.stdout + proc.stderr
    )


def run_server_suite(
    name: str, runs: Sequence[tuple[str, str]], cli: list[str], workdir: Path
) -> dict[str, dict[str, ScenarioResult]]:
    """Start one server and its auth proxy, then run every planned scenario against the proxy's /mcp."""
    from revops_core.http_transport import serve_in_thread

    data_dir = workdir / name / "data"
    data_dir.mkdir(parents=True)
    env = _server_env(data_dir, None)
    key = create_admin_key(env)
    baseline = write_baseline(workdir / "expected-failures.yml")
    results: dict[str, dict[str, ScenarioResult]] = {}
    try:
        with running_server(
            name, env, extra_args=SERVER_ARGS, log_path=workdir / name / "server.log"
        ) as base_url:
            proxy = AuthInjectingProxy(base_url, f"Bearer {key}")
            with serve_in_thread(proxy) as proxy_port:
                url = f"http://127.0.0.1:{proxy_port}/mcp"
                for requirement_set, scenario in runs:
                    results.setdefault(requirement_set, {})[scenario] = run_scenario(
                        cli, url, scenario, requirement_set, workdir / name / "results", baseline
                    )
    except RuntimeError as err:  # the server never got healthy: the runs it missed fail, other servers go on
        for requirement_set, scenario in runs:
            missed = ScenarioResult(scenario, requirement_set, passed=False, failures=[str(err)[-600:]])
            results.setdefault(requirement_set, {}).setdefault(scenario, missed)
    return results


def run_all(
    servers: Sequence[str] = SERVERS,
    scenarios: Sequence[str] | None = None,
    requirement_sets: Sequence[str] = REQUIREMENT_SETS,
) -> Results:
    """Every planned run on every server (servers in parallel); raises RuntimeError when npx is missing."""
    from concurrent.futures import ThreadPoolExecutor

    runs = planned_runs(scenarios, requirement_sets)
    npx = npx_command()
    if npx is None:
        raise RuntimeError("npx is not installed; install Node.js (20+) and npm to run the conformance suite")
    cli = resolve_cli(npx)
    with (
        tempfile.TemporaryDirectory(prefix="revops-conformance-") as tmp,
        ThreadPoolExecutor(len(servers)) as pool,
    ):
        futures = {name: pool.submit(run_server_suite, name, runs, cli, Path(tmp)) for name in servers}
        return {name: future.result() for name, future in futures.items()}


def _cell(result: ScenarioResult | None) -> str:
    if result is None:
        return "—"
    if not result.passed:
        return "FAIL"
    return f"pass ({len(result.expected)} expected)" if result.expected else "pass"


def _columns(results: Results) -> list[tuple[str, str]]:
    return [(server, rs) for rs in REQUIREMENT_SETS for server in results if rs in results[server]]


def format_table(results: Results) -> str:
    columns = _columns(results)
    lines = [f"{'scenario':30} " + " ".join(f"{f'{s}@{rs}':>24}" for s, rs in columns)]
    for scenario in SCENARIOS:
        cells = [_cell(results[s][rs].get(scenario)) for s, rs in columns]
        if any(cell != "—" for cell in cells):
            lines.append(f"{scenario:30} " + " ".join(f"{cell:>24}" for cell in cells))
    lines.extend(_details(results, "  "))
    return "\n".join(lines)


def format_markdown(results: Results) -> str:
    """The results table for docs/conformance.md: one row per scenario, a column per server and set."""
    columns = _columns(results)
    lines = [
        "| scenario | " + " | ".join(f"{s} @ {rs}" for s, rs in columns) + " |",
        "| --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    for scenario in SCENARIOS:
        cells = [_cell(results[s][rs].get(scenario)) for s, rs in columns]
        if any(cell != "—" for cell in cells):
            lines.append(f"| `{scenario}` | " + " | ".join(cells) + " |")
    details = _details(results, "- ")
    return "\n".join(lines + (["", *details] if details else []))


def _details(results: Results, prefix: str) -> list[str]:
    lines: list[str] = []
    for server, by_set in results.items():
        for rs, by_scenario in by_set.items():
            for r in by_scenario.values():
                lines.extend(f"{prefix}{server}@{rs} {r.scenario}: FAIL {failure}" for failure in r.failures)
    return lines


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
    parser.add_argument(
        "--requirements",
        default=",".join(REQUIREMENT_SETS),
        help=f"Comma-separated spec revisions (default: {','.join(REQUIREMENT_SETS)}).",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="Print the results as JSON.")
    output.add_argument("--markdown", action="store_true", help="Print the results as a Markdown table.")
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}; choose from {', '.join(SERVERS)}")
    requirement_sets = [r.strip() for r in args.requirements.split(",") if r.strip()]
    if set(requirement_sets) - set(REQUIREMENT_SETS):
        parser.error(f"--requirements: choose from {', '.join(REQUIREMENT_SETS)}")
    try:
        planned_runs(args.scenario, requirement_sets)
    except ValueError as err:
        parser.error(f"{err}; choose from {', '.join(SCENARIOS)}")
    try:
        results = run_all(servers, args.scenario, requirement_sets)
    except RuntimeError as err:
        print(f"conformance: {err}", file=sys.stderr)
        return 2
    if args.json:
        payload = {
            server: {
                rs: {
                    s: {
                        "passed": r.passed,
                        "checks": r.checks,
                        "failures": r.failures,
                        "expected": r.expected,
                    }
                    for s, r in by_scenario.items()
                }
                for rs, by_scenario in by_set.items()
            }
            for server, by_set in results.items()
        }
        print(json.dumps(payload, indent=2))
    elif args.markdown:
        print(format_markdown(results))
    else:
        print(format_table(results))
    ok = all(r.passed for by_set in results.values() for by in by_set.values() for r in by.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
