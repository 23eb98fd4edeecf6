"""Database engine, transactions, time and money types, and schema migrations.

SQLite (WAL, foreign keys, busy timeout) is the embedded default; PostgreSQL via psycopg 3 when
`DATABASE_URL` is set. A *write* transaction on SQLite starts with `BEGIN IMMEDIATE`, so two writers
serialise at the start instead of failing at commit — the audit chain relies on that.

Migrations are ordered steps per component (`core`, `cs`, `sales`, …) recorded in
`core_schema_version`. Components are discovered through the `revops.migrations` entry point group,
so `revops db upgrade` upgrades whatever servers are installed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, TypeDecorator, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Field, Session, SQLModel

from revops_core.errors import ConfigurationError
from revops_core.params import MAX_ID as MAX_ID  # re-exported; the bound lives with the parameters
from revops_core.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_field(*, nullable: bool = False, index: bool = False, default_now: bool = False) -> Any:
    """A SQLModel field for an aware UTC timestamp."""
    from sqlalchemy import Column

    return Field(
        default_factory=utcnow if default_now else None,
        sa_column=Column(UTCDateTime(), nullable=nullable, index=index),
    )


# --------------------------------------------------------------------------- engine


class Database:
    """One engine plus transaction helpers. Create one per process (or per test)."""

    def __init__(self, settings: Settings, *, echo: bool = False) -> None:
        self.settings = settings
        self.url = settings.sqlalchemy_url
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        # One bound on lock waits for both backends: past it a write answers database_busy.
        busy_ms = round(settings.db_busy_timeout_seconds * 1000)
        if self.dialect == "sqlite":
            _private_sqlite_files(settings.data_dir, self.url)
            self.engine = create_engine(
                self.url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": settings.db_busy_timeout_seconds},
            )
            _install_sqlite_pragmas(self.engine, busy_timeout_ms=busy_ms)
        else:
            self.engine = create_engine(
                self.url,
                echo=echo,
                pool_size=5,
                max_overflow=10,
                pool_pre_ping=True,
                pool_recycle=1800,
            )
            _install_pg_lock_timeout(self.engine, lock_timeout_ms=busy_ms)
        self._writer = self.engine.execution_options(revops_write=True)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception."""
        bind = self._writer if write else self.engine
        # Settings ride along so helpers such as events.publish can wake Redis consumers after commit.
        with Session(bind, expire_on_commit=False, info={"revops_settings": self.settings}) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _private_sqlite_files(data_dir: Path, url: str) -> None:
    """The data dir 0700 when we create it; the database file and its -wal/-shm 0600.

    The file is created empty with 0600 before SQLite opens it (an empty file is an empty
    database), and files an earlier version left looser are tightened. SQLite gives the -wal and
    -shm files it creates later the database file's mode, so no process-wide umask is needed.
    An existing data dir's mode is the operator's (`revops doctor` warns when others can list it).
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:") or os.name != "posix":
        return
    path = Path(database)
    with suppress(OSError):  # exists already; or a folder SQLite itself will report on connect
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        with suppress(FileNotFoundError, PermissionError):  # PermissionError: a file we do not own
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)


def _install_pg_lock_timeout(engine: Engine, *, lock_timeout_ms: int) -> None:
    # Set per connection rather than as a URL `options` parameter, which would replace the caller's
    # own options (a search_path, for one). Committed, so the pool's reset rollback keeps it.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        dbapi_connection.commit()


def _install_sqlite_pragmas(engine: Engine, *, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred and too late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get("revops_write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


_BUSY_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})
"""PostgreSQL: serialization failure, deadlock, lock not available, statement timeout."""


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means "another transaction holds what we need" (retryable)."""
    if not isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
        return True
    return getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES


# --------------------------------------------------------------------------- migrations


def add_missing_columns(connection: Connection, table: str, columns: Sequence[str]) -> None:
    """Add the model's `columns` of `table` that a database created before them lacks, typed as
    the model declares them (a later migration step; new databases have them from `create_all`)."""
    from sqlalchemy import inspect

    present = {column["name"] for column in inspect(connection).get_columns(table)}
    model = SQLModel.metadata.tables[table]
    for name in columns:
        if name not in present:
            kind = model.columns[name].type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(f'ALTER TABLE {table} ADD COLUMN "{name}" {kind}')


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


