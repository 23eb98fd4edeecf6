"""API keys for the HTTP transport: created with a role, stored as SHA-256 hashes, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlmodel import Field, SQLModel, col, select

from revops_core.db import Database, utc_field, utcnow
from revops_core.errors import NotFound, ValidationFailed
from revops_core.settings import ROLE_RANK, Role

KEY_PREFIX = "rvk_"


class ApiKey(SQLModel, table=True):
    __tablename__ = "core_api_key"

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


def create_key(db: Database, *, name: str, role: Role) -> tuple[ApiKey, str]:
    """Create a key; the raw value is returned once and never stored."""
    if role not in ROLE_RANK:
        raise ValidationFailed(f"Unknown role {role!r}.", field="role", hint="Use viewer, member or admin.")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, key_hash=_hash(raw), key_prefix=raw[:12])
    with db.session(write=True) as s:
        s.add(key)
        s.flush()
        s.refresh(key)
    return key, raw


def list_keys(db: Database) -> list[ApiKey]:
    with db.session() as s:
        return list(s.exec(select(ApiKey).order_by(col(ApiKey.id))))


def revoke_key(db: Database, key_id: int) -> ApiKey:
    with db.session(write=True) as s:
        key = s.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"No API key with id {key_id}.", hint="List keys with `revops keys list`.")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            s.add(key)
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
