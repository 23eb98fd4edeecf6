"""Witnesses outside the database, the pinned public key, and the read-only `verify_witnessed`.

A checkpoint stored only in the database it vouches for protects nothing: whoever can delete the
log's tail can delete the checkpoint too. So, as transparency logs do, every signed checkpoint is
also *published* to witnesses that live elsewhere, and verification trusts only a public key that
is pinned outside the database:

- the **file witness** (always on): `audit-checkpoints.jsonl`, one JSON line per checkpoint,
  appended with O_APPEND and fsynced, in `audit_witness_dir` (default `<data_dir>-witness`, a
  sibling of the data folder, never the folder holding the SQLite file);
- a **Redis list** (`audit_witness_redis_url`; key `revops:audit-witness:<audit_witness_name>`);
- a **second PostgreSQL database** (`audit_witness_database_url`; table `revops_audit_witness`,
  whose triggers refuse UPDATE, DELETE and TRUNCATE).

The public key is `audit_public_key` (base64, from config or environment) or else the PEM file
`audit_public_key_file` (default `audit-signing.pub` in the witness folder), written by the first
checkpoint. Verification reads these and the database and writes nothing anywhere: it never
touches the vault, so it needs neither the private key nor the vault's key-encryption key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from sqlalchemy import func
from sqlalchemy import select as sa_select

from revops_core.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditSegment,
    VerifyReport,
    WitnessedCheckpoint,
    key_id_of,
    read_snapshot,
    verify,
)
from revops_core.db import Database
from revops_core.errors import ConfigurationError, IntegrityError
from revops_core.logs import get_logger
from revops_core.settings import Settings

WITNESS_FILE_NAME: Final = "audit-checkpoints.jsonl"
PUBLIC_KEY_FILE_NAME: Final = "audit-signing.pub"
CHECKPOINT_TYPE: Final = "revops.audit.checkpoint"
KEY_PINNED_ACTION: Final = "audit.key_pinned"
PG_TABLE: Final = "revops_audit_witness"
PG_LOCK_KEY: Final = 7411005  # advisory lock for creating the witness table (db 7411001, audit …002)

log = get_logger(__name__)


class WitnessError(Exception):
    """A witness could not be read (`witness_missing`) or holds a malformed record (`bad_signature`)."""

    def __init__(self, source: str, message: str, kind: Literal["witness_missing", "bad_signature"]) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.kind = kind


# --------------------------------------------------------------------------- locations


def witness_dir(settings: Settings) -> Path:
    """The folder of the file witness and the pinned public key (beside the data folder)."""
    if settings.audit_witness_dir is not None:
        return settings.audit_witness_dir
    data = settings.data_dir
    return data.parent / f"{data.name}-witness"


def public_key_file(settings: Settings) -> Path:
    return settings.audit_public_key_file or witness_dir(settings) / PUBLIC_KEY_FILE_NAME


def _check_separate(settings: Settings, path: Path, what: str) -> None:
    """On the embedded default the data folder holds the database: a witness there is no witness."""
    if not settings.is_embedded:
        return
    data = settings.data_dir.resolve()
    folder = path.resolve()
    if folder == data or data in folder.parents:
        raise ConfigurationError(
            f"The audit {what} ({path}) is inside the data folder, beside the database it protects.",
            field="audit_witness_dir",
            hint="Point REVOPS_AUDIT_WITNESS_DIR (and the key file) at a folder outside REVOPS_DATA_DIR.",
        )


def _make_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


# --------------------------------------------------------------------------- checkpoint records


def checkpoint_document(cp: AuditCheckpoint) -> dict[str, Any]:
    """The published form of a checkpoint: the signed fields plus the signature."""
    return {**cp.signed_document(), "signature": cp.signature}


def checkpoint_from_document(doc: Any) -> AuditCheckpoint:
    """Parse a published checkpoint; ValueError if it is not one (the signature is checked later)."""
    if not isinstance(doc, dict) or doc.get("type") != CHECKPOINT_TYPE:
        raise ValueError("not a checkpoint record")
    try:
        values = {
            "seq": doc["seq"],
            "hash": doc["hash"],
            "entry_count": doc["entry_count"],
            "key_id": doc["key_id"],
            "signature": doc["signature"],
        }
        signed_at = datetime.fromisoformat(str(doc["signed_at"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"missing field {exc}") from None
    for name in ("seq", "entry_count"):
        if type(values[name]) is not int:
            raise ValueError(f"{name} is not an integer")
    for name in ("hash", "key_id", "signature"):
        if not isinstance(values[name], str):
            raise ValueError(f"{name} is not a string")
    if signed_at.tzinfo is None:
        raise ValueError("signed_at has no timezone")
    return AuditCheckpoint(signed_at=signed_at, **values)


def _line(cp: AuditCheckpoint) -> str:
    return json.dumps(checkpoint_document(cp), sort_keys=True, separators=(",", ":")) + "\n"


# --------------------------------------------------------------------------- witnesses


class Witness(Protocol):
    """Somewhere outside the database that keeps every published checkpoint."""

    name: str

    def publish(self, cp: AuditCheckpoint) -> None: ...

    def read(self) -> list[WitnessedCheckpoint]:
        """Every checkpoint held, oldest first; read-only. Raises WitnessError."""
        ...


class FileWitness:
    """An append-only JSON-lines file (mode 0600 in a 0700 folder). `chattr +a` makes it stricter."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"

    def publish(self, cp: AuditCheckpoint) -> None:
        _make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, _line(cp).encode())  # one small O_APPEND write: never interleaved
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[WitnessedCheckpoint]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise WitnessError(
                self.name, f"cannot be read ({type(exc).__name__})", "witness_missing"
            ) from None
        lines = text.split("\n")
        if lines and lines[-1]:
            lines = lines[:-1]  # a torn last write (crash mid-line): the checkpoint was never published
        out: list[WitnessedCheckpoint] = []
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                out.append(
                    WitnessedCheckpoint(f"{self.name}:{number}", checkpoint_from_document(json.loads(line)))
                )
            except ValueError as exc:
                raise WitnessError(
                    self.name, f"line {number} is not a checkpoint ({exc})", "bad_signature"
                ) from None
        return out


