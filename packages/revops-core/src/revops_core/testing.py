"""The verification harness every package's tests share (loaded as a pytest plugin).

- `backend` runs a test on SQLite (a file in a tmp dir) and, where `DATABASE_URL` points at a
  PostgreSQL server, again on PostgreSQL in a fresh schema. Redis tests use `REDIS_URL`.
- Missing services skip with a reason — unless `REVOPS_REQUIRE_SERVICES=1` (CI), where they fail.
- `make_settings()` builds isolated `Settings` (every toolset listed); `connect()` opens an
  in-process `mcp.Client`; `call_ok` / `call_error` call a tool and return what the client got.
- `count_rows`, `override_vendor` (the one vendor seam), `VENDOR_FAILURES` (the failure matrix
  every vendor client is tested against) and `snapshot_tools` (one snapshot file per tool).
Our own database and cache are never mocked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from revops_core.settings import Settings

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def services_required() -> bool:
    return os.environ.get("REVOPS_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, why: str) -> None:
    message = f"{what} unavailable: {why}"
    if services_required():
        pytest.fail(f"{message} (REVOPS_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def postgres_url() -> str:
    """A reachable PostgreSQL URL, or skip/fail."""
    url = os.environ.get("DATABASE_URL") or (DEFAULT_PG_URL if services_required() else None)
    if not url:
        _unavailable("PostgreSQL", "DATABASE_URL is not set")
    assert url is not None
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
            pass
    except Exception as exc:
        _unavailable("PostgreSQL", f"cannot connect ({type(exc).__name__})")
    return url


def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or (DEFAULT_REDIS_URL if services_required() else None)
    if not url:
        _unavailable("Redis", "REDIS_URL is not set")
    assert url is not None
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:
        _unavailable("Redis", f"cannot connect ({type(exc).__name__})")
    return url


class PgSchema:
    """A throw-away PostgreSQL schema; the URL routes every connection's search_path to it."""

    def __init__(self, base_url: str) -> None:
        import psycopg

        self.base = base_url.replace("postgresql+psycopg://", "postgresql://")
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        sep = "&" if "?" in self.base else "?"
        self.url = f"{self.base}{sep}options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def _migrated(url: str | None, data_dir: Path) -> None:
    from revops_core.db import Database, upgrade

    db = Database(Settings(data_dir=data_dir, database_url=url, redis_url=None, master_key=None))
    try:
        upgrade(db)
        if db.dialect == "sqlite":
            with db.engine.connect() as conn:  # fold the WAL into the file we are about to copy
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, built once per session: copying it (1 ms) replaces migrating (~1 s)."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    _migrated(None, folder)
    return folder / "revops.db"


class PgTemplate:
    """A migrated PostgreSQL database cloned per test with CREATE DATABASE … TEMPLATE (~0.1 s)."""

    def __init__(self, base_url: str) -> None:
        import psycopg

        self.base = base_url.replace("postgresql+psycopg://", "postgresql://")
        self.name = f"revops_tpl_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        _migrated(self._url(self.name), Path(tempfile.gettempdir()))  # data_dir is unused on PostgreSQL

    def _url(self, database: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.base)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def clone(self) -> tuple[str, str]:
        import psycopg

        name = f"revops_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        return name, self._url(name)

    def drop(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PgTemplate]:
    template = PgTemplate(postgres_url())
    try:
        yield template
    finally:
        template.drop(template.name)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """The DATABASE_URL for this run of the test: None (embedded SQLite) or a fresh PG database.

    Both start migrated (copied or cloned from a per-session template), like a server after its
    first start; tests of migrations themselves build their own empty database.
    """
    if request.param == "sqlite":
        data_dir = tmp_path / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), data_dir / "revops.db")
        yield None
        return
    template: PgTemplate = request.getfixturevalue("pg_template")
    name, url = template.clone()
    try:
        yield url
    finally:
        template.drop(name)


