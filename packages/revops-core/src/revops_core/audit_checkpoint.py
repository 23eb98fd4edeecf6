"""Signed checkpoints and retention archives for the audit chain.

A hash chain alone cannot show that its *end* is missing or was rewritten consistently: the
remaining rows still link up. A checkpoint is an Ed25519 signature over (seq, hash, entry_count,
signed_at, key_id) of the head at some moment; it is stored in core_audit_checkpoint and then
published to witnesses outside the database (`audit_witness`). `audit_witness.verify_witnessed`
compares the live chain with every checkpoint, trusting only the public key pinned outside the
database, so cutting rows off the end or recomputing the tail no longer goes unnoticed — not even
when the checkpoint rows or the vault's key row are deleted too.

Retention moves a prefix of old entries to a JSONL archive file and deletes them, leaving a signed
segment record (first/last seq and hash, the file's SHA-256). Verification then starts from the last
segment's hash, and `verify_archive` re-checks an archive file against its segment.

Keys are parameters: the private key signs, trusted public keys verify. `checked_signing_key` gets
the suite's audit key from the vault and refuses one that is not the pinned key (pinning it on the
very first checkpoint); `checkpoint_and_publish` is what `revops audit checkpoint` and the running
servers' automatic checkpoints (`audit_auto`) call.
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
from sqlmodel import Session, col, select

from revops_core.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditSegment,
    ChainWalker,
    Failure,
    Row,
    VerifyReport,
    _DbLookup,
    append,
    build_report,
    chain_tip,
    key_id_of,
    lock_chain,
    public_key_map,
    signature_problem,
    stream_rows,
    verify,
)
from revops_core.audit_query import jsonl_line
from revops_core.db import Database, utcnow
from revops_core.errors import ConfigurationError, IntegrityError, ValidationFailed
from revops_core.logs import get_logger
from revops_core.settings import Settings

AUDIT_KEY_NAME = "audit-signing"

log = get_logger(__name__)


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
    db: Database,
    signing_key: Ed25519PrivateKey,
    *,
    now: datetime | None = None,
    incremental: bool = False,
) -> AuditCheckpoint:
    """Verify the chain, then sign and store a checkpoint of its current head.

    Runs under the append lock, so the signed head is exactly the head that was verified.
    Raises IntegrityError (and stores nothing) if the chain does not verify, or if it is empty.
    With `incremental`, only the entries after the latest checkpoint this key signed (and that
    still matches its row) are walked, so the append lock is held for O(new entries), not O(log).
    Storing is not publishing: see `checkpoint_and_publish`.
    """
    checkpoint = _checkpoint(db, signing_key, now=now, incremental=incremental, only_if_new=False)
    assert checkpoint is not None
    return checkpoint


def checkpoint_if_new(
    db: Database, signing_key: Ed25519PrivateKey, *, now: datetime | None = None
) -> AuditCheckpoint | None:
    """`create_checkpoint(incremental=True)`, or None when the log is empty or its head is already signed."""
    return _checkpoint(db, signing_key, now=now, incremental=True, only_if_new=True)


def _checkpoint(
    db: Database,
    signing_key: Ed25519PrivateKey,
    *,
    now: datetime | None,
    incremental: bool,
    only_if_new: bool,
) -> AuditCheckpoint | None:
    with db.session(write=True) as s:
        lock_chain(s)
        seq, head = chain_tip(s)  # also opens the write transaction: appenders wait from here on
        if seq == 0:
            if only_if_new:
                return None
            raise ValidationFailed(
                "The audit log is empty; there is nothing to checkpoint.",
                field="audit",
                hint="Checkpoint after the first write.",
            )
        base = _latest_own_checkpoint(s, signing_key) if incremental or only_if_new else None
        if only_if_new and base is not None and (base.seq, base.hash) == (seq, head):
            return None
        if not (incremental and base is not None and _verified_since(s, base, seq, head)):
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


def _latest_own_checkpoint(s: Session, signing_key: Ed25519PrivateKey) -> AuditCheckpoint | None:
    """The newest stored checkpoint that carries this key's valid signature."""
    public = signing_key.public_key()
    keys = {key_id_of(public): public}
    rows = s.exec(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.key_id == key_id_of(public))
        .order_by(col(AuditCheckpoint.seq).desc(), col(AuditCheckpoint.id).desc())
        .limit(10)
    ).all()
    return next((cp for cp in rows if signature_problem(cp, keys) is None), None)


