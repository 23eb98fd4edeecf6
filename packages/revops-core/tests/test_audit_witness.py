"""The audit log's tail cannot be removed quietly: checkpoints witnessed outside the database.

A 10 000-entry chain is built once per backend through the real paths — bulk appends, 20 plain
`append` calls for the tail, and two automatic checkpoints (`Checkpointer`), which read the key
from the vault, pin its public half in the witness folder and publish to the witness file — then
copied for every test (SQLite: the data and witness folders; PostgreSQL: CREATE DATABASE …
TEMPLATE). Each test plays one attack and checks that `revops audit verify` catches it, and that
verifying writes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from revops_core.audit import (
    AuditCheckpoint,
    AuditInput,
    append,
    append_many,
    read_snapshot,
    row_hash,
    verify,
)
from revops_core.audit_auto import Checkpointer
from revops_core.audit_checkpoint import (
    checked_signing_key,
    checkpoint_and_publish,
    create_checkpoint,
)
from revops_core.audit_witness import (
    KEY_PINNED_ACTION,
    PostgresWitness,
    RedisWitness,
    configured_witnesses,
    encode_public_key,
    pinned_public_keys,
    publish,
    verify_witnessed,
)
from revops_core.cli.main import main
from revops_core.db import Database, upgrade
from revops_core.errors import ConfigurationError, IntegrityError
from revops_core.settings import Settings
from revops_core.testing import postgres_url, redis_url
from revops_core.vault import SIGNING_FIELD, SIGNING_PROVIDER, Vault

N = 10_000
FIRST_CHECKPOINT = 5_000  # bulk 4 998, then vault.set (the key is generated) and audit.key_pinned
TAIL = 20  # entries written one by one through `append`
COLUMNS = "seq, tenant, ts, actor, action, target, details, prev_hash, hash"
AUDIT_TABLES = ("core_audit", "core_audit_checkpoint", "core_audit_segment", "core_vault_secret")

pytestmark = pytest.mark.slow


def _items(start: int, count: int) -> Iterator[AuditInput]:
    for i in range(start, start + count):
        yield AuditInput(
            actor=f"user:{i % 7}",
            action="cs.update_client",
            target=f"cs_client:{i}",
            details={"arguments": {"client_id": i}},
        )


def _settings(root: Path, url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "database_url": url,
        "redis_url": None,
        "master_key": None,
        "auto_migrate": True,
        "actor": "test:witness",
    }
    return Settings(**(values | overrides))


def _pg_admin(base: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(statement)


def _pg_url(base: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(base)._replace(path=f"/{database}"))


@dataclass
class Template:
    root: Path
    pg_base: str | None
    pg_name: str | None


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    root = tmp_path_factory.mktemp("witness-template")
    base = pg_name = None
    if request.param == "postgres":
        base = postgres_url().replace("postgresql+psycopg://", "postgresql://")
        pg_name = f"revops_wtpl_{uuid.uuid4().hex[:10]}"
        _pg_admin(base, f'CREATE DATABASE "{pg_name}"')
    settings = _settings(root, _pg_url(base, pg_name) if base and pg_name else None)
    db = Database(settings)
    try:
        upgrade(db)
        checkpointer = Checkpointer(settings, lambda: db)
        with db.session(write=True) as s:
            append_many(s, _items(1, FIRST_CHECKPOINT - 2))
        first = checkpointer.checkpoint_now()
        with db.session(write=True) as s:
            append_many(s, _items(FIRST_CHECKPOINT + 1, N - FIRST_CHECKPOINT - TAIL))
        for i in range(N - TAIL + 1, N + 1):
            with db.session(write=True) as s:
                append(s, actor="user:tail", action="cs.update_client", target=f"cs_client:{i}")
        last = checkpointer.checkpoint_now()
        assert first is not None
        assert last is not None
        assert (first.seq, last.seq) == (FIRST_CHECKPOINT, N)
    finally:
        db.dispose()  # SQLite folds its WAL into the file; PostgreSQL frees the template
    yield Template(root, base, pg_name)
    if base and pg_name:
        _pg_admin(base, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@dataclass
class Log:
    settings: Settings
    db: Database

    @property
    def witness_file(self) -> Path:
        return self.settings.data_dir.parent / "data-witness" / "audit-checkpoints.jsonl"

    @property
    def key_file(self) -> Path:
        return self.settings.data_dir.parent / "data-witness" / "audit-signing.pub"

    def verify(self) -> Any:
        return verify_witnessed(self.db, self.settings)

    def sql(self, statement: str, params: Any = None) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text(statement), params or {})

    def count(self, table: str = "core_audit") -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    def fingerprint(self) -> dict[str, str]:
        """Everything verification could change: the database (SQLite: every byte of every file;
        PostgreSQL: row counts and checksums of the audit and vault tables) and the witness folder."""
        out: dict[str, str] = {}
        if self.db.dialect == "sqlite":
            self.db.dispose()  # nothing pending in a WAL: the files are the whole database
            files = sorted(self.settings.data_dir.iterdir())
        else:
            with self.db.engine.connect() as conn:
                for table in AUDIT_TABLES:
                    digest = "md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                    row = conn.execute(text(f"SELECT count(*), {digest} FROM {table} t")).one()
                    out[table] = f"{row[0]}:{row[1]}"
            files = []
        files += sorted(self.witness_file.parent.iterdir())
        for path in files:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return out


@pytest.fixture
def log(template: Template, tmp_path: Path) -> Iterator[Log]:
    """A private copy of the 10 000-entry log (database, vault key file, witness folder)."""
    for folder in ("data", "data-witness"):
        shutil.copytree(template.root / folder, tmp_path / folder)
    url = clone = None
    if template.pg_base and template.pg_name:
        clone = f"revops_wt_{uuid.uuid4().hex[:12]}"
        _pg_admin(template.pg_base, f'CREATE DATABASE "{clone}" TEMPLATE "{template.pg_name}"')
        url = _pg_url(template.pg_base, clone)
    db = Database(_settings(tmp_path, url))
    try:
        yield Log(db.settings, db)
    finally:
        db.dispose()
        if template.pg_base and clone:
            _pg_admin(template.pg_base, f'DROP DATABASE IF EXISTS "{clone}" WITH (FORCE)')


@pytest.fixture
def cli(log: Log, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """`revops …` in-process against the log's copy."""
    for name in list(os.environ):
        if name.startswith("REVOPS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REVOPS_DATA_DIR", str(log.settings.data_dir))
    if log.settings.database_url:
        monkeypatch.setenv("DATABASE_URL", log.settings.database_url)

    def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --------------------------------------------------------------------------- attack helpers


