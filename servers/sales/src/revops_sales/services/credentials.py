"""Vendor credentials of the Sales server in the vault: list their metadata, delete one.

The delete runs inside the critical tool's own transaction (the one that consumed the approved
plan), so the plan, the row and the audit entry commit or roll back together; `Vault.delete` opens
a session of its own and would wait on that transaction's write lock on SQLite.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.audit import append as audit_append
from revops_core.errors import NotFound
from revops_core.outputs import Out
from revops_core.vault import VaultSecret

Scope = Literal["sales", "*"]
SCOPES: tuple[str, ...] = ("sales", "*")
"""Entries the Sales server reads: its own, then the suite-wide one."""


class CredentialOut(Out):
    provider: str = Field(description="Vendor.")
    name: str = Field(description="Credential name within the vendor.")
    server: str = Field(description="sales, or * for every server.")
    fields: list[str] = Field(description="Stored field names (never values).")
    updated_at: datetime = Field(description="Last changed (UTC).")


def _out(row: VaultSecret) -> CredentialOut:
    return CredentialOut(
        provider=row.provider,
        name=row.name,
        server=row.server,
        fields=sorted(json.loads(row.sealed_fields)),
        updated_at=row.updated_at,
    )


def list_all(session: Session, tenant: str) -> list[CredentialOut]:
    rows = session.exec(
        select(VaultSecret)
        .where(VaultSecret.tenant == tenant, col(VaultSecret.server).in_(SCOPES))
        .order_by(col(VaultSecret.provider), col(VaultSecret.name), col(VaultSecret.server))
    )
    return [_out(r) for r in rows]


def find(session: Session, tenant: str, provider: str, name: str, server: str) -> VaultSecret:
    row = session.exec(
        select(VaultSecret).where(
            VaultSecret.tenant == tenant,
            VaultSecret.server == server,
            VaultSecret.provider == provider,
            VaultSecret.name == name,
        )
    ).first()
    if row is None:
        raise NotFound(
            f"No credential {provider}/{name} for server {server!r}.",
            field="provider",
            hint="See stored credentials with list_credentials.",
        )
    return row


def fingerprint(row: VaultSecret) -> dict[str, object]:
    """What the plan was made from: a credential re-set or re-keyed since makes the plan stale."""
    return {"id": row.id, "updated_at": row.updated_at, "kek_id": row.kek_id, "fields": _out(row).fields}


def delete(session: Session, tenant: str, actor: str, row: VaultSecret) -> CredentialOut:
    gone = _out(row)
    session.delete(row)
    audit_append(
        session,
        actor=actor,
        action="vault.delete",
        target=f"vault:{row.provider}/{row.name}",
        details={"server": row.server},
        tenant=tenant,
    )
    session.flush()
    return gone