@pytest.fixture
def make_settings(tmp_path: Path, backend: str | None) -> Callable[..., Settings]:
    """Factory of isolated Settings on the current backend; keyword overrides win."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": backend,
            "redis_url": None,
            "master_key": None,
            "auto_migrate": True,
            "actor": "test:user",
            "toolsets": ["all"],
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[Any]:
    from revops_core.db import Database, upgrade

    database = Database(settings)
    upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, db: Any) -> Settings:
    """Point the `revops` CLI's Settings() at the test database (the `db` fixture migrated it)."""
    for name in list(os.environ):
        if name.startswith("REVOPS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REVOPS_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
    return settings


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `revops <argv>` in-process; (exit code, stdout, stderr) of that run only."""
    from revops_core.cli.main import main

    capsys.readouterr()  # what set-up printed is not the command's output
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(params=["legacy", "auto"])
def protocol_mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: the initialize handshake and 2026-07-28 discovery."""
    return str(request.param)


@asynccontextmanager
async def connect(server: Any, mode: str = "auto", **kwargs: Any) -> AsyncIterator[Any]:
    """An in-process `mcp.Client` on a RevOpsServer (or a bare MCPServer)."""
    from mcp import Client

    target = getattr(server, "mcp", server)
    async with Client(target, mode=mode, **kwargs) as client:
        yield client


def error_of(result: Any) -> dict[str, Any]:
    """The structured error a client received from an isError tool result."""
    assert result.is_error, f"expected an error, got {result.structured_content!r}"
    meta = result.meta or {}
    return dict(meta["revops/error"])


@pytest.fixture(autouse=True)
def _fresh_local_resilience_state() -> Iterator[None]:
    """Breakers, buckets and vendor holds live in a process-wide store; a wait recorded under one
    test's fake clock must not read as a years-long wait in the next test."""
    from revops_core.resilience import LOCAL_STORE

    LOCAL_STORE.reset()
    yield
    LOCAL_STORE.reset()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- calling tools


async def call_ok(client: Any, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool through the protocol; fail the test unless it succeeded; its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {result.content[0].text if result.content else result}"
    return dict(result.structured_content or {})


async def call_error(client: Any, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must fail; the structured error (code, message, field, hint) it returned."""
    result = await client.call_tool(tool, arguments)
    return error_of(result)


def count_rows(database: Any, model: Any, *where: Any) -> int:
    """Rows of a table (optionally filtered), read through the real database."""
    from sqlalchemy import func, select

    with database.session() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int(session.execute(query).scalar_one())


# --------------------------------------------------------------------------- vendors


def override_vendor(server: Any, vendor: Any, **options: Any) -> None:
    """The one vendor test seam: keyword options (transport, clock…) for every client of `vendor`.

    `vendor` is a `VendorSpec` or its provider name. Production never sets these.
    """
    provider = getattr(vendor, "provider", vendor)
    runtime = getattr(server, "runtime", server)
    runtime.vendor_options.setdefault(provider, {}).update(options)


VENDOR_FAILURES: dict[str, tuple[int | None, str]] = {
    # name: (HTTP status or None for a transport failure, the error code a client must receive)
    "unauthorised": (401, "integration_auth"),
    "rate_limited": (429, "rate_limited"),
    "server_error": (500, "integration_unavailable"),
    "timeout": (None, "integration_unavailable"),
    "malformed": (200, "integration_unavailable"),
}
"""The failure matrix: every vendor client maps each of these to the same client-visible code."""


# --------------------------------------------------------------------------- snapshots


def snapshot_tools(tools: list[dict[str, Any]], folder: Path, *, update: bool) -> list[str]:
    """Compare each tool with its own snapshot file (`<folder>/<tool>.json`); the differences.

    One file per tool, so servers (and people) editing different tools never touch one file.
    With `update`, write the current tools and remove snapshots of tools that no longer exist.
    """
    import json

    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    current = {tool["name"]: json.dumps(tool, indent=2, sort_keys=True) + "\n" for tool in tools}
    for name, rendered in current.items():
        path = folder / f"{name}.json"
        if update:
            if not path.exists() or path.read_text() != rendered:
                path.write_text(rendered)
        elif not path.exists():
            problems.append(f"{name}: new tool without a snapshot")
        elif path.read_text() != rendered:
            problems.append(f"{name}: tools/list entry changed")
    for path in sorted(folder.glob("*.json")):
        if path.stem not in current:
            if update:
                path.unlink()
            else:
                problems.append(f"{path.stem}: snapshot of a tool that is no longer listed")
    return problems
