"""Append-only, hash-chained audit log: append, verify, query, export.

Each entry's hash is SHA-256 over the previous entry's hash and the RFC 8785 canonical JSON of its
content, so any edit, deletion, insertion or reordering breaks the chain at that row. `seq` is the
entry's position: assigned densely (last + 1) under the append lock, so a gap is itself evidence.
`append` runs inside the caller's transaction: the entry commits or rolls back with the change.
Appends are serialised: SQLite write transactions start with BEGIN IMMEDIATE; PostgreSQL takes a
transaction-scoped advisory lock, and UNIQUE(prev_hash) makes a forked chain impossible.

Signed checkpoints pin (seq, hash) so tail truncation and same-length rewrites are caught; signed
segments (core_audit_segment) record archived ranges so retention can delete old rows without
breaking verification. A checkpoint is stored in core_audit_checkpoint *and* published to witnesses
outside the database (`revops_core.audit_witness`), so deleting rows here hides nothing; creating
them lives in `revops_core.audit_checkpoint` (automatically: `revops_core.audit_auto`). `verify`
here checks all of it and is read-only: its snapshot is a read-only transaction on both backends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import Column, Connection, Index, Text, insert, text, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from revops_core.db import Database, utc_field, utcnow
from revops_core.logs import redact_pii

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 7411002
BATCH_SIZE = 5000


# --------------------------------------------------------------------------- tables


class AuditEntry(SQLModel, table=True):
    __tablename__ = "core_audit"
    # (column, seq) indexes serve "filter, then page by seq" without a sort on both backends.
    __table_args__ = (
        Index("ix_core_audit_actor_seq", "actor", "seq"),
        Index("ix_core_audit_action_seq", "action", "seq"),
        Index("ix_core_audit_target_seq", "target", "seq"),
    )

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    tenant: str = Field(default="default", max_length=64)
    ts: datetime = utc_field(default_now=True, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=200)
    target: str | None = Field(default=None, max_length=200)
    details: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement "entry `seq` has hash `hash`, and the log then held `entry_count` entries"."""

    __tablename__ = "core_audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True)
    hash: str = Field(max_length=64)
    entry_count: int
    signed_at: datetime = utc_field(default_now=True)
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=200)

    def signed_document(self) -> dict[str, Any]:
        return {
            "type": "revops.audit.checkpoint",
            "seq": self.seq,
            "hash": self.hash,
            "entry_count": self.entry_count,
            "signed_at": _iso(self.signed_at),
            "key_id": self.key_id,
        }


class AuditSegment(SQLModel, table=True):
    """A signed record of an archived (and deleted) range of entries, written by retention."""

    __tablename__ = "core_audit_segment"

    id: int | None = Field(default=None, primary_key=True)
    first_seq: int
    last_seq: int = Field(index=True)
    entry_count: int
    first_prev_hash: str = Field(max_length=64)
    first_hash: str = Field(max_length=64)
    last_hash: str = Field(max_length=64)
    first_ts: datetime = utc_field()
    last_ts: datetime = utc_field()
    archive_name: str = Field(max_length=200)
    archive_sha256: str = Field(max_length=64)
    signed_at: datetime = utc_field(default_now=True)
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=200)

    def signed_document(self) -> dict[str, Any]:
        return {
            "type": "revops.audit.segment",
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "entry_count": self.entry_count,
            "first_prev_hash": self.first_prev_hash,
            "first_hash": self.first_hash,
            "last_hash": self.last_hash,
            "first_ts": _iso(self.first_ts),
            "last_ts": _iso(self.last_ts),
            "archive_name": self.archive_name,
            "archive_sha256": self.archive_sha256,
            "signed_at": _iso(self.signed_at),
            "key_id": self.key_id,
        }


