"""Signed checkpoints and retention archives for the audit chain.

A hash chain alone cannot show that its *end* is missing or was rewritten consistently: the
remaining rows still link up. A checkpoint is an Ed25519 signature over (seq, hash, entry_count,
signed_at, key_id) of the head at some moment; `audit.verify` compares the live chain with every
checkpoint, so cutting rows off the end or recomputing the tail no longer goes unnoticed.

Retention moves a prefix of old entries to a JSONL archive file and deletes them, leaving a signed
segment record (first/last seq and hash, the file's SHA-256). Verification then starts from the last
segment's hash, and `verify_archive` re-checks an archive file against its segment.

Keys are parameters: the private key signs, trusted public keys verify. `vault_signing_key` gets the
suite's audit key from the vault for callers that have one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, func
from sqlalchemy import select as sa_select

from revops_core.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditSegment,
    ChainWalker,
    Failure,
    Row,
    VerifyReport,
    build_report,
    chain_tip,
    jsonl_line,
    key_id_of,
    lock_chain,
    public_key_map,
    signature_problem,
    stream_rows,
    verify,
)
from revops_core.db import Database, utcnow
from revops_core.errors import IntegrityError, ValidationFailed
from revops_core.settings import Settings

AUDIT_KEY_NAME = "audit-signing"


def _sign(record: AuditCheckpoint | AuditSegment, signing_key: Ed25519PrivateKey) -> None:
    record.key_id = key_id_of(signing_key.public_key())
    record.signature = ""  # not part of the signed document; set below
    record.signature = base64.b64encode(signing_key.sign(rfc8785.dumps(record.signed_document()))).decode()


def _require_intact(db: Database) -> VerifyReport:
    """Never sign or archive a broken chain: that would bless the tampering."""
    report = verify(db)
    if not report.ok:
        raise IntegrityError(
            f"The audit chain is broken at entry {report.first_bad_seq} ({report.kind}); nothing was signed.",
            details={"first_bad_seq": report.first_bad_seq, "kind": report.kind},
        )
    return report


def create_checkpoint(
    db: Database, signing_key: Ed25519PrivateKey, *, now: datetime | None = None
) -> AuditCheckpoint:
    """Verify the chain, then sign and store a checkpoint of its current head.

    Runs under the append lock, so the signed head is exactly the head that was verified.
    Raises IntegrityError (and stores nothing) if the chain does not verify, or if it is empty.
    """
    with db.session(write=True) as s:
        lock_chain(s)
        seq, head = chain_tip(s)  # also opens the write transaction: appenders wait from here on
        if seq == 0:
            raise ValidationFailed(
                "The audit log is empty; there is nothing to checkpoint.",
                field="audit",
                hint="Checkpoint after the first write.",
            )
        report = _require_intact(db)
        if (report.head_seq, report.head_hash) != (seq, head):
            raise IntegrityError("The audit head moved while it was being verified; nothing was signed.")
        checkpoint = AuditCheckpoint(
            seq=seq, hash=head, entry_count=seq, signed_at=now or utcnow(), key_id="", signature=""
        )
        _sign(checkpoint, signing_key)
        s.add(checkpoint)
        s.flush()
        return checkpoint


def archive_old_entries(
    db: Database,
    signing_key: Ed25519PrivateKey,
    directory: Path,
    *,
    older_than_days: int | None = None,
    now: datetime | None = None,
) -> AuditSegment | None:
    """Archive and delete the prefix of entries older than the retention period; None if none are.

    The archived range runs from the first live entry to the last entry written before the cutoff
    (`older_than_days`, default `settings.audit_retention_days`). It is written to
    `<directory>/audit-<first>-<last>.jsonl`, recorded as a signed segment, then deleted — all in
    one transaction under the append lock; a failure removes the file and deletes nothing.
    """
    days = older_than_days if older_than_days is not None else db.settings.audit_retention_days
    if days < 0:
        raise ValidationFailed("older_than_days must not be negative.", field="older_than_days")
    cutoff = (now or utcnow()) - timedelta(days=days)
    # SQLModel sets __table__ on table classes at class creation; its stubs do not declare it.
    entries = AuditEntry.__table__  # type: ignore[attr-defined]
    with db.session(write=True) as s:
        lock_chain(s)
        chain_tip(s)  # opens the write transaction before verifying, so nothing appends meanwhile
        last_seq = s.execute(sa_select(func.max(entries.c.seq)).where(entries.c.ts < cutoff)).scalar()
        if last_seq is None:
            return None
        report = _require_intact(db)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"audit-{report.start_seq:012d}-{last_seq:012d}.jsonl"
        try:
            segment = _write_archive(
                stream_rows(s.connection(), after=report.start_seq - 1, until=last_seq), path
            )
            _sign(segment, signing_key)
            s.add(segment)
            s.execute(delete(entries).where(entries.c.seq <= last_seq))
            s.flush()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return segment


def _write_archive(rows: Iterator[Row], path: Path) -> AuditSegment:
    digest = hashlib.sha256()
    first: Row | None = None
    last: Row | None = None
    count = 0
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            line = jsonl_line(row)
            out.write(line)
            digest.update(line.encode())
            first = first or row
            last = row
            count += 1
        out.flush()
        os.fsync(out.fileno())
    if first is None or last is None:
        tmp.unlink()
        raise IntegrityError("No entries to archive in the expected range.")
    os.replace(tmp, path)
    return AuditSegment(
        first_seq=first[0],
        last_seq=last[0],
        entry_count=count,
        first_prev_hash=first[7],
        first_hash=first[8],
        last_hash=last[8],
        first_ts=first[2],
        last_ts=last[2],
        archive_name=path.name,
        archive_sha256=digest.hexdigest(),
        signed_at=utcnow(),
        key_id="",
        signature="",
    )


def _archive_rows(path: Path) -> Iterator[Row]:
    """Rows of an archive file, in the stored-row shape the chain walker checks."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            item: dict[str, Any] = json.loads(line)
            yield (
                item["seq"],
                item["tenant"],
                datetime.fromisoformat(item["ts"]),
                item["actor"],
                item["action"],
                item["target"],
                rfc8785.dumps(item["details"]).decode(),
                item["prev_hash"],
                item["hash"],
            )