def _aware(ts: str | datetime) -> datetime:
    value = datetime.fromisoformat(ts) if isinstance(ts, str) else ts  # SQLite: the stored text
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rewrite_from(conn: Connection, first: int, actor: str = "attacker") -> None:
    """Recompute a perfectly consistent chain from entry `first` on, with every actor forged."""
    prev = conn.execute(text("SELECT hash FROM core_audit WHERE seq = :s"), {"s": first - 1}).scalar()
    prev = prev or "0" * 64
    rows = [
        dict(r)
        for r in conn.execute(
            text(f"SELECT {COLUMNS} FROM core_audit WHERE seq >= :s ORDER BY seq"), {"s": first}
        ).mappings()
    ]
    for row in rows:
        row["actor"] = actor
        row["prev_hash"] = prev
        row["hash"] = prev = row_hash(
            prev, row["tenant"], _aware(row["ts"]), actor, row["action"], row["target"], row["details"]
        )
    conn.execute(text("DELETE FROM core_audit WHERE seq >= :s"), {"s": first})
    values = ", ".join(":" + c.strip() for c in COLUMNS.split(","))
    conn.execute(text(f"INSERT INTO core_audit ({COLUMNS}) VALUES ({values})"), rows)


def delete_tail(log: Log, keep: int) -> None:
    log.sql("DELETE FROM core_audit WHERE seq > :s", {"s": keep})


def delete_checkpoint_rows(log: Log) -> None:
    log.sql("DELETE FROM core_audit_checkpoint")


def delete_vault_key(log: Log) -> None:
    log.sql("DELETE FROM core_vault_secret WHERE provider = 'revops-signing'")


