"""`make bench`: our servers measured against a bare MCP SDK server in the same run.

Reported as ratios (ours ÷ bare) so the numbers mean something on any machine:
cold start (spawn → initialize result), warm round trip of a read and of a write tool over stdio,
idle RSS; plus core throughput (audit append/s, audit verify entries/s, vault encrypt+decrypt/s)
and CS work at portfolio size. Results go to docs/benchmarks.md with the machine and date.
Nothing here asserts a wall-clock limit; the targets are printed next to the measured ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROTOCOL = "2025-11-25"
TARGETS = {"cold_start": 1.3, "read_round_trip": 1.3, "idle_rss": 1.5}
"""Issue 12's goals: spawn → first tools/list and warm server_info ≤ 1.3× bare, idle RSS ≤ 1.5×."""


class StdioPeer:
    """A server process driven with raw newline-delimited JSON-RPC (we need its pid for RSS)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(  # noqa: S603 - argv is built from our own console scripts
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        self._next_id = 0

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}}
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited during {method}")
            reply = json.loads(line)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return dict(reply["result"])

    def notify(self, method: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}) + "\n")
        self.proc.stdin.flush()

    def initialize(self) -> float:
        """Handshake; returns seconds from spawn to the initialize result."""
        self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        elapsed = time.perf_counter() - self.started
        self.notify("notifications/initialized")
        return elapsed

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"{tool} failed: {result['content']}")
        return result

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Subject:
    name: str
    argv: list[str]
    read: tuple[str, dict[str, Any]]
    write: tuple[str, Callable[[int], dict[str, Any]]] | None = None
    prepare: Callable[[Path], None] | None = None
    results: dict[str, float] = field(default_factory=dict)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_") and k != "DATABASE_URL"}
    env.update({"REVOPS_DATA_DIR": str(data_dir), "REVOPS_LOG_LEVEL": "WARNING"})
    return env


def prepare(subject: Subject, root: Path) -> Path:
    data_dir = root / subject.name
    data_dir.mkdir(parents=True, exist_ok=True)
    if subject.prepare is not None:
        subject.prepare(data_dir)
    # One untimed start first: it creates the embedded database, so every timed start is a warm disk.
    warm = StdioPeer(subject.argv, _env(data_dir))
    warm.initialize()
    warm.close()
    return data_dir


def measure_cold_starts(subjects_: list[Subject], dirs: dict[str, Path], *, starts: int) -> None:
    """Spawn → `initialize`, → first `tools/list` and → first tool call, round-robin over the
    subjects, so drift in the machine's state (caches, other load) falls on the baseline and on our
    servers alike. A client cannot call a tool before it has listed them, and our stdio servers
    load their tools after the handshake: spawn → `tools/list` is the start-up a client feels."""
    samples: dict[str, dict[str, list[float]]] = {
        s.name: {"initialize": [], "cold_start": [], "first_call": []} for s in subjects_
    }
    for _ in range(starts):
        for subject in subjects_:
            peer = StdioPeer(subject.argv, _env(dirs[subject.name]))
            mine = samples[subject.name]
            mine["initialize"].append(peer.initialize())
            peer.request("tools/list")
            mine["cold_start"].append(time.perf_counter() - peer.started)
            peer.call(*subject.read)
            mine["first_call"].append(time.perf_counter() - peer.started)
            peer.close()
    for subject in subjects_:
        for key, values in samples[subject.name].items():
            subject.results[key] = statistics.median(values)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_warm(subjects_: list[Subject], dirs: dict[str, Path], *, calls: int, block: int = 20) -> None:
    """Warm round trips, interleaved: every server runs at once and they take turns in blocks of
    `block` calls, so a slow patch of the machine falls on all of them. Wall time is the median
    call; CPU time is the server process's user + system time per call over all its blocks (the
    clock ticks at 10 ms, hence blocks rather than single calls)."""
    peers = {s.name: StdioPeer(s.argv, _env(dirs[s.name])) for s in subjects_}
    for s in subjects_:
        peers[s.name].initialize()
        for _ in range(10):
            peers[s.name].call(*s.read)
    kinds = [("read", s) for s in subjects_] + [("write", s) for s in subjects_ if s.write is not None]
    wall: dict[tuple[str, str], list[float]] = {(k, s.name): [] for k, s in kinds}
    cpu: dict[tuple[str, str], float] = {(k, s.name): 0.0 for k, s in kinds}
    done = 0
    while done < calls:
        for kind, s in kinds:
            peer = peers[s.name]
            before = _cpu_seconds(peer.proc.pid)
            for i in range(done, done + block):
                if kind == "read":
                    name, args = s.read
                else:
                    assert s.write is not None
                    name, args = s.write[0], s.write[1](i)
                t0 = time.perf_counter()
                peer.call(name, args)
                wall[(kind, s.name)].append(time.perf_counter() - t0)
            cpu[(kind, s.name)] += _cpu_seconds(peer.proc.pid) - before
        done += block
    for kind, s in kinds:
        s.results[f"{kind}_round_trip"] = statistics.median(wall[(kind, s.name)])
        s.results[f"{kind}_cpu"] = cpu[(kind, s.name)] / len(wall[(kind, s.name)])
    time.sleep(1.0)
    for s in subjects_:
        s.results["idle_rss"] = float(peers[s.name].rss_kib())
        peers[s.name].close()


def core_throughput(root: Path) -> dict[str, float]:
    """Audit append/s, audit verify entries/s, vault encrypt+decrypt/s on the embedded database."""
    from revops_core import audit
    from revops_core.db import Database, upgrade
    from revops_core.settings import Settings

    settings = Settings(data_dir=root / "core", database_url=None, redis_url=None, master_key=None)
    db = Database(settings)
    upgrade(db)
    out: dict[str, float] = {}
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        with db.session(write=True) as s:
            audit.append(s, actor="bench", action="bench.append", target=f"t:{i}", details={"i": i})
    out["audit_append_per_s"] = n / (time.perf_counter() - t0)
    with db.session(write=True) as s:
        for i in range(10_000 - n):
            audit.append(s, actor="bench", action="bench.bulk", target=f"t:{i}", details={"i": i})
    verify = getattr(audit, "verify", None)
    if verify is not None:
        t0 = time.perf_counter()
        report = verify(db)
        out["audit_verify_entries_per_s"] = report.entries_checked / (time.perf_counter() - t0)
    vault_cls: type[Any] | None
    try:
        from revops_core.vault import Vault

        vault_cls = Vault
    except ImportError:
        vault_cls = None
    if vault_cls is not None and hasattr(vault_cls, "set"):
        vault = vault_cls(db, settings)
        m = 300
        t0 = time.perf_counter()
        for i in range(m):
            vault.set("bench", f"secret-{i}", {"token": f"value-{i}"})
            vault.get("bench", f"secret-{i}")
        out["vault_encrypt_decrypt_per_s"] = m / (time.perf_counter() - t0)
    db.dispose()
    return out


def subjects() -> list[Subject]:
    bare = Subject("bare-sdk", [sys.executable, "-m", "revops_suite.bench_bare"], read=("noop", {}))
    ours = []
    for server in ("sales", "marketing", "cs"):
        ours.append(Subject(server, [_bin(f"revops-{server}")], read=("server_info", {})))
    from revops_suite.bench_cs import seed_write_target, write_tool

    ours[-1].write = write_tool()
    ours[-1].prepare = seed_write_target
    return [bare, *ours]


def _ratio(ours: float, bare: float) -> str:
    return f"{ours / bare:.2f}×" if bare > 0 else "—"


def render(subjects_: list[Subject], core: dict[str, float], extra: list[str]) -> str:
    bare = subjects_[0].results
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in ln
        ),
        platform.processor(),
    )
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, by `make bench` (bytecode compiled by `make setup`). "
        "Ratios are ours ÷ the bare MCP SDK server (one no-op tool) measured in the same run; lower "
        "is better.",
        "",
        "- **cold start** = spawn → first `tools/list` answered (what a client waits for before it can "
        "call anything); **first call** = spawn → the first read answered; median of round-robin "
        "starts over all servers (spawn → `initialize` alone in the last column).",
        "- **read / write** = a warm round trip over stdio (median), the servers interleaved in blocks; "
        "**CPU** = the server process's user + system time per call. The read is `server_info` "
        "(the bare server's no-op); the write stores one usage event with its audit entry.",
        "",
        "| server | cold start | ratio | first call | read | ratio | read CPU | ratio | write | write CPU "
        "| idle RSS | ratio | initialize |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in subjects_:
        r = s.results
        write = f"{r['write_round_trip'] * 1000:.2f} ms" if "write_round_trip" in r else "—"
        write_cpu = f"{r['write_cpu'] * 1000:.2f} ms" if "write_cpu" in r else "—"
        lines.append(
            f"| {s.name} | {r['cold_start'] * 1000:.0f} ms | {r['cold_start'] / bare['cold_start']:.2f}× "
            f"| {r['first_call'] * 1000:.0f} ms "
            f"| {r['read_round_trip'] * 1000:.2f} ms | {r['read_round_trip'] / bare['read_round_trip']:.2f}× "
            f"| {r['read_cpu'] * 1000:.2f} ms | {_ratio(r['read_cpu'], bare['read_cpu'])} "
            f"| {write} | {write_cpu} "
            f"| {r['idle_rss'] / 1024:.1f} MiB | {r['idle_rss'] / bare['idle_rss']:.2f}× "
            f"| {r['initialize'] * 1000:.0f} ms |"
        )
    lines += ["", "Targets: " + ", ".join(f"{k} ≤ {v}×" for k, v in TARGETS.items()) + ".", ""]
    verdicts = []
    for s in subjects_[1:]:
        for key, limit in TARGETS.items():
            ratio = s.results[key] / bare[key]
            verdicts.append(f"- {s.name} {key}: {ratio:.2f}× ({'met' if ratio <= limit else 'NOT met'})")
    lines += verdicts
    lines += ["", "## Core throughput (embedded SQLite)", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v:,.0f} |" for k, v in core.items()]
    lines += ["", *extra, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--starts", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--skip-portfolio", action="store_true", help="Skip the 10 000-client CS run.")
    parser.add_argument("--skip-sales", action="store_true", help="Skip the Sales forecast and review runs.")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL server for the portfolio run (a scratch database is created and dropped); "
        "default $DATABASE_URL, none: SQLite only.",
    )
    args = parser.parse_args(argv)
    from revops_core.logs import configure_logging

    configure_logging("WARNING")  # the in-process measurements log like a server: stderr, JSON
    with tempfile.TemporaryDirectory(prefix="revops-bench-") as tmp:
        root = Path(tmp)
        subs = subjects()
        dirs = {s.name: prepare(s, root) for s in subs}
        print(f"cold starts: {args.starts} rounds over {len(subs)} servers …", file=sys.stderr)
        measure_cold_starts(subs, dirs, starts=args.starts)
        print("warm round trips, CPU and memory, interleaved …", file=sys.stderr)
        measure_warm(subs, dirs, calls=args.calls)
        core = core_throughput(root)
        extra: list[str] = []
        if not args.skip_portfolio:
            from revops_suite.bench_cs import portfolio_section

            extra = portfolio_section(
                root, no_op_round_trip=subs[0].results["read_round_trip"], postgres_url=args.postgres
            )
        if not args.skip_sales:
            from revops_suite.bench_sales import sales_section

            extra += [
                "",
                *sales_section(
                    root, no_op_round_trip=subs[0].results["read_round_trip"], postgres_url=args.postgres
                ),
            ]
    text = render(subs, core, extra)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
