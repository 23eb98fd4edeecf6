"""Credential vault: envelope encryption with AES-256-GCM, key ids, AAD binding and KEK rotation.

Each secret (provider, name, server) gets its own random data key (DEK). Every field is sealed under
the DEK with a fresh 96-bit nonce and an AAD naming the exact record and field, so a ciphertext
copied to another record or field fails to open. The DEK is sealed the same way under a
key-encryption key (KEK) whose id is stored beside it; rotating the KEK only re-wraps DEKs.

KEKs come from a small keyring: `REVOPS_MASTER_KEY` (one or more base64 keys, comma separated, the
first active) or, by default, a 0600 key file in the data dir created on first use (fine for one
host; servers on several hosts sharing PostgreSQL need the same REVOPS_MASTER_KEY). Anything that
fails to open — unknown key id, a flipped bit, a moved ciphertext — raises `IntegrityError` with a
message that names the record, never a value. Every decrypt is audited.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import json
import os
import re
import secrets as _random
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import Column, Text, UniqueConstraint, text
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import Field, Session, SQLModel, col, func, select

from revops_core import audit
from revops_core.db import Database, utc_field, utcnow
from revops_core.errors import ConfigurationError, Conflict, IntegrityError, NotFound, ValidationFailed
from revops_core.logs import get_logger
from revops_core.secret_values import Secret
from revops_core.settings import Settings

FORMAT_VERSION: Final = 1
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
KEY_FILE_NAME: Final = "vault-keyring.json"
SIGNING_PROVIDER: Final = "revops-signing"
SIGNING_FIELD: Final = "ed25519_private_key"
KEYRING_LOCK_KEY: Final = 7411004  # PostgreSQL advisory lock id for rotate/retire (db.py 7411001, audit …002)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_SERVER_RE = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]{0,63})$")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")

log = get_logger(__name__)


class VaultSecret(SQLModel, table=True):
    """One secret: its wrapped DEK and its sealed fields (one ciphertext per field)."""

    __tablename__ = "core_vault_secret"
    __table_args__ = (UniqueConstraint("tenant", "server", "provider", "name", name="uq_core_vault_secret"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=64)
    server: str = Field(max_length=64)
    provider: str = Field(max_length=64, index=True)
    name: str = Field(max_length=64)
    format_version: int
    kek_id: str = Field(max_length=40, index=True)
    wrapped_dek: str = Field(max_length=200, description="base64(nonce || AES-GCM(KEK, DEK)).")
    sealed_fields: str = Field(
        sa_column=Column(Text, nullable=False), description="JSON {field: base64(nonce || ciphertext)}."
    )
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)


class VaultEntryInfo(BaseModel):
    """What `list()` shows about a secret: never a value."""

    provider: str = PydField(description="Vendor or purpose the secret belongs to.")
    name: str = PydField(description="Name of the secret within the provider (e.g. 'default').")
    server: str = PydField(description="Server the secret is for; '*' means every server.")
    fields: list[str] = PydField(description="Names of the stored fields.")
    key_id: str = PydField(description="Id of the key-encryption key wrapping this secret's data key.")
    created_at: datetime = PydField(description="When the secret was first stored (UTC).")
    updated_at: datetime = PydField(description="When the secret was last changed (UTC).")


@dataclass(frozen=True)
class KeyProbe:
    """Outcome of decrypt-testing one secret wrapped by a key id (`Vault.probe_keys()`)."""

    key_id: str
    secrets: int
    """How many of this tenant's secrets the key id wraps."""
    tested: str
    """The secret tested (`provider/name`): the first stored under this key id."""
    error: str | None
    """Why its data key did not open (never a value); None when it opened."""
    hint: str | None = None


class RotationReport(BaseModel):
    """Outcome of `Vault.rotate()`."""

    active_key_id: str = PydField(description="The KEK every data key is now wrapped by.")
    created: bool = PydField(description="Whether rotate() generated that KEK (key-file keyrings only).")
    rewrapped: int = PydField(description="Number of data keys re-wrapped under the active KEK.")
    retirable_key_ids: list[str] = PydField(description="Older KEKs no secret uses any more.")


class RetireReport(BaseModel):
    """Outcome of `Vault.retire()`."""

    key_id: str = PydField(description="The retired KEK.")
    removed_from: Literal["key_file", "environment"] = PydField(description="Where the KEK lived.")
    next_step: str | None = PydField(default=None, description="What the operator still has to do.")