# SQLModel sets __table__ on table classes at class creation; its stubs do not declare it.
_T = AuditEntry.__table__  # type: ignore[attr-defined]
_COLUMNS = (_T.c.seq, _T.c.tenant, _T.c.ts, _T.c.actor, _T.c.action, _T.c.target, _T.c.details)
_ROW_COLUMNS = (*_COLUMNS, _T.c.prev_hash, _T.c.hash)
# The same columns with `ts` left as the driver returns it: SQLAlchemy's per-row SQLite datetime
# parsing (a regex in Python) would otherwise cost more than hashing the row. `_utc` converts.
_RAW_COLUMNS = (*_ROW_COLUMNS[:2], type_coerce(_T.c.ts, Text), *_ROW_COLUMNS[3:])


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", stored in UTC
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------- hashing


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="microseconds")


def entry_payload(
    *, tenant: str, ts: datetime, actor: str, action: str, target: str | None, details: Any
) -> dict[str, Any]:
    """The hashed content of an entry (everything but seq and the hashes)."""
    return {
        "tenant": tenant,
        "ts": _iso(ts),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
    }


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    """The reference definition: SHA-256(prev_hash, "\\n", RFC 8785 JSON of the payload)."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + rfc8785.dumps(payload)).hexdigest()


# Printable ASCII without quote or backslash needs no escaping in RFC 8785. Checking that with one
# regex (and caching the few distinct actors/actions/tenants) instead of calling the general encoder
# for every field is most of what makes verification fast.
_PLAIN = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def _canonical_str(value: str | None) -> str:
    if value is None:
        return "null"
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return rfc8785.dumps(value).decode()


_canonical_cached = lru_cache(maxsize=4096)(_canonical_str)


def row_hash(
    prev_hash: str,
    tenant: str,
    ts: datetime,
    actor: str,
    action: str,
    target: str | None,
    details_json: str,
) -> str:
    """`chain_hash` for a stored row, splicing its already-canonical `details` text.

    Equal to `chain_hash(prev, entry_payload(...))` whenever `details_json` is canonical, which
    `append` guarantees; a row whose details were rewritten non-canonically fails, as it should.
    Keys are written in RFC 8785 order (action, actor, details, target, tenant, ts).
    """
    body = (
        f'{prev_hash}\n{{"action":{_canonical_cached(action)},"actor":{_canonical_cached(actor)},'
        f'"details":{details_json},"target":{_canonical_str(target)},'
        f'"tenant":{_canonical_cached(tenant)},"ts":"{ts.isoformat(timespec="microseconds")}"}}'
    )
    return hashlib.sha256(body.encode()).hexdigest()


# --------------------------------------------------------------------------- append


def lock_chain(session: Session) -> None:
    """Serialise appenders on PostgreSQL (SQLite write sessions already hold the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})


def chain_tip(session: Session | Connection) -> tuple[int, str]:
    """(seq, hash) of the newest entry, else of the newest archived segment, else (0, genesis)."""
    row = session.execute(sa_select(_T.c.seq, _T.c.hash).order_by(_T.c.seq.desc()).limit(1)).first()
    if row is not None:
        return int(row[0]), str(row[1])
    # SQLModel sets __table__ on table classes at class creation; its stubs do not declare it.
    seg = AuditSegment.__table__  # type: ignore[attr-defined]
    last = session.execute(
        sa_select(seg.c.last_seq, seg.c.last_hash).order_by(seg.c.last_seq.desc()).limit(1)
    ).first()
    if last is not None:
        return int(last[0]), str(last[1])
    return 0, GENESIS_HASH


def _clean_details(details: dict[str, Any] | None) -> str:
    """Redact secrets, coerce to plain JSON, and return the canonical text that gets hashed."""
    clean = json.loads(json.dumps(redact_pii(details or {}), default=str))
    return rfc8785.dumps(clean).decode()


@dataclass(frozen=True)
class AuditInput:
    """One entry to append with `append_many`."""

    actor: str
    action: str
    target: str | None = None
    details: dict[str, Any] | None = None
    tenant: str = "default"


