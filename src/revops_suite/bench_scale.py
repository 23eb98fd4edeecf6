"""What the at-scale benches share: the backends they run on (SQLite always, a scratch PostgreSQL
database when one answers), timings with their spread, and a server driven over stdio."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DATABASE = "revops_bench"


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str | None  # None: the embedded SQLite file in the data directory


@contextmanager
def backends(postgres_url: str | None) -> Iterator[list[Backend]]:
    """SQLite always; PostgreSQL on a scratch database when the server answers (dropped after)."""
    found = [Backend("SQLite", None)]
    admin = None
    if postgres_url:
        try:
            import psycopg

            admin = psycopg.connect(
                postgres_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
            )
        except Exception:  # unreachable PostgreSQL: report SQLite only (the table names the backends)
            admin = None
    if admin is not None:
        base = postgres_url.rsplit("/", 1)[0] if postgres_url else ""
        found.append(Backend("PostgreSQL", f"{base}/{BENCH_DATABASE}"))
    try:
        yield found
    finally:
        if admin is not None:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
            admin.close()


def fresh(backend: Backend, postgres_url: str | None) -> None:
    """An empty database for the next load."""
    if backend.database_url is None or not postgres_url:
        return
    import psycopg

    with psycopg.connect(
        postgres_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")


@dataclass
class Timing:
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def cell(self, unit: str = "s") -> str:
        scale, digits = (1000, 0) if unit == "ms" else (1, 2)
        lo, mid, hi = (v * scale for v in (min(self.runs), self.median, max(self.runs)))
        return f"{mid:,.{digits}f} {unit} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def timed(peer: Any, tool: str, args: dict[str, Any], repeats: int) -> tuple[Timing, dict[str, Any]]:
    runs: list[float] = []
    result: dict[str, Any] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = peer.call(tool, args)
        runs.append(time.perf_counter() - t0)
    return Timing(runs), result


def peer(data_dir: Path, backend: Backend, server: str = "cs", *args: str) -> Any:
    """The `revops-<server>` console script on `backend`, initialised and with its tools loaded."""
    from revops_suite.bench import StdioPeer, _bin, _env

    env = _env(data_dir)
    if backend.database_url is not None:
        env["DATABASE_URL"] = backend.database_url
    peer = StdioPeer([_bin(f"revops-{server}"), *args], env)
    peer.initialize()
    peer.request("tools/list")  # the server loads its tools after the handshake: not part of a call
    return peer