# --------------------------------------------------------------------------- an intact log


def test_untouched_log_verifies_against_the_witness(log: Log) -> None:
    report = log.verify()
    assert report.ok, report.message
    assert (report.entries_checked, report.head_seq, report.witnessed_seq) == (N, N, N)
    assert report.checkpoints_checked == 2
    assert report.signatures_checked
    assert report.witnesses == [f"file:{log.witness_file}"]
    assert len(log.witness_file.read_text().splitlines()) == 2
    with log.db.engine.connect() as conn:
        pinned = conn.execute(
            text("SELECT seq FROM core_audit WHERE action = :a"), {"a": KEY_PINNED_ACTION}
        ).scalar_one()
    assert pinned == FIRST_CHECKPOINT


def test_verify_is_read_only_and_needs_only_the_public_key(
    log: Log, cli: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Without the vault's key-encryption key nothing sealed can be opened: verify never tries.
    (log.settings.data_dir / "vault-keyring.json").rename(tmp_path / "elsewhere.json")
    before = log.fingerprint()
    code, out, err = cli(capsys, "audit", "verify")
    assert code == 0, err
    assert f"OK: {N} entries verified up to seq {N}." in out
    assert f"Latest witnessed checkpoint: seq {N};" in out
    assert log.fingerprint() == before
    assert not (log.settings.data_dir / "vault-keyring.json").exists()


def test_verification_snapshot_refuses_writes(log: Log) -> None:
    with pytest.raises(DBAPIError), read_snapshot(log.db) as conn:
        conn.execute(text("DELETE FROM core_audit WHERE seq = 1"))
    assert log.count() == N
    # The pooled connection is writable again for everyone else.
    with log.db.session(write=True) as s:
        append(s, actor="u", action="after")
    assert log.count() == N + 1


# --------------------------------------------------------------------------- the attacks


def test_deleting_tail_rows_is_caught_and_verify_does_not_extend_the_cut(
    log: Log, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    delete_tail(log, N - 3)
    before = log.fingerprint()
    code, _, err = cli(capsys, "audit", "verify")
    assert code == 1
    assert f"TAMPERED: first_bad_seq={N - 2} kind=truncated" in err
    assert (
        f"entries {N - 2}..{N} are missing: a signed checkpoint covers entry {N} but the log ends at {N - 3}"
    ) in err
    assert log.fingerprint() == before  # no vault.decrypt entry grew the chain from the cut
    assert log.count() == N - 3


def test_deleting_tail_and_checkpoint_rows_is_caught(log: Log) -> None:
    delete_tail(log, N - 3)
    delete_checkpoint_rows(log)
    assert verify(log.db).ok  # the database alone can no longer tell
    report = log.verify()
    assert (report.ok, report.kind, report.first_bad_seq, report.head_seq) == (
        False,
        "truncated",
        N - 2,
        N - 3,
    )
    assert f"held by file:{log.witness_file}:2" in (report.message or "")


def test_deleting_checkpoint_rows_alone_is_caught(log: Log) -> None:
    delete_checkpoint_rows(log)
    report = log.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "checkpoint_missing", FIRST_CHECKPOINT)
    assert report.entries_checked == N


def test_deleting_the_key_row_and_rewriting_the_checkpoint_is_caught(log: Log) -> None:
    delete_tail(log, N - 3)
    delete_checkpoint_rows(log)
    delete_vault_key(log)
    # The suite's own signer refuses the key the vault now generates: it is not the pinned one.
    with pytest.raises(IntegrityError, match="not the pinned key"):
        checkpoint_and_publish(log.db, log.settings)
    # The intruder signs the cut head with a key of their own and even publishes it.
    forged = create_checkpoint(log.db, Ed25519PrivateKey.generate())
    publish(forged, configured_witnesses(log.settings))
    report = log.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "bad_signature", forged.seq)
    assert "not a trusted key" in (report.message or "")