def _row(seq: int, prev: str, item: AuditInput, ts: datetime) -> dict[str, Any]:
    details = _clean_details(item.details)
    return {
        "seq": seq,
        "tenant": item.tenant,
        "ts": ts,
        "actor": item.actor,
        "action": item.action,
        "target": item.target,
        "details": details,
        "prev_hash": prev,
        "hash": row_hash(prev, item.tenant, ts, item.actor, item.action, item.target, details),
    }


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    tenant: str = "default",
) -> AuditEntry:
    """Append one entry in the caller's transaction. Secrets and personal data (free text, e-mail
    addresses, phone numbers) are redacted before hashing.

    Use a write session (`db.session(write=True)`): on SQLite a deferred transaction that reads
    the tip and then writes can lose the race and fail with "database is locked" (never a fork).
    """
    lock_chain(session)
    seq, prev = chain_tip(session)
    entry = AuditEntry(**_row(seq + 1, prev, AuditInput(actor, action, target, details, tenant), utcnow()))
    session.add(entry)
    session.flush()
    if _append_listeners:
        _notify(1)
    return entry


AppendListener = Callable[[int], None]
_append_listeners: tuple[AppendListener, ...] = ()


def add_append_listener(listener: AppendListener) -> None:
    """Call `listener(count)` after every append in this process (the automatic checkpointer's
    counter). Listeners run on the appending thread inside its transaction: they must be O(1)."""
    global _append_listeners
    _append_listeners = (*_append_listeners, listener)


def remove_append_listener(listener: AppendListener) -> None:
    global _append_listeners
    _append_listeners = tuple(x for x in _append_listeners if x is not listener)


def _notify(count: int) -> None:
    for listener in _append_listeners:
        listener(count)


def append_many(session: Session, items: Iterable[AuditInput], *, chunk: int = 1000) -> int:
    """Append many entries in the caller's transaction with bulk inserts (imports, fixtures)."""
    lock_chain(session)
    seq, prev = chain_tip(session)
    count = 0
    batch: list[dict[str, Any]] = []
    for item in items:
        seq += 1
        row = _row(seq, prev, item, utcnow())
        prev = row["hash"]
        batch.append(row)
        if len(batch) >= chunk:
            session.execute(insert(_T), batch)
            count += len(batch)
            batch = []
    if batch:
        session.execute(insert(_T), batch)
        count += len(batch)
    if _append_listeners and count:
        _notify(count)
    return count


# --------------------------------------------------------------------------- signatures


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A stable id for a verification key: the first 16 bytes of SHA-256 of its raw bytes, hex."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def public_key_map(
    public_keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey] | None,
) -> dict[str, Ed25519PublicKey] | None:
    """Normalise the accepted forms of trusted keys to {key_id: key}; None means "don't check"."""
    if public_keys is None:
        return None
    if isinstance(public_keys, Mapping):
        return dict(public_keys)
    return {key_id_of(k): k for k in public_keys}


