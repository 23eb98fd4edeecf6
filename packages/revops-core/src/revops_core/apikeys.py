"""API keys for the HTTP transport: created with a role, stored as SHA-256 hashes, revocable.

A key is audited as `key:<name>`, so a name belongs to one key for good (revoked keys keep theirs):
a unique index holds it, `create_key` refuses a taken name with a `conflict` naming `name`.
Creation and revocation are audited (`apikey.create` / `apikey.revoke`, target `apikey:<name>`,
the key's id and role as details; never the key, its hash or its prefix).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import Index
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from revops_core import audit
from revops_core.db import Database, utc_field, utcnow
from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_core.settings import ROLE_RANK, Role

KEY_PREFIX = "rvk_"


class ApiKey(SQLModel, table=True):
    __tablename__ = "core_api_key"
    # Also created by core migration v2 on databases made before it (schema.py).
    __table_args__ = (Index("uq_core_api_key_name", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    role: str = Field(max_length=10)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    key_prefix: str = Field(max_length=12, description="First characters, to recognise a key in lists.")
    created_at: datetime = utc_field(default_now=True)
    revoked_at: datetime | None = utc_field(nullable=True)
    last_used_at: datetime | None = utc_field(nullable=True)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _name_taken(name: str, existing: ApiKey | None) -> Conflict:
    which = f" (key {existing.id})" if existing is not None else ""
    return Conflict(
        f"An API key named {name!r} already exists{which}; nothing was created.",
        field="name",
        hint="Key names are the audited actor (key:<name>) and are never reused, revoked keys included: "
        "choose another --name (to replace a key, create e.g. 'rep-2', then revoke the old one).",
    )


def _audit(s: Session, db: Database, action: str, key: ApiKey, actor: str | None) -> None:
    audit.append(
        s,
        actor=actor or db.settings.actor,
        action=action,
        target=f"apikey:{key.name}",
        details={"key_id": key.id, "role": key.role},
        tenant=db.settings.tenant,
    )


def create_key(db: Database, *, name: str, role: Role, actor: str | None = None) -> tuple[ApiKey, str]:
    """Create a key (audited as `actor`, default the configured one); the raw value is returned
    once and never stored. Conflict (field `name`) when the name is taken, by any key."""
    if role not in ROLE_RANK:
        raise ValidationFailed(f"Unknown role {role!r}.", field="role", hint="Use viewer, member or admin.")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, key_hash=_hash(raw), key_prefix=raw[:12])
    try:
        with db.session(write=True) as s:
            existing = s.exec(select(ApiKey).where(ApiKey.name == name)).first()
            if existing is not None:
                raise _name_taken(name, existing)
            s.add(key)
            s.flush()
            s.refresh(key)
            _audit(s, db, "apikey.create", key, actor)
    except DBIntegrityError:
        # A concurrent create took the name between our check and our insert (the index held).
        raise _name_taken(name, None) from None
    return key, raw


def list_keys(db: Database) -> list[ApiKey]:
    with db.session() as s:
        return list(s.exec(select(ApiKey).order_by(col(ApiKey.id))))


def revoke_key(db: Database, key_id: int, *, actor: str | None = None) -> ApiKey:
    """Revoke a key (audited as `actor`, default the configured one); revoking it again changes
    and records nothing."""
    with db.session(write=True) as s:
        key = s.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"No API key with id {key_id}.", hint="List keys with `revops keys list`.")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            s.add(key)
            _audit(s, db, "apikey.revoke", key, actor)
        return key


def resolve_bearer(db: Database, authorization: str | None) -> tuple[str, Role] | None:
    """`Authorization: Bearer rvk_…` → (actor, role), or None for a missing, unknown or revoked key."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    raw = authorization[7:].strip()
    if not raw.startswith(KEY_PREFIX):
        return None
    digest = _hash(raw)
    with db.session() as s:
        key = s.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, digest):
        return None
    # The column is a plain str; only Role values are ever written to it.
    return f"key:{key.name}", key.role  # type: ignore[return-value]