def test_replacing_the_key_and_rewriting_the_chain_is_caught(log: Log) -> None:
    delete_vault_key(log)
    intruder = Ed25519PrivateKey.generate()
    raw = intruder.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    vault = Vault(log.db, log.settings)
    vault.set(SIGNING_PROVIDER, "audit-signing", {SIGNING_FIELD: base64.b64encode(raw).decode()})
    with log.db.engine.begin() as conn:
        rewrite_from(conn, N - 99)
    delete_checkpoint_rows(log)
    with pytest.raises(IntegrityError, match="not the pinned key"):
        checked_signing_key(log.db, log.settings)
    publish(create_checkpoint(log.db, intruder), configured_witnesses(log.settings))
    report = log.verify()
    assert (report.ok, report.kind) == (False, "bad_signature")
    # Replacing the pinned key file too: the earlier witnessed checkpoints now fail instead.
    log.key_file.write_bytes(
        intruder.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    report = log.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "bad_signature", FIRST_CHECKPOINT)


@pytest.mark.parametrize("first", [N - 99, 1], ids=["tail", "whole-chain"])
def test_rewriting_the_chain_is_caught(log: Log, first: int) -> None:
    with log.db.engine.begin() as conn:
        rewrite_from(conn, first)
    delete_checkpoint_rows(log)
    assert verify(log.db).ok  # every link holds
    report = log.verify()
    bad = N if first > FIRST_CHECKPOINT else FIRST_CHECKPOINT
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "rewritten", bad)
    assert report.suspect_from_seq == (FIRST_CHECKPOINT + 1 if first > FIRST_CHECKPOINT else 1)


def test_deleting_the_pinned_key_file_is_caught(log: Log) -> None:
    log.key_file.unlink()
    report = log.verify()
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "key_missing", FIRST_CHECKPOINT)
    # …and the signer will not quietly pin a key again.
    with pytest.raises(ConfigurationError, match="Refusing to pin"):
        checked_signing_key(log.db, log.settings)


def test_wiping_the_witness_file_is_caught(log: Log) -> None:
    delete_tail(log, N - 3)
    delete_checkpoint_rows(log)
    log.witness_file.unlink()
    report = log.verify()
    # The key-pinning entry is part of the chain: the log says it was checkpointed.
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "witness_missing", FIRST_CHECKPOINT)


def test_a_forged_witness_line_is_caught(log: Log) -> None:
    with log.witness_file.open("a") as out:
        out.write('{"type":"revops.audit.checkpoint","seq":"x"}\n')
    report = log.verify()
    assert (report.ok, report.kind) == (False, "bad_signature")
    assert "line 3 is not a checkpoint" in (report.message or "")


def test_a_torn_last_line_is_not_a_checkpoint(log: Log) -> None:
    with log.witness_file.open("a") as out:
        out.write('{"type":"revops.audit.checkpoint","se')  # a crash in the middle of a write
    report = log.verify()
    assert report.ok, report.message
    assert report.witnessed_seq == N


# --------------------------------------------------------------------------- remote witnesses


def _republish(log: Log, **overrides: Any) -> Settings:
    """The log's settings with a remote witness, holding the two checkpoints the file holds."""
    settings = log.settings.model_copy(update=overrides)
    with log.db.session() as s:
        rows = list(s.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))))
    remote = configured_witnesses(settings)[1:]
    assert len(remote) == 1
    for cp in rows:
        assert publish(cp, remote).failed == []
    return settings


def test_redis_witness_catches_truncation_when_the_file_is_wiped(log: Log) -> None:
    name = f"test-{uuid.uuid4().hex[:10]}"
    url = redis_url()
    settings = _republish(log, audit_witness_redis_url=url, audit_witness_name=name)
    try:
        delete_tail(log, N - 3)
        delete_checkpoint_rows(log)
        log.witness_file.unlink()
        report = verify_witnessed(log.db, settings)
        assert (report.ok, report.kind, report.first_bad_seq) == (False, "truncated", N - 2)
        assert f"revops:audit-witness:{name}" in (report.message or "")
    finally:
        import redis

        client = redis.Redis.from_url(url)
        client.delete(f"revops:audit-witness:{name}")
        client.close()