def _verified_since(s: Session, base: AuditCheckpoint, seq: int, head: str) -> bool:
    """Do the entries after `base` still start from its hash and link up to (seq, head)?

    False sends the caller to the full verification, which names the failure (or, when retention
    archived `base`'s entry, simply checks from the archived segment).
    """
    conn = s.connection()
    at_base = next(stream_rows(conn, after=base.seq - 1, until=base.seq), None)
    if at_base is None or at_base[8] != base.hash:
        return False
    walker = ChainWalker(base.seq + 1, base.hash, [])
    walker.feed(stream_rows(conn, after=base.seq), _DbLookup(conn))
    return walker.failure is None and (walker.expected_seq - 1, walker.expected_prev) == (seq, head)


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

    Reading it is audited (`vault.decrypt`). Call outside an open write transaction: on SQLite the
    vault takes the write lock itself. Signers want `checked_signing_key`.
    """
    from revops_core.vault import Vault  # lazy: key files and AES are only needed to sign

    return Vault(db, settings).signing_key(AUDIT_KEY_NAME)


def checked_signing_key(db: Database, settings: Settings) -> Ed25519PrivateKey:
    """The vault's audit key, provided its public half is the pinned one.

    No key is pinned yet: on a log that was never checkpointed (no checkpoint row, segment or
    witnessed checkpoint) the key is pinned now — the key file is written and an
    `audit.key_pinned` entry appended. Anywhere else a missing pin is a ConfigurationError and a
    different key an IntegrityError: the vault's key row was deleted or replaced, and signing with
    the newcomer would bless whatever the intruder did.
    """
    from revops_core.audit_witness import (
        KEY_PINNED_ACTION,
        configured_witnesses,
        encode_public_key,
        log_evidence,
        pin_public_key,
        pinned_public_keys,
        public_key_file,
        read_witnesses,
    )

    pinned = pinned_public_keys(settings)
    witnesses = configured_witnesses(settings)  # a misconfigured witness fails before the vault is read
    key = vault_signing_key(db, settings)
    public = key.public_key()
    key_id = key_id_of(public)
    if pinned:
        if key_id not in pinned:
            log.error("audit.signing_key_not_pinned", key_id=key_id, pinned=sorted(pinned))
            raise IntegrityError(
                f"The vault's audit signing key ({key_id}) is not the pinned key "
                f"({', '.join(sorted(pinned))}): it was deleted or replaced. Nothing was signed.",
                hint="Restore the vault's revops-signing/audit-signing record from a backup. If the key "
                "was replaced on purpose, pin the new public key (REVOPS_AUDIT_PUBLIC_KEY) first.",
            )
        return key
    held, problems = read_witnesses(witnesses)
    evidence = log_evidence(db)
    if held or problems or evidence is not None:
        what = (
            f"{evidence[1]} at entry {evidence[0]}"
            if evidence
            else ("a witnessed checkpoint" if held else f"an unreadable witness ({problems[0]})")
        )
        raise ConfigurationError(
            f"No audit public key is pinned ({public_key_file(settings)}), yet this log was "
            f"checkpointed before ({what}). Refusing to pin a key now.",
            field="audit_public_key_file",
            hint="Restore the key file from a backup, or set REVOPS_AUDIT_PUBLIC_KEY to the key "
            "that signed the earlier checkpoints.",
        )
    path = pin_public_key(settings, public)
    with db.session(write=True) as s:
        append(
            s,
            actor=settings.actor,
            action=KEY_PINNED_ACTION,
            target="audit:checkpoint-key",
            details={"key_id": key_id, "public_key": encode_public_key(public), "file": str(path)},
            tenant=settings.tenant,
        )
    return key


def checkpoint_and_publish(
    db: Database,
    settings: Settings,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    only_if_new: bool = False,
) -> tuple[AuditCheckpoint | None, Any]:
    """Sign and store a checkpoint of the head, then publish it to every witness.

    `signing_key` is a key the caller already checked with `checked_signing_key` (the automatic
    checkpointer keeps it, so the vault is decrypted once per process, not once per checkpoint).
    `only_if_new` (automatic checkpoints): verify incrementally, and do nothing — returning
    (None, None) — when the head is already signed. Otherwise returns (checkpoint,
    `audit_witness.Publication`). A witness that fails is logged and reported, never fatal.
    """
    from revops_core.audit_witness import configured_witnesses, publish

    key = signing_key or checked_signing_key(db, settings)
    checkpoint = checkpoint_if_new(db, key) if only_if_new else create_checkpoint(db, key)
    if checkpoint is None:
        return None, None
    return checkpoint, publish(checkpoint, configured_witnesses(settings))


def checkpoint_with_vault(db: Database, settings: Settings) -> AuditCheckpoint:
    """Sign a checkpoint of the current head with the (pinned) vault key and publish it."""
    checkpoint, _ = checkpoint_and_publish(db, settings)
    assert checkpoint is not None
    return checkpoint


def archive_with_vault(db: Database, settings: Settings, directory: Path) -> AuditSegment | None:
    """Apply retention (`settings.audit_retention_days`), signing the segment with the pinned vault
    key; then checkpoint the head and publish it, so the witnesses vouch for the log as it now is."""
    key = checked_signing_key(db, settings)
    segment = archive_old_entries(db, key, directory)
    checkpoint_and_publish(db, settings, signing_key=key, only_if_new=True)
    return segment