# --------------------------------------------------------------------------- AES-GCM primitives


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM encrypt under a fresh random 96-bit nonce; returns nonce || ciphertext || tag."""
    return _seal_with_nonce(key, os.urandom(NONCE_BYTES), plaintext, aad)


def _seal_with_nonce(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    # Separate from seal() only so known-answer tests can pin the nonce; production always draws one.
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes, *, what: str) -> bytes:
    """Open `nonce || ciphertext || tag`; any tampering raises IntegrityError naming `what`."""
    if len(key) != KEY_BYTES or len(sealed) < NONCE_BYTES + 16:
        raise IntegrityError(f"Vault data for {what} is malformed.")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise IntegrityError(
            f"Vault data for {what} failed its integrity check (tampered, moved or wrong key)."
        ) from None


def _aad(*parts: str | int) -> bytes:
    # JSON of a list is unambiguous: no two different tuples share an encoding.
    return json.dumps(["revops-vault", *parts], separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, *, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError(f"Vault data for {what} is not valid base64.") from None


# --------------------------------------------------------------------------- keyring


def key_id_of(key: bytes) -> str:
    """A KEK's public id: a hash prefix, so the id reveals nothing and cannot be chosen."""
    return "kek_" + hashlib.sha256(b"revops-vault-kek:" + key).hexdigest()[:16]


@dataclass
class Keyring:
    """The KEKs this process can use. `active_id` wraps new data keys."""

    source: Literal["environment", "key_file"]
    keys: dict[str, bytes] = field(repr=False)
    active_id: str
    path: Path | None = None
    stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the key file when read

    def key(self, key_id: str, *, what: str) -> bytes:
        found = self.keys.get(key_id)
        if found is None:
            raise IntegrityError(
                f"Vault data for {what} is wrapped by an unknown key ({key_id}).",
                hint="Restore the key file or REVOPS_MASTER_KEY that held this key; nothing was changed.",
            )
        return found


def _decode_master_key(raw: str, position: int) -> bytes:
    key = b""
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            key = decode(raw.strip().encode())
            break
        except (binascii.Error, ValueError):
            continue
    if len(key) != KEY_BYTES:
        # Never echo the value: it is (or is meant to be) key material.
        raise ConfigurationError(
            f"REVOPS_MASTER_KEY entry {position} is not base64 of 32 bytes.",
            field="REVOPS_MASTER_KEY",
            hint="Generate one with `python -c 'import base64, os; "
            "print(base64.b64encode(os.urandom(32)).decode())'`.",
        )
    return key


def _keyring_from_environment(value: str) -> Keyring:
    parts = [p for p in value.split(",") if p.strip()]
    if not parts:
        raise ConfigurationError("REVOPS_MASTER_KEY is empty.", field="REVOPS_MASTER_KEY")
    keys = [_decode_master_key(raw, position) for position, raw in enumerate(parts, start=1)]
    return Keyring(source="environment", keys={key_id_of(k): k for k in keys}, active_id=key_id_of(keys[0]))


def _check_key_file_mode(path: Path) -> os.stat_result:
    st = path.stat()
    if os.name == "posix" and st.st_mode & 0o077:
        raise ConfigurationError(
            f"The vault key file {path} is readable by other users (mode {oct(st.st_mode & 0o777)}).",
            field="data_dir",
            hint=f"Restrict it with `chmod 600 {path}` (and check who could have read it), then retry.",
        )
    return st