@pytest.fixture
def witness_database() -> Iterator[str]:
    base = postgres_url().replace("postgresql+psycopg://", "postgresql://")
    name = f"revops_witness_{uuid.uuid4().hex[:10]}"
    _pg_admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(base, name)
    finally:
        _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_witness_catches_truncation_and_is_append_only(log: Log, witness_database: str) -> None:
    import psycopg

    settings = _republish(log, audit_witness_database_url=witness_database)
    delete_tail(log, N - 3)
    delete_checkpoint_rows(log)
    log.witness_file.unlink()
    report = verify_witnessed(log.db, settings)
    assert (report.ok, report.kind, report.first_bad_seq) == (False, "truncated", N - 2)
    assert "revops_audit_witness" in (report.message or "")
    for statement in (
        "DELETE FROM revops_audit_witness",
        "UPDATE revops_audit_witness SET seq = 1",
        "TRUNCATE revops_audit_witness",
    ):
        with psycopg.connect(witness_database) as conn, pytest.raises(psycopg.errors.RaiseException):
            conn.execute(statement)
    assert len(PostgresWitness(witness_database, "revops").read()) == 2


def test_the_witness_database_cannot_be_the_main_one(tmp_path: Path) -> None:
    url = postgres_url()
    settings = _settings(tmp_path, url, audit_witness_database_url=url)
    with pytest.raises(ConfigurationError, match="meant to witness"):
        configured_witnesses(settings)


def test_the_witness_folder_cannot_be_the_data_folder(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None, audit_witness_dir=tmp_path / "data")
    with pytest.raises(ConfigurationError, match="inside the data folder"):
        configured_witnesses(settings)


def test_unreachable_redis_witness_fails_verification(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None, audit_witness_redis_url="redis://127.0.0.1:1/0")
    db = Database(settings)
    try:
        upgrade(db)
        report = verify_witnessed(db, settings)
    finally:
        db.dispose()
    assert (report.ok, report.kind) == (False, "witness_missing")
    assert report.witnesses[1] == RedisWitness("redis://127.0.0.1:1/0", "revops").name


# --------------------------------------------------------------------------- automatic checkpoints


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Log]:
    settings = _settings(
        tmp_path, None, audit_checkpoint_every_entries=5, audit_checkpoint_every_seconds=3600
    )
    db = Database(settings)
    upgrade(db)
    try:
        yield Log(settings, db)
    finally:
        db.dispose()


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60  # a bound for a stuck thread, not a measured time
    while not condition():
        assert time.monotonic() < deadline, "the checkpointer did not act"
        time.sleep(0.01)


def _write(db: Database, count: int) -> None:
    for i in range(count):
        with db.session(write=True) as s:
            append(s, actor="u", action="t.write", target=f"t:{i}")


def test_every_n_entries_and_at_shutdown_without_running_the_command(fresh: Log) -> None:
    checkpointer = Checkpointer(fresh.settings, lambda: fresh.db)
    checkpointer.start()
    try:
        _wait_for(lambda: checkpointer._listening)
        _write(fresh.db, 4)
        assert checkpointer.made == []  # the append path only counts; nothing is signed below N
        _write(fresh.db, 1)
        _wait_for(lambda: len(checkpointer.made) == 1)
        # The first checkpoint read the key (vault.set) and pinned it (audit.key_pinned).
        assert checkpointer.made[0].seq == 7
        _write(fresh.db, 2)
    finally:
        checkpointer.stop()
    assert [cp.seq for cp in checkpointer.made] == [7, 9]  # the shutdown checkpoint covers the rest
    lines = fresh.witness_file.read_text().splitlines()
    assert len(lines) == 2
    report = fresh.verify()
    assert (report.ok, report.witnessed_seq, report.head_seq) == (True, 9, 9)


def test_the_timer_checkpoints_entries_below_n(fresh: Log) -> None:
    settings = fresh.settings.model_copy(update={"audit_checkpoint_every_seconds": 0.05})
    checkpointer = Checkpointer(settings, lambda: fresh.db)
    _write(fresh.db, 1)
    checkpointer.start()
    try:
        _wait_for(lambda: len(checkpointer.made) == 1)
    finally:
        checkpointer.stop()
    assert checkpointer.made[0].seq == 3
    assert fresh.verify().witnessed_seq == 3