class _FileLookup:
    """Classification lookups over an archive file (only read when a break is found)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def seq_with_hash(self, value: str) -> int | None:
        return next((r[0] for r in _archive_rows(self.path) if r[8] == value), None)

    def seq_with_prev(self, value: str) -> int | None:
        return next((r[0] for r in _archive_rows(self.path) if r[7] == value), None)

    def rows_after(self, seq: int) -> Iterator[Row]:
        return (r for r in _archive_rows(self.path) if r[0] > seq)

    def row_at(self, seq: int) -> Row | None:
        return next((r for r in _archive_rows(self.path) if r[0] == seq), None)


def verify_archive(
    path: Path,
    segment: AuditSegment,
    *,
    public_keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey] | None = None,
) -> VerifyReport:
    """Check an archive file against its segment record: signature, every entry, ends, and digest."""
    keys = public_key_map(public_keys)
    walker = ChainWalker(segment.first_seq, segment.first_prev_hash, [(segment.last_seq, segment.last_hash)])
    failure: Failure | None = None
    if keys is not None and (problem := signature_problem(segment, keys)):
        failure = Failure(segment.first_seq, "bad_signature", f"archived segment {segment.id}: {problem}")
    elif not path.is_file():
        failure = Failure(segment.first_seq, "deleted", f"archive file {path.name} does not exist")
    else:
        walker.feed(_archive_rows(path), _FileLookup(path))
        walker.finish()
        failure = walker.failure
        if failure is None and walker.expected_seq - 1 != segment.last_seq:
            failure = Failure(segment.last_seq + 1, "inserted", "the archive holds entries past its segment")
        if failure is None and hashlib.sha256(path.read_bytes()).hexdigest() != segment.archive_sha256:
            failure = Failure(segment.first_seq, "segment_mismatch", "the archive file's digest differs")
    return build_report(walker, failure, keys is not None, [segment])


# --------------------------------------------------------------------------- vault convenience


def vault_signing_key(db: Database, settings: Settings) -> Ed25519PrivateKey:
    """The suite's audit signing key from the vault (the vault generates it on first use).

    Call outside an open write transaction: on SQLite the vault takes the write lock itself.
    """
    from revops_core.vault import Vault  # lazy: key files and AES are only needed to sign

    return Vault(db, settings).signing_key(AUDIT_KEY_NAME)


def checkpoint_with_vault(db: Database, settings: Settings) -> AuditCheckpoint:
    """Sign a checkpoint of the current head with the vault's audit key."""
    return create_checkpoint(db, vault_signing_key(db, settings))


def archive_with_vault(db: Database, settings: Settings, directory: Path) -> AuditSegment | None:
    """Apply retention (`settings.audit_retention_days`), signing the segment with the vault's audit key."""
    return archive_old_entries(db, vault_signing_key(db, settings), directory)


def verify_with_vault(db: Database, settings: Settings) -> VerifyReport:
    """Verify the chain, trusting the vault's audit key for checkpoint and segment signatures.

    Raises NotFound when no audit key was ever generated (then no checkpoint can exist either:
    use `verify(db)`).
    """
    from revops_core.vault import Vault

    return verify(db, public_keys=[Vault(db, settings).verify_key(AUDIT_KEY_NAME)])