def _redacted_url(url: str) -> str:
    """host:port/path of a URL, never its credentials."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


class RedisWitness:
    """A Redis list: RPUSH to publish, LRANGE to read."""

    def __init__(self, url: str, log_name: str) -> None:
        self.url = url
        self.key = f"revops:audit-witness:{log_name}"
        self.name = f"redis:{_redacted_url(url)}/{self.key}"

    def _client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=10)

    def publish(self, cp: AuditCheckpoint) -> None:
        client = self._client()
        try:
            client.rpush(self.key, _line(cp).strip())
        finally:
            client.close()

    def read(self) -> list[WitnessedCheckpoint]:
        import redis

        client = self._client()
        try:
            items = client.lrange(self.key, 0, -1)
        except redis.RedisError as exc:
            raise WitnessError(
                self.name, f"cannot be read ({type(exc).__name__})", "witness_missing"
            ) from None
        finally:
            client.close()
        out: list[WitnessedCheckpoint] = []
        for index, item in enumerate(items):
            try:
                out.append(
                    WitnessedCheckpoint(f"{self.name}[{index}]", checkpoint_from_document(json.loads(item)))
                )
            except ValueError as exc:
                raise WitnessError(
                    self.name, f"item {index} is not a checkpoint ({exc})", "bad_signature"
                ) from None
        return out


_PG_SETUP = f"""
CREATE TABLE IF NOT EXISTS {PG_TABLE} (
    id bigserial PRIMARY KEY,
    log_name text NOT NULL,
    seq bigint NOT NULL,
    hash text NOT NULL,
    entry_count bigint NOT NULL,
    signed_at text NOT NULL,
    key_id text NOT NULL,
    signature text NOT NULL UNIQUE,
    published_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_{PG_TABLE}_log ON {PG_TABLE} (log_name, seq);
CREATE OR REPLACE FUNCTION {PG_TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '{PG_TABLE} is append-only'; END $$;
CREATE OR REPLACE TRIGGER {PG_TABLE}_no_change BEFORE UPDATE OR DELETE ON {PG_TABLE}
    FOR EACH ROW EXECUTE FUNCTION {PG_TABLE}_append_only();
CREATE OR REPLACE TRIGGER {PG_TABLE}_no_truncate BEFORE TRUNCATE ON {PG_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {PG_TABLE}_append_only();
"""


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _same_database(a: str, b: str) -> bool:
    from psycopg.conninfo import conninfo_to_dict

    def ident(url: str) -> tuple[str, str, str]:
        info = conninfo_to_dict(_libpq_url(url))
        return (
            str(info.get("host") or "localhost"),
            str(info.get("port") or "5432"),
            str(info.get("dbname") or ""),
        )

    return ident(a) == ident(b)


class PostgresWitness:
    """A table in a second PostgreSQL database; triggers make it append-only (grant the server's
    role INSERT and SELECT only, so it cannot drop them either)."""

    def __init__(self, url: str, log_name: str) -> None:
        self.url = _libpq_url(url)
        self.log_name = log_name
        self.name = f"postgresql:{_redacted_url(self.url)}/{PG_TABLE}"
        self._ready = False

    def publish(self, cp: AuditCheckpoint) -> None:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5) as conn:
            if not self._ready:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_LOCK_KEY,))
                conn.execute(_PG_SETUP)
                conn.commit()
                self._ready = True
            doc = checkpoint_document(cp)
            conn.execute(
                f"INSERT INTO {PG_TABLE} (log_name, seq, hash, entry_count, signed_at, key_id, signature) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    self.log_name,
                    doc["seq"],
                    doc["hash"],
                    doc["entry_count"],
                    doc["signed_at"],
                    doc["key_id"],
                    doc["signature"],
                ),
            )

    def read(self) -> list[WitnessedCheckpoint]:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=5) as conn:
                conn.read_only = True
                if conn.execute("SELECT to_regclass(%s)", (PG_TABLE,)).fetchone() == (None,):
                    return []
                rows = conn.execute(
                    f"SELECT id, seq, hash, entry_count, signed_at, key_id, signature FROM {PG_TABLE} "
                    "WHERE log_name = %s ORDER BY id",
                    (self.log_name,),
                ).fetchall()
        except psycopg.Error as exc:
            raise WitnessError(
                self.name, f"cannot be read ({type(exc).__name__})", "witness_missing"
            ) from None
        out: list[WitnessedCheckpoint] = []
        for row in rows:
            doc = dict(
                zip(("seq", "hash", "entry_count", "signed_at", "key_id", "signature"), row[1:], strict=True)
            )
            try:
                cp = checkpoint_from_document({"type": CHECKPOINT_TYPE, **doc})
            except ValueError as exc:
                raise WitnessError(
                    self.name, f"row {row[0]} is not a checkpoint ({exc})", "bad_signature"
                ) from None
            out.append(WitnessedCheckpoint(f"{self.name}#{row[0]}", cp))
        return out


def configured_witnesses(settings: Settings) -> list[Witness]:
    """The file witness, plus Redis and a second PostgreSQL database when configured."""
    folder = witness_dir(settings)
    _check_separate(settings, folder, "witness folder")
    witnesses: list[Witness] = [FileWitness(folder / WITNESS_FILE_NAME)]
    if settings.audit_witness_redis_url:
        witnesses.append(RedisWitness(settings.audit_witness_redis_url, settings.audit_witness_name))
    if settings.audit_witness_database_url:
        url = settings.audit_witness_database_url
        if not url.startswith(("postgresql", "postgres://")):
            raise ConfigurationError(
                "REVOPS_AUDIT_WITNESS_DATABASE_URL must be a postgresql:// URL.",
                field="audit_witness_database_url",
            )
        if settings.database_url and not settings.is_embedded and _same_database(url, settings.database_url):
            raise ConfigurationError(
                "The audit witness database is the database it is meant to witness.",
                field="audit_witness_database_url",
                hint="Point REVOPS_AUDIT_WITNESS_DATABASE_URL at a second database (ideally another server).",
            )
        witnesses.append(PostgresWitness(url, settings.audit_witness_name))
    return witnesses


@dataclass
class Publication:
    """Where a checkpoint was published, and which witnesses failed (the checkpoint is stored anyway)."""

    published: list[str]
    failed: list[tuple[str, str]]


def publish(cp: AuditCheckpoint, witnesses: list[Witness]) -> Publication:
    """Publish a stored checkpoint to every witness; one failing witness does not stop the others."""
    result = Publication([], [])
    for witness in witnesses:
        try:
            witness.publish(cp)
        except Exception as exc:  # a witness outage must never take the server down
            log.error(
                "audit.witness_publish_failed", witness=witness.name, seq=cp.seq, error=type(exc).__name__
            )
            result.failed.append((witness.name, f"{type(exc).__name__}: {exc}"))
        else:
            result.published.append(witness.name)
    log.info("audit.checkpoint_published", seq=cp.seq, witnesses=result.published)
    return result


def read_witnesses(witnesses: list[Witness]) -> tuple[list[WitnessedCheckpoint], list[WitnessError]]:
    """Every witnessed checkpoint, and the witnesses that could not be read."""
    held: list[WitnessedCheckpoint] = []
    problems: list[WitnessError] = []
    for witness in witnesses:
        try:
            held.extend(witness.read())
        except WitnessError as exc:
            problems.append(exc)
    return held, problems


# --------------------------------------------------------------------------- the pinned key


def encode_public_key(key: Ed25519PublicKey) -> str:
    """The `audit_public_key` form: base64 of the 32 raw bytes."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _decode_public_key(value: str, position: int) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"REVOPS_AUDIT_PUBLIC_KEY entry {position} is not base64 of a 32-byte Ed25519 public key.",
            field="audit_public_key",
            hint="Copy the value `revops audit key` prints.",
        ) from None


def pinned_public_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """{key_id: key} of the trusted checkpoint keys: the setting, else the key file; {} if neither."""
    if settings.audit_public_key:
        parts = [p for p in settings.audit_public_key.split(",") if p.strip()]
        keys = [_decode_public_key(p, i) for i, p in enumerate(parts, start=1)]
        return {key_id_of(k): k for k in keys}
    path = public_key_file(settings)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        key = load_pem_public_key(data)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(
            f"The pinned audit public key {path} is not an Ed25519 PEM public key.",
            field="audit_public_key_file",
            hint="Restore the file from your backup (or set REVOPS_AUDIT_PUBLIC_KEY).",
        )
    return {key_id_of(key): key}


def pin_public_key(settings: Settings, key: Ed25519PublicKey) -> Path:
    """Write the key file, create-only; IntegrityError if a different key got there first."""
    path = public_key_file(settings)
    _check_separate(settings, path.parent, "public key file")
    _make_private_dir(path.parent)
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-signing-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # a public key
        with suppress(FileExistsError):
            os.link(tmp, path)  # create-only: never replaces a pinned key
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
    if path.read_bytes() != pem:
        raise IntegrityError(f"Another audit public key is already pinned at {path}; nothing was changed.")
    log.info("audit.public_key_pinned", path=str(path), key_id=key_id_of(key))
    return path


# --------------------------------------------------------------------------- verification


def log_evidence(db: Database) -> tuple[int, str] | None:
    """(seq, what) of the earliest sign that this log has been checkpointed, read-only; None if none."""
    cps = AuditCheckpoint.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__
    segs = AuditSegment.__table__  # type: ignore[attr-defined]
    entries = AuditEntry.__table__  # type: ignore[attr-defined]
    with read_snapshot(db) as conn:
        found = [
            (conn.execute(sa_select(func.min(cps.c.seq))).scalar(), "a checkpoint in the database"),
            (conn.execute(sa_select(func.min(segs.c.first_seq))).scalar(), "an archived segment"),
            (
                conn.execute(
                    sa_select(func.min(entries.c.seq)).where(entries.c.action == KEY_PINNED_ACTION)
                ).scalar(),
                f"the `{KEY_PINNED_ACTION}` entry",
            ),
        ]
    present = [(int(seq), what) for seq, what in found if seq is not None]
    return min(present) if present else None


def _failed(report: VerifyReport, seq: int, kind: Any, message: str) -> VerifyReport:
    return report.model_copy(update={"ok": False, "first_bad_seq": seq, "kind": kind, "message": message})


def verify_witnessed(db: Database, settings: Settings) -> VerifyReport:
    """Verify the log against the pinned public key and every witness. Read-only; no vault access.

    On top of `audit.verify`: a log that was ever checkpointed (a checkpoint row, a segment, the
    key-pinning entry, a witnessed checkpoint) must have a pinned key (`key_missing`) and at least
    one witnessed checkpoint (`witness_missing`); an unreadable or malformed witness fails too.
    """
    keys = pinned_public_keys(settings)
    witnesses = configured_witnesses(settings)
    held, problems = read_witnesses(witnesses)
    names = [w.name for w in witnesses]
    if not keys:
        report = verify(db)
        evidence = log_evidence(db)
        if held:
            first_held = min(held, key=lambda w: w.seq)
            if evidence is None or first_held.seq < evidence[0]:
                evidence = (first_held.seq, f"a checkpoint held by {first_held.source}")
        if report.ok and problems:
            report = _failed(report, report.head_seq, problems[0].kind, f"witness {problems[0]}")
        elif report.ok and evidence is not None:
            report = _failed(
                report,
                evidence[0],
                "key_missing",
                f"no pinned audit public key ({public_key_file(settings)} or REVOPS_AUDIT_PUBLIC_KEY), "
                f"although the log was checkpointed ({evidence[1]} at entry {evidence[0]}): "
                "signatures cannot be checked; restore the key file",
            )
    else:
        report = verify(db, public_keys=keys, witnessed=held)
        pinned_by_file = not settings.audit_public_key
        if report.ok and problems:
            first = problems[0]
            report = _failed(report, report.head_seq, first.kind, f"witness {first}")
        elif report.ok and not held:
            evidence = log_evidence(db)
            if evidence is not None or pinned_by_file:
                seq, what = evidence or (report.start_seq, "the pinned key file")
                report = _failed(
                    report,
                    seq,
                    "witness_missing",
                    f"no witness holds a checkpoint, although the log was checkpointed ({what} at entry "
                    f"{seq}): the witnesses ({', '.join(names)}) were wiped, or the last checkpoint was "
                    "never published",
                )
    report.witnesses = names
    return report