def signature_problem(
    record: AuditCheckpoint | AuditSegment, keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    """Why `record`'s signature is not acceptable under `keys`, or None when it verifies."""
    key = keys.get(record.key_id)
    if key is None:
        return f"signed with key {record.key_id}, which is not a trusted key"
    try:
        key.verify(base64.b64decode(record.signature), rfc8785.dumps(record.signed_document()))
    except (InvalidSignature, ValueError):
        return "the signature does not match the signed fields"
    return None


# --------------------------------------------------------------------------- verification

Kind = Literal[
    "edited",
    "deleted",
    "inserted",
    "reordered",
    "truncated",
    "rewritten",
    "bad_signature",
    "segment_mismatch",
    "checkpoint_missing",
    "key_missing",
    "witness_missing",
]


class ArchivedRange(BaseModel):
    first_seq: int = PydField(description="First archived entry.")
    last_seq: int = PydField(description="Last archived entry.")
    entry_count: int = PydField(description="Entries in the archive.")
    archive_name: str = PydField(description="File name of the JSONL archive.")


class VerifyReport(BaseModel):
    """Outcome of checking the chain from genesis (or the last archived segment) to its head."""

    ok: bool = PydField(description="True when the chain, checkpoints and signatures all check out.")
    first_bad_seq: int | None = PydField(description="Position (seq) of the first bad entry; null if ok.")
    kind: Kind | None = PydField(description="What is wrong at first_bad_seq; null if ok.")
    message: str | None = PydField(description="Human-readable explanation of the failure; null if ok.")
    suspect_from_seq: int | None = PydField(
        default=None,
        description="For `rewritten`: earliest seq a rewrite may start at (after the last good checkpoint).",
    )
    entries_checked: int = PydField(description="Live entries that verified before the first failure.")
    start_seq: int = PydField(description="First live seq expected (1, or after the last archived segment).")
    head_seq: int = PydField(description="Seq of the last verified entry (0 for an empty log).")
    head_hash: str = PydField(description="Hash of the last verified entry (the genesis hash if none).")
    checkpoints_checked: int = PydField(description="Checkpoints compared against the live chain.")
    signatures_checked: bool = PydField(description="True when checkpoint/segment signatures were verified.")
    archived: list[ArchivedRange] = PydField(
        description="Ranges archived by retention (no longer in the table)."
    )
    witnessed_seq: int | None = PydField(
        default=None, description="Seq of the latest checkpoint held by a witness outside the database."
    )
    witnesses: list[str] = PydField(
        default_factory=list, description="Witnesses outside the database that were read."
    )


@dataclass
class Failure:
    seq: int
    kind: Kind
    message: str
    suspect_from_seq: int | None = None


class _Lookup(Protocol):
    """Where the walker looks when classifying a break (only ever at the first failure)."""

    def seq_with_hash(self, value: str) -> int | None: ...
    def seq_with_prev(self, value: str) -> int | None: ...
    def rows_after(self, seq: int) -> Iterator[tuple[Any, ...]]: ...
    def row_at(self, seq: int) -> tuple[Any, ...] | None: ...


Row = tuple[Any, ...]  # (seq, tenant, ts, actor, action, target, details, prev_hash, hash)


def _hash_of(prev: str, row: Row) -> str:
    return row_hash(prev, row[1], row[2], row[3], row[4], row[5], row[6])


class ChainWalker:
    """Checks rows in seq order against the chain rules and the checkpoints; stops at the first failure."""

    def __init__(self, start_seq: int, start_prev: str, checkpoints: Iterable[tuple[int, str]]) -> None:
        self.start_seq = start_seq
        self.expected_seq = start_seq
        self.expected_prev = start_prev
        self.prev_prev: str | None = None  # hash two back: tells an inserted row from an edited one
        self.checked = 0
        self.checkpoints = sorted(cp for cp in checkpoints if cp[0] >= start_seq)
        self._cp = 0
        self.checkpoints_checked = 0
        self._good_cp_seq = start_seq - 1
        self.failure: Failure | None = None

    def feed(self, rows: Iterable[Row], lookup: _Lookup) -> bool:
        """Check rows; False once a failure is recorded (stop feeding)."""
        cps = self.checkpoints
        for row in rows:
            seq, prev, stored = row[0], row[7], row[8]
            if seq != self.expected_seq:
                self._fail(
                    self.expected_seq, "deleted", f"entries {self.expected_seq}..{seq - 1} are missing"
                )
                return False
            if prev != self.expected_prev or _hash_of(prev, row) != stored:
                self.failure = self._classify(row, lookup)
                return False
            while self._cp < len(cps) and cps[self._cp][0] == seq:
                if cps[self._cp][1] != stored:
                    self.failure = self._checkpoint_mismatch(row, lookup)
                    return False
                self._good_cp_seq = seq
                self.checkpoints_checked += 1
                self._cp += 1
            self.prev_prev, self.expected_prev = self.expected_prev, stored
            self.expected_seq += 1
            self.checked += 1
        return True

    def finish(self) -> None:
        """After the last row: a checkpoint beyond the head means entries were cut off the end."""
        if self.failure is None and self._cp < len(self.checkpoints):
            cp_seq = self.checkpoints[-1][0]
            first_missing = self.expected_seq
            missing = (
                f"entry {cp_seq} is" if first_missing == cp_seq else f"entries {first_missing}..{cp_seq} are"
            )
            self._fail(
                first_missing,
                "truncated",
                f"{missing} missing: a signed checkpoint covers entry {cp_seq} "
                f"but the log ends at {first_missing - 1}",
            )

    def _fail(self, seq: int, kind: Kind, message: str, suspect_from_seq: int | None = None) -> None:
        self.failure = Failure(seq, kind, message, suspect_from_seq)

    def _back_one(self) -> None:
        """The failure lies one entry back: that entry no longer counts as verified."""
        self.checked -= 1
        self.expected_seq -= 1
        self.expected_prev = self.prev_prev or self.expected_prev

    def _checkpoint_mismatch(self, row: Row, lookup: _Lookup) -> Failure:
        seq = row[0]
        # A forged entry slipped in just before the checkpointed one passes the link checks; its
        # displaced successor still hashes from (or links to) the forged entry's predecessor.
        nxt = lookup.row_at(seq + 1)
        if nxt is not None and (nxt[7] == row[7] or _hash_of(row[7], nxt) == nxt[8]):
            return Failure(seq, "inserted", f"entry {seq} was inserted into the chain")
        return Failure(
            seq,
            "rewritten",
            f"entry {seq} differs from the signed checkpoint: the chain was rewritten",
            suspect_from_seq=self._good_cp_seq + 1,
        )

    def _classify(self, row: Row, lookup: _Lookup) -> Failure:
        seq, prev, stored = row[0], row[7], row[8]
        self_valid = _hash_of(prev, row) == stored
        if prev == self.expected_prev:
            # Content no longer matches its hash. Was it linked to the entry two back (the one
            # before it was forged in), or is it another entry's content moved here?
            if self.prev_prev is not None and _hash_of(self.prev_prev, row) == stored:
                self._back_one()
                return Failure(seq - 1, "inserted", f"entry {seq - 1} was inserted into the chain")
            for later in lookup.rows_after(seq):
                if _hash_of(later[7], row) == later[8]:
                    return Failure(seq, "reordered", f"entry {seq} holds the content of entry {later[0]}")
            return Failure(seq, "edited", f"entry {seq} was changed after it was written")
        if not self_valid:
            return Failure(seq, "edited", f"entry {seq} (including its link) was changed")
        # A self-consistent entry that does not follow its predecessor.
        if lookup.seq_with_hash(prev) is not None:
            return Failure(seq, "reordered", f"entry {seq} belongs elsewhere in the chain")
        if lookup.seq_with_prev(self.expected_prev) is not None:
            return Failure(seq, "inserted", f"entry {seq} is not part of the chain")
        if seq > self.start_seq:
            # No gap in seq, so this is not a plain DELETE: the previous entry was rewritten
            # with a recomputed hash (its successor still records the original hash).
            self._back_one()
            return Failure(seq - 1, "edited", f"entry {seq - 1} was rewritten with a recomputed hash")
        return Failure(seq, "deleted", f"the entries before {seq} are missing")


class _DbLookup:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def seq_with_hash(self, value: str) -> int | None:
        return self.conn.execute(sa_select(_T.c.seq).where(_T.c.hash == value)).scalar()

    def seq_with_prev(self, value: str) -> int | None:
        return self.conn.execute(sa_select(_T.c.seq).where(_T.c.prev_hash == value)).scalar()

    def rows_after(self, seq: int) -> Iterator[Row]:
        return stream_rows(self.conn, after=seq)

    def row_at(self, seq: int) -> Row | None:
        return next(stream_rows(self.conn, after=seq - 1, until=seq), None)


def stream_rows(
    conn: Connection, *, after: int = 0, until: int | None = None, where: Any = None
) -> Iterator[Row]:
    """Rows in seq order, fetched in keyset batches so memory stays flat on long chains."""
    while True:
        conditions = [_T.c.seq > after]
        if until is not None:
            conditions.append(_T.c.seq <= until)
        if where is not None:
            conditions.append(where)
        query = sa_select(*_RAW_COLUMNS).where(*conditions).order_by(_T.c.seq).limit(BATCH_SIZE)
        rows = [(r[0], r[1], _utc(r[2]), *r[3:]) for r in conn.execute(query).all()]
        yield from rows
        if len(rows) < BATCH_SIZE:
            return
        after = rows[-1][0]


@contextmanager
def read_snapshot(db: Database) -> Iterator[Connection]:
    """One consistent, read-only snapshot for the whole read (verification must not see retention
    half-done, and must not be able to write: the database refuses it on both backends)."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn
            return
        # On the DB-API connection: through SQLAlchemy the PRAGMA would open the transaction.
        raw: Any = conn.connection.dbapi_connection
        raw.execute("PRAGMA query_only = ON")
        try:
            with conn.begin():
                yield conn
        finally:
            raw.execute("PRAGMA query_only = OFF")  # the connection goes back to the pool


def _segments_problem(
    segments: list[AuditSegment], keys: Mapping[str, Ed25519PublicKey] | None
) -> Failure | None:
    expected_seq, expected_prev = 1, GENESIS_HASH
    for seg in segments:
        if seg.first_seq != expected_seq or seg.first_prev_hash != expected_prev:
            return Failure(
                expected_seq, "segment_mismatch", f"archived segment {seg.id} does not continue the chain"
            )
        if seg.entry_count != seg.last_seq - seg.first_seq + 1:
            return Failure(seg.first_seq, "segment_mismatch", f"archived segment {seg.id} miscounts entries")
        if keys is not None and (problem := signature_problem(seg, keys)):
            return Failure(seg.first_seq, "bad_signature", f"archived segment {seg.id}: {problem}")
        expected_seq, expected_prev = seg.last_seq + 1, seg.last_hash
    return None


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """A checkpoint as a witness outside the database holds it (`source` names the witness)."""

    source: str
    checkpoint: AuditCheckpoint

    @property
    def seq(self) -> int:
        return self.checkpoint.seq


def verify(
    db: Database,
    *,
    public_keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey] | None = None,
    witnessed: Sequence[WitnessedCheckpoint] = (),
) -> VerifyReport:
    """Verify the whole log: every link and hash, archived segments, and every checkpoint.

    With `public_keys` (trusted Ed25519 keys, as a list or {key_id: key}) checkpoint and segment
    signatures are verified too; without, checkpoints still pin the chain but a forger who can
    write the checkpoint table could forge them. `witnessed` are checkpoints read from witnesses
    outside the database (they need `public_keys`): each must carry a trusted signature, match the
    chain, and still be in the checkpoint table. Read-only: nothing is written, nothing decrypted.
    Most callers want `audit_witness.verify_witnessed`, which reads the pinned key and witnesses.
    Reports the first failure at its seq, with a kind:

    - `edited`: the entry's content no longer matches its hash (or it was re-hashed, which its
      successor's link gives away);
    - `deleted`: entries are missing (a gap in seq, or a lost link at the start of the chain);
    - `inserted`: an entry that is not part of the chain sits here (its successor still links
      to, or hashes from, the entry before it);
    - `reordered`: an entry that belongs elsewhere in the chain (or its content) sits here;
    - `truncated` / `rewritten`: a checkpoint vouches for entries that are gone / differ; for a
      rewrite, `suspect_from_seq` is the first entry not covered by an earlier good checkpoint;
    - `bad_signature` / `segment_mismatch`: a checkpoint or archived segment record was forged;
    - `checkpoint_missing`: a witnessed checkpoint's row was deleted from the checkpoint table.

    A deletion that also renumbered the following entries is indistinguishable from re-hashing
    the entry before it, and is reported as `edited` one position earlier.
    """
    keys = public_key_map(public_keys)
    if witnessed and keys is None:
        raise ValueError("witnessed checkpoints can only be checked against trusted public keys")
    with read_snapshot(db) as conn:
        with Session(conn) as s:
            segments = list(s.exec(select(AuditSegment).order_by(col(AuditSegment.first_seq))))
            checkpoints = list(s.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))))
        start_seq = segments[-1].last_seq + 1 if segments else 1
        start_prev = segments[-1].last_hash if segments else GENESIS_HASH
        pins = {(c.seq, c.hash) for c in checkpoints} | {(w.seq, w.checkpoint.hash) for w in witnessed}
        walker = ChainWalker(start_seq, start_prev, pins)
        failure = _segments_problem(segments, keys)
        if failure is None and keys is not None:
            failure = _checkpoint_signatures_problem(checkpoints, witnessed, keys)
        if failure is None:
            lookup = _DbLookup(conn)
            walker.feed(stream_rows(conn, after=start_seq - 1), lookup)
            walker.finish()
            failure = walker.failure
            if failure is not None and failure.kind == "truncated":
                sources = sorted({w.source for w in witnessed if w.seq == walker.checkpoints[-1][0]})
                if sources:
                    failure.message += f" (the checkpoint is held by {', '.join(sources)})"
        if failure is None:
            failure = _missing_checkpoint_problem(checkpoints, witnessed)
        report = build_report(walker, failure, keys is not None, segments)
        report.witnessed_seq = max((w.seq for w in witnessed), default=None)
        return report


def _checkpoint_signatures_problem(
    checkpoints: list[AuditCheckpoint],
    witnessed: Sequence[WitnessedCheckpoint],
    keys: Mapping[str, Ed25519PublicKey],
) -> Failure | None:
    for w in sorted(witnessed, key=lambda w: w.seq):
        if problem := signature_problem(w.checkpoint, keys):
            return Failure(w.seq, "bad_signature", f"checkpoint at entry {w.seq} in {w.source}: {problem}")
    for cp in checkpoints:
        if problem := signature_problem(cp, keys):
            return Failure(cp.seq, "bad_signature", f"checkpoint {cp.id} at entry {cp.seq}: {problem}")
    return None


def _missing_checkpoint_problem(
    checkpoints: list[AuditCheckpoint], witnessed: Sequence[WitnessedCheckpoint]
) -> Failure | None:
    """A checkpoint is stored before it is published, so every witnessed one must be in the table."""
    stored = {c.signature for c in checkpoints}
    for w in sorted(witnessed, key=lambda w: w.seq):
        if w.checkpoint.signature not in stored:
            return Failure(
                w.seq,
                "checkpoint_missing",
                f"the checkpoint at entry {w.seq} held by {w.source} is missing from the "
                "database's checkpoint table: its row was deleted",
            )
    return None


def build_report(
    walker: ChainWalker, failure: Failure | None, signatures: bool, segments: list[AuditSegment]
) -> VerifyReport:
    return VerifyReport(
        ok=failure is None,
        first_bad_seq=failure.seq if failure else None,
        kind=failure.kind if failure else None,
        message=failure.message if failure else None,
        suspect_from_seq=failure.suspect_from_seq if failure else None,
        entries_checked=walker.checked,
        start_seq=walker.start_seq,
        head_seq=walker.expected_seq - 1,
        head_hash=walker.expected_prev,
        checkpoints_checked=walker.checkpoints_checked,
        signatures_checked=signatures,
        archived=[
            ArchivedRange(
                first_seq=s.first_seq,
                last_seq=s.last_seq,
                entry_count=s.entry_count,
                archive_name=s.archive_name,
            )
            for s in segments
        ],
    )