@dataclass(frozen=True)
class Component:
    """A schema owner: `core` or one server. Steps must be numbered 1..n without gaps."""

    name: str
    steps: Sequence[Migration]

    @property
    def head(self) -> int:
        return max((m.version for m in self.steps), default=0)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "core_schema_version"

    component: str = Field(primary_key=True, max_length=40)
    version: int
    applied_at: datetime = utc_field(default_now=True)


def create_tables(*tables: Any) -> Callable[[Connection], None]:
    """A migration step that creates the given SQLModel tables (and their indexes)."""

    def step(connection: Connection) -> None:
        SQLModel.metadata.create_all(connection, tables=[t.__table__ for t in tables])

    return step


def discover_components() -> list[Component]:
    """`core` first, then every installed server, via the `revops.migrations` entry points."""
    from revops_core.schema import CORE

    found: dict[str, Component] = {CORE.name: CORE}
    for ep in entry_points(group="revops.migrations"):
        component = ep.load()
        found[component.name] = component
    return [found["core"], *(found[k] for k in sorted(found) if k != "core")]


_upgrade_lock = threading.Lock()


def current_versions(db: Database) -> dict[str, int]:
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT component, version FROM core_schema_version")).all()
    except OperationalError:
        return {}
    except Exception as exc:  # psycopg's UndefinedTable arrives as ProgrammingError
        if "core_schema_version" in str(exc):
            return {}
        raise
    return {str(r[0]): int(r[1]) for r in rows}


def pending_migrations(
    db: Database, components: Sequence[Component] | None = None
) -> list[tuple[str, Migration]]:
    components = components if components is not None else discover_components()
    have = current_versions(db)
    todo: list[tuple[str, Migration]] = []
    for comp in components:
        for step in sorted(comp.steps, key=lambda m: m.version):
            if step.version > have.get(comp.name, 0):
                todo.append((comp.name, step))
    return todo


def upgrade(db: Database, components: Sequence[Component] | None = None) -> list[str]:
    """Apply every pending step, each in its own transaction with its version bump. Idempotent."""
    applied: list[str] = []
    with _upgrade_lock:
        with db.engine.begin() as conn:
            # SQLModel sets __table__ on table classes at class creation; its stubs do not declare it.
            SQLModel.metadata.create_all(conn, tables=[SchemaVersion.__table__])  # type: ignore[attr-defined]
        for component, step in pending_migrations(db, components):
            with db.engine.execution_options(revops_write=True).begin() as conn:
                if db.dialect == "postgresql":
                    # Two processes upgrading at once: the second waits, then sees the work done.
                    conn.execute(text("SELECT pg_advisory_xact_lock(7411001)"))
                    row = conn.execute(
                        text("SELECT version FROM core_schema_version WHERE component = :c"), {"c": component}
                    ).first()
                    if row is not None and int(row[0]) >= step.version:
                        continue
                step.apply(conn)
                conn.execute(text("DELETE FROM core_schema_version WHERE component = :c"), {"c": component})
                conn.execute(
                    text(
                        "INSERT INTO core_schema_version (component, version, applied_at) VALUES (:c, :v, :t)"
                    ),
                    {"c": component, "v": step.version, "t": utcnow()},
                )
            applied.append(f"{component} v{step.version}: {step.description}")
    return applied


def ensure_schema(db: Database, components: Sequence[Component] | None = None) -> None:
    """Start-up check: migrate when allowed (embedded default), else refuse to serve a stale schema."""
    todo = pending_migrations(db, components)
    if not todo:
        return
    if db.settings.should_auto_migrate:
        upgrade(db, components)
        return
    names = ", ".join(f"{c} v{m.version}" for c, m in todo)
    raise ConfigurationError(
        f"The database schema is behind this version ({names} pending).",
        hint="Run `revops db upgrade` against this DATABASE_URL, then start the server again.",
    )