def _read_key_file(path: Path) -> Keyring:
    st = _check_key_file_mode(path)
    try:
        doc = json.loads(path.read_text())
        keys = {key_id_of(k): k for k in (base64.b64decode(e["key"]) for e in doc["keys"])}
        active = str(doc["active"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ConfigurationError(
            f"The vault key file {path} is damaged.",
            field="data_dir",
            hint="Restore it from your backup; without it the stored secrets cannot be opened.",
        ) from None
    if active not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
        raise ConfigurationError(f"The vault key file {path} is inconsistent.", field="data_dir")
    return Keyring("key_file", keys, active, path, (st.st_mtime_ns, st.st_size))


def _write_key_file(path: Path, keys: dict[str, bytes], active_id: str, *, create_only: bool) -> None:
    """Write atomically with mode 0600 from the first byte; `create_only` loses a creation race safely."""
    doc = {
        "version": 1,
        "active": active_id,
        "keys": [{"id": kid, "key": _b64(k)} for kid, k in keys.items()],
    }
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data dir, when this creates it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vault-keyring-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if create_only:
            # link() fails if another process created the file first; we then use theirs.
            with suppress(FileExistsError):
                os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_keyring(settings: Settings) -> Keyring:
    """The keyring for these settings: REVOPS_MASTER_KEY if set, else the key file (created if absent)."""
    if settings.master_key is not None:
        return _keyring_from_environment(settings.master_key.get_secret_value())
    path = settings.data_dir / KEY_FILE_NAME
    if not path.exists():
        key = AESGCM.generate_key(bit_length=256)
        _write_key_file(path, {key_id_of(key): key}, key_id_of(key), create_only=True)
        log.info("vault.key_file_created", path=str(path))
    return _read_key_file(path)


# --------------------------------------------------------------------------- the vault


def _check_names(provider: str, name: str, server: str) -> None:
    if not _NAME_RE.match(provider):
        raise ValidationFailed(
            "Invalid provider name.", field="provider", hint="Use letters, digits, '_', '.', ':' or '-'."
        )
    if not _NAME_RE.match(name):
        raise ValidationFailed(
            "Invalid secret name.", field="name", hint="Use letters, digits, '_', '.', ':' or '-'."
        )
    if not _SERVER_RE.match(server):
        raise ValidationFailed("Invalid server name.", field="server", hint="Use '*' or a server name.")


class Vault:
    """The suite's credential store. Thread-safe; create one per process (or per test)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.tenant = settings.tenant
        self._lock = threading.Lock()
        self._ring: Keyring | None = None

    # ---------------------------------------------------------------- keyring access

    def keyring(self, *, refresh: bool = False) -> Keyring:
        """The current keyring; a key file changed by another process (rotation) is re-read."""
        with self._lock:
            ring = self._ring
            if ring is None or refresh or self._key_file_changed(ring):
                ring = self._ring = load_keyring(self.settings)
            return ring

    @staticmethod
    def _key_file_changed(ring: Keyring) -> bool:
        if ring.path is None:
            return False
        try:
            st = ring.path.stat()
        except FileNotFoundError:
            return True
        return (st.st_mtime_ns, st.st_size) != ring.stamp

    def _kek(self, key_id: str, *, what: str) -> bytes:
        ring = self.keyring()
        if key_id not in ring.keys:
            ring = self.keyring(refresh=True)  # another process may have rotated meanwhile
        return ring.key(key_id, what=what)

    # ---------------------------------------------------------------- sealing

    def _seal_record(self, row: VaultSecret, fields: dict[str, str]) -> None:
        ring = self.keyring()
        dek = AESGCM.generate_key(bit_length=256)
        row.format_version = FORMAT_VERSION
        row.kek_id = ring.active_id
        row.wrapped_dek = _b64(seal(ring.keys[ring.active_id], dek, self._dek_aad(row, ring.active_id)))
        row.sealed_fields = json.dumps(
            {f: _b64(seal(dek, v.encode(), self._field_aad(row, f))) for f, v in sorted(fields.items())}
        )

    def _open_record(self, row: VaultSecret) -> dict[str, Secret]:
        what = f"{row.provider}/{row.name}"
        if row.format_version != FORMAT_VERSION:
            raise IntegrityError(f"Vault data for {what} has an unknown format version.")
        dek = self._unwrap_dek(row)
        try:
            sealed = json.loads(row.sealed_fields)
        except ValueError:
            sealed = None
        if not isinstance(sealed, dict):
            raise IntegrityError(f"Vault data for {what} is malformed.")
        return {
            f: Secret(unseal(dek, _unb64(v, what=what), self._field_aad(row, f), what=what).decode())
            for f, v in sealed.items()
        }

    def _unwrap_dek(self, row: VaultSecret) -> bytes:
        what = f"{row.provider}/{row.name}"
        kek = self._kek(row.kek_id, what=what)
        return unseal(kek, _unb64(row.wrapped_dek, what=what), self._dek_aad(row, row.kek_id), what=what)

    @staticmethod
    def _dek_aad(row: VaultSecret, key_id: str) -> bytes:
        return _aad(FORMAT_VERSION, "dek", row.tenant, row.server, row.provider, row.name, key_id)

    @staticmethod
    def _field_aad(row: VaultSecret, field_name: str) -> bytes:
        return _aad(FORMAT_VERSION, "field", row.tenant, row.server, row.provider, row.name, field_name)

    # ---------------------------------------------------------------- queries

    def _find(self, s: Session, provider: str, name: str, server: str) -> VaultSecret | None:
        return s.exec(
            select(VaultSecret).where(
                VaultSecret.tenant == self.tenant,
                VaultSecret.server == server,
                VaultSecret.provider == provider,
                VaultSecret.name == name,
            )
        ).first()

    def _audit(self, s: Session, action: str, provider: str, name: str, **details: Any) -> None:
        audit.append(
            s,
            actor=self.settings.actor,
            action=action,
            target=f"vault:{provider}/{name}",
            details=details,
            tenant=self.tenant,
        )

    @contextmanager
    def _audited_failures(self, provider: str, name: str, server: str) -> Iterator[None]:
        """Record a failed integrity check in its own transaction (the failing one rolls back)."""
        try:
            yield
        except IntegrityError as exc:
            log.warning("vault.integrity_failure", provider=provider, name=name, server=server)
            with self.db.session(write=True) as s:
                self._audit(s, "vault.integrity_failure", provider, name, server=server, error=exc.message)
            raise

    # ---------------------------------------------------------------- public API

    def set(
        self, provider: str, name: str, fields: dict[str, str], *, server: str = "*", replace: bool = False
    ) -> VaultEntryInfo:
        """Store fields of a secret under a fresh data key. Existing fields are kept unless `replace`."""
        _check_names(provider, name, server)
        if not fields:
            raise ValidationFailed("No fields given.", field="fields", hint="Pass at least one FIELD=VALUE.")
        for key, value in fields.items():
            if not _FIELD_RE.match(key):
                raise ValidationFailed(
                    f"Invalid field name {key!r}.", field="fields", hint="Use letters, digits, '_' or '-'."
                )
            if not isinstance(value, str) or not value:
                raise ValidationFailed(f"Field {key!r} has no value.", field="fields")
        with self._audited_failures(provider, name, server), self.db.session(write=True) as s:
            row = self._find(s, provider, name, server)
            merged = dict(fields)
            if row is None:
                row = self._new_row(provider, name, server)
            else:
                if not replace:
                    merged = {k: v.reveal() for k, v in self._open_record(row).items()} | fields
                row.updated_at = utcnow()
            self._seal_record(row, merged)
            s.add(row)
            self._audit(s, "vault.set", provider, name, server=server, fields=sorted(fields))
            s.flush()
            info = self._info(row)
        log.info("vault.set", provider=provider, name=name, server=server, fields=sorted(fields))
        return info

    def get(self, provider: str, name: str, *, server: str = "*") -> dict[str, Secret]:
        """Decrypt every field of a secret; audited as `vault.decrypt`. NotFound if absent."""
        _check_names(provider, name, server)
        with self._audited_failures(provider, name, server), self.db.session(write=True) as s:
            row = self._find(s, provider, name, server)
            if row is None:
                raise NotFound(
                    f"No vault secret {provider}/{name} for server {server!r}.",
                    hint="List secrets with `revops vault list`.",
                )
            values = self._open_record(row)
            self._audit(s, "vault.decrypt", provider, name, server=server, fields=sorted(values))
        return values

    def credential(self, provider: str, field: str, *, name: str = "default", server: str = "*") -> Secret:
        """One field of a credential: the server's own entry first, then the suite-wide ('*') one."""
        servers = [server, "*"] if server != "*" else ["*"]
        for candidate in servers:
            try:
                values = self.get(provider, name, server=candidate)
            except NotFound:
                continue
            if field in values:
                return values[field]
        # No --server in the hint: a suite-wide ('*') entry is found by the fallback above, for every server.
        name_opt = "" if name == "default" else f" --name {name}"
        raise ConfigurationError(
            f"No credential {field!r} is stored for {provider} ({name}).",
            field=field,
            hint=f"Run `revops vault set {provider}{name_opt} {field}=…` and call again.",
        )

    def list(self) -> list[VaultEntryInfo]:
        """Metadata of every secret of this tenant; never a value."""
        with self.db.session() as s:
            rows = s.exec(
                select(VaultSecret)
                .where(VaultSecret.tenant == self.tenant)
                .order_by(col(VaultSecret.provider), col(VaultSecret.name), col(VaultSecret.server))
            ).all()
            return [self._info(r) for r in rows]

    def delete(self, provider: str, name: str, *, server: str = "*") -> None:
        """Delete a secret (audited). NotFound if absent."""
        _check_names(provider, name, server)
        with self.db.session(write=True) as s:
            row = self._find(s, provider, name, server)
            if row is None:
                raise NotFound(f"No vault secret {provider}/{name} for server {server!r}.")
            s.delete(row)
            self._audit(s, "vault.delete", provider, name, server=server)
        log.info("vault.delete", provider=provider, name=name, server=server)

    def rotate(self) -> RotationReport:
        """Make a new KEK active (key-file keyrings) and re-wrap every data key under the active KEK.

        With REVOPS_MASTER_KEY the process cannot create keys: list the new key first
        (`REVOPS_MASTER_KEY=<new>,<old>`) and rotate() re-wraps everything under it.
        """
        rewrapped = 0
        with self.db.session(write=True) as s:
            ring = self._lock_keyring(s)
            created = ring.source == "key_file"
            if created:
                assert ring.path is not None
                new_key = AESGCM.generate_key(bit_length=256)
                # The new key is on disk before any data key depends on it.
                _write_key_file(
                    ring.path,
                    {**ring.keys, key_id_of(new_key): new_key},
                    key_id_of(new_key),
                    create_only=False,
                )
                ring = self.keyring(refresh=True)
            rows = s.exec(select(VaultSecret).where(VaultSecret.kek_id != ring.active_id)).all()
            if not created and not rows and len(ring.keys) == 1:
                raise ConfigurationError(
                    "REVOPS_MASTER_KEY holds a single key, so there is no new key to rotate to.",
                    field="REVOPS_MASTER_KEY",
                    hint="Generate a key, set REVOPS_MASTER_KEY=<new>,<old>, restart, then rotate again.",
                )
            for row in rows:
                what = f"{row.provider}/{row.name}"
                dek = self._unwrap_dek(row)
                row.kek_id = ring.active_id
                row.wrapped_dek = _b64(
                    seal(ring.keys[ring.active_id], dek, self._dek_aad(row, ring.active_id))
                )
                row.updated_at = utcnow()
                s.add(row)
                rewrapped += 1
                log.debug("vault.rewrapped", secret=what)
            in_use = set(s.exec(select(VaultSecret.kek_id).distinct()).all())
            retirable = sorted(k for k in ring.keys if k != ring.active_id and k not in in_use)
            audit.append(
                s,
                actor=self.settings.actor,
                action="vault.rotate",
                target="vault:keyring",
                details={"active_key_id": ring.active_id, "rewrapped": rewrapped},
                tenant=self.tenant,
            )
        log.info("vault.rotated", active_key_id=ring.active_id, rewrapped=rewrapped, created=created)
        return RotationReport(
            active_key_id=ring.active_id, created=created, rewrapped=rewrapped, retirable_key_ids=retirable
        )

    def retire(self, key_id: str) -> RetireReport:
        """Remove a KEK from the keyring; refused (Conflict) while it is active or wraps any data key."""
        with self.db.session(write=True) as s:
            ring = self._lock_keyring(s)
            if key_id not in ring.keys:
                raise NotFound(f"No key {key_id!r} in the vault keyring.", field="key_id")
            if key_id == ring.active_id:
                raise Conflict(
                    f"Key {key_id} is the active key.",
                    field="key_id",
                    hint="Run `revops vault rotate` first, then retire the old key.",
                )
            in_use = s.exec(
                select(func.count()).select_from(VaultSecret).where(VaultSecret.kek_id == key_id)
            ).one()
            if in_use:
                raise Conflict(
                    f"Key {key_id} still wraps {in_use} secret(s).",
                    field="key_id",
                    hint="Run `revops vault rotate` to re-wrap them, then retire the key.",
                )
            next_step = None
            if ring.source == "key_file":
                assert ring.path is not None
                remaining = {k: v for k, v in ring.keys.items() if k != key_id}
                _write_key_file(ring.path, remaining, ring.active_id, create_only=False)
            else:
                next_step = "Remove this key from REVOPS_MASTER_KEY and restart the servers."
            audit.append(
                s,
                actor=self.settings.actor,
                action="vault.retire",
                target="vault:keyring",
                details={"key_id": key_id},
                tenant=self.tenant,
            )
        self.keyring(refresh=True)
        log.info("vault.retired", key_id=key_id)
        return RetireReport(key_id=key_id, removed_from=ring.source, next_step=next_step)

    def _lock_keyring(self, s: Session) -> Keyring:
        """Serialise keyring changes across processes (the key file has no lock of its own), then re-read."""
        if self.db.dialect == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": KEYRING_LOCK_KEY})
        else:
            s.execute(text("SELECT 1"))  # the first statement starts SQLite's BEGIN IMMEDIATE
        return self.keyring(refresh=True)

    def probe_keys(self) -> builtins.list[KeyProbe]:  # `list` is the method above
        """Decrypt-test one secret per key id in use: unwrap its data key with the keyring.

        Read-only, for `revops doctor`: never creates a key file (a missing one is an empty
        keyring), opens no field value, writes and audits nothing. A key file replaced by another
        valid key, a key dropped from REVOPS_MASTER_KEY or a damaged wrapped key shows here.
        """
        if self.settings.master_key is None and not (self.settings.data_dir / KEY_FILE_NAME).exists():
            ring = Keyring(source="key_file", keys={}, active_id="")
        else:
            ring = load_keyring(self.settings)
        with self.db.session() as s:
            groups = s.exec(
                select(VaultSecret.kek_id, func.count(), func.min(VaultSecret.id))
                .where(VaultSecret.tenant == self.tenant)
                .group_by(col(VaultSecret.kek_id))
                .order_by(col(VaultSecret.kek_id))
            ).all()
            probes = []
            for key_id, count, first_id in groups:
                row = s.get(VaultSecret, first_id)
                assert row is not None
                what = f"{row.provider}/{row.name}"
                error = hint = None
                try:
                    if row.format_version != FORMAT_VERSION:
                        raise IntegrityError(f"Vault data for {what} has an unknown format version.")
                    unseal(
                        ring.key(key_id, what=what),
                        _unb64(row.wrapped_dek, what=what),
                        self._dek_aad(row, key_id),
                        what=what,
                    )
                except IntegrityError as exc:
                    error, hint = exc.message, exc.hint
                probes.append(KeyProbe(key_id, int(count), what, error, hint))
        return probes

    def signing_key(self, name: str) -> Ed25519PrivateKey:
        """The Ed25519 key `name` (e.g. the audit log's checkpoint key), generated on first use.

        Call it outside an open write transaction: on SQLite it takes the write lock itself.
        """
        try:
            raw = self.get(SIGNING_PROVIDER, name)[SIGNING_FIELD].reveal()
        except NotFound:
            created = Ed25519PrivateKey.generate()
            raw = _b64(
                created.private_bytes(
                    serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
                )
            )
            try:
                self._create_only(SIGNING_PROVIDER, name, {SIGNING_FIELD: raw})
            except Conflict:
                raw = self.get(SIGNING_PROVIDER, name)[SIGNING_FIELD].reveal()  # another process won
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw))

    def verify_key(self, name: str) -> Ed25519PublicKey:
        """The public half of signing key `name`. NotFound if it was never generated."""
        try:
            raw = self.get(SIGNING_PROVIDER, name)[SIGNING_FIELD].reveal()
        except NotFound:
            raise NotFound(f"No signing key {name!r} exists yet.", field="name") from None
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw)).public_key()

    # ---------------------------------------------------------------- helpers

    def _create_only(self, provider: str, name: str, fields: dict[str, str], *, server: str = "*") -> None:
        """Insert a secret that must not exist yet; Conflict if it does (even via a concurrent insert)."""
        _check_names(provider, name, server)
        try:
            with self.db.session(write=True) as s:
                if self._find(s, provider, name, server) is not None:
                    raise Conflict(f"Vault secret {provider}/{name} already exists.")
                row = self._new_row(provider, name, server)
                self._seal_record(row, fields)
                s.add(row)
                self._audit(s, "vault.set", provider, name, server=server, fields=sorted(fields))
        except DBIntegrityError:
            raise Conflict(f"Vault secret {provider}/{name} already exists.") from None

    def _new_row(self, provider: str, name: str, server: str) -> VaultSecret:
        # Crypto columns are filled by _seal_record before the row is flushed.
        return VaultSecret(
            tenant=self.tenant,
            server=server,
            provider=provider,
            name=name,
            format_version=FORMAT_VERSION,
            kek_id="",
            wrapped_dek="",
            sealed_fields="",
        )

    @staticmethod
    def _info(row: VaultSecret) -> VaultEntryInfo:
        return VaultEntryInfo(
            provider=row.provider,
            name=row.name,
            server=row.server,
            fields=sorted(json.loads(row.sealed_fields)),
            key_id=row.kek_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def new_master_key() -> str:
    """A fresh REVOPS_MASTER_KEY value (base64 of 32 random bytes)."""
    return _b64(_random.token_bytes(KEY_BYTES))
