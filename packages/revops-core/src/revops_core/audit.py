"""Append-only, hash-chained audit log.

Each entry's hash is SHA-256 over the RFC 8785 canonical JSON of its content plus the previous
entry's hash, so any edit, deletion, insertion or reordering breaks the chain at that row.
`append` runs inside the caller's transaction: the entry commits or rolls back with the change.
Appends are serialised: SQLite write transactions start with BEGIN IMMEDIATE; PostgreSQL takes a
transaction-scoped advisory lock, and UNIQUE(prev_hash) makes a forked chain impossible.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import rfc8785
from sqlalchemy import Column, Text, text
from sqlmodel import Field, Session, SQLModel, select

from revops_core.db import utc_field, utcnow
from revops_core.logging import redact

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 7411002


class AuditEntry(SQLModel, table=True):
    __tablename__ = "core_audit"

    seq: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    ts: datetime = utc_field(default_now=True, index=True)
    actor: str = Field(max_length=200, index=True)
    action: str = Field(max_length=200, index=True)
    target: str | None = Field(default=None, max_length=200, index=True)
    details: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)


def entry_payload(
    *, tenant: str, ts: datetime, actor: str, action: str, target: str | None, details: Any
) -> dict[str, Any]:
    """The hashed content of an entry (everything but seq and the hashes)."""
    return {
        "tenant": tenant,
        "ts": ts.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
    }


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + rfc8785.dumps(payload)).hexdigest()


def _last_hash(session: Session) -> str:
    row = session.exec(select(AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()  # type: ignore[union-attr]
    return row or GENESIS_HASH


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    tenant: str = "default",
) -> AuditEntry:
    """Append one entry in the caller's transaction. Secrets are redacted before hashing."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    clean = json.loads(json.dumps(redact(details or {}), default=str))
    ts = utcnow()
    prev = _last_hash(session)
    payload = entry_payload(tenant=tenant, ts=ts, actor=actor, action=action, target=target, details=clean)
    entry = AuditEntry(
        tenant=tenant,
        ts=ts,
        actor=actor,
        action=action,
        target=target,
        details=rfc8785.dumps(clean).decode(),
        prev_hash=prev,
        hash=chain_hash(prev, payload),
    )
    session.add(entry)
    session.flush()
    return entry