def test_nothing_to_checkpoint_reads_no_key(fresh: Log) -> None:
    checkpointer = Checkpointer(fresh.settings, lambda: fresh.db)
    checkpointer.start()
    checkpointer.stop()
    assert checkpointer.made == []
    assert fresh.count("core_vault_secret") == 0
    assert not fresh.key_file.exists()
    report = fresh.verify()
    assert (report.ok, report.witnessed_seq) == (True, None)


def test_a_replaced_key_is_refused_and_logged_not_used(fresh: Log) -> None:
    _write(fresh.db, 1)
    assert Checkpointer(fresh.settings, lambda: fresh.db).checkpoint_now() is not None
    delete_vault_key(fresh)
    _write(fresh.db, 1)
    checkpointer = Checkpointer(fresh.settings, lambda: fresh.db)
    checkpointer.stop()  # the shutdown checkpoint
    assert checkpointer.made == []
    assert "not the pinned key" in (checkpointer.last_error or "")
    assert len(fresh.witness_file.read_text().splitlines()) == 1


def test_cli_verify_warns_until_the_first_checkpoint(
    fresh: Log, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("REVOPS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REVOPS_DATA_DIR", str(fresh.settings.data_dir))
    _write(fresh.db, 2)
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "OK: 2 entries verified up to seq 2." in out
    assert "WARNING: no checkpoint has been witnessed yet" in out
    assert main(["audit", "checkpoint"]) == 0
    out = capsys.readouterr().out
    assert f"Published to file:{fresh.witness_file}." in out
    assert main(["audit", "key"]) == 0
    out = capsys.readouterr().out
    (pinned,) = pinned_public_keys(fresh.settings).values()
    assert out.splitlines()[-1] == encode_public_key(pinned)
    # Pinned through the setting instead of the file, the same log verifies.
    monkeypatch.setenv("REVOPS_AUDIT_PUBLIC_KEY", out.splitlines()[-1])
    fresh.key_file.unlink()
    assert main(["audit", "verify"]) == 0
    assert "Latest witnessed checkpoint: seq 4;" in capsys.readouterr().out


# --------------------------------------------------------------------------- the server hook


SERVER = textwrap.dedent(
    '''
    import sys
    from pydantic import BaseModel, Field
    from revops_core.entrypoint import run
    from revops_core.server import Call, Toolset, build_server

    class Done(BaseModel):
        ok: bool = Field(description="Always true.")

    ts = Toolset("demo", "test tools")

    @ts.tool(tier="write", idempotent=False)
    def touch(call: Call) -> Done:
        """Write nothing but the audit entry."""
        return Done(ok=True)

    def create_server(settings, *, defer=False):
        return build_server("wtest", [ts], settings=settings, defer=defer, check_schema=True)

    sys.exit(run("wtest", create_server, sys.argv[1:]))
    '''
)


def _server_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("REVOPS_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update({"REVOPS_DATA_DIR": str(tmp_path / "data"), "REVOPS_ACTOR": "test:server"})
    return env


@pytest.mark.anyio
async def test_a_stdio_server_checkpoints_at_shutdown(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    script = tmp_path / "server.py"
    script.write_text(SERVER)
    params = StdioServerParameters(command=sys.executable, args=[str(script)], env=_server_env(tmp_path))
    async with Client(params, mode="legacy") as client:
        for _ in range(3):
            result = await client.call_tool("touch", {})
            assert not result.is_error
    log = Log(_settings(tmp_path, None), Database(_settings(tmp_path, None)))
    try:
        report = log.verify()
        # 3 tool calls, then the shutdown checkpoint's vault.set and audit.key_pinned entries.
        assert (report.ok, report.head_seq, report.witnessed_seq) == (True, 5, 5), report.message
    finally:
        log.db.dispose()


def test_an_http_server_checkpoints_when_stopped_with_sigterm(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    db = Database(settings)
    upgrade(db)
    _write(db, 3)  # entries another process wrote: the shutdown checkpoint looks at the head
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), "--transport", "http", "--port", str(port)],
        env=_server_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        import httpx

        def healthy() -> bool:
            assert proc.poll() is None, "the server exited"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(healthy)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    try:
        report = verify_witnessed(db, settings)
    finally:
        db.dispose()
    assert (report.ok, report.head_seq, report.witnessed_seq) == (True, 5, 5), report.message
