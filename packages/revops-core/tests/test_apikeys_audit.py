"""API keys: creation and revocation audited, one name per key (the name is the audited actor).

Through `revops keys …` in-process and the `apikeys` functions, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlmodel import col, func, select

from revops_core.apikeys import ApiKey, create_key, resolve_bearer, revoke_key
from revops_core.audit import AuditEntry
from revops_core.db import current_versions, upgrade, utcnow
from revops_core.errors import Conflict
from revops_core.settings import Settings
from revops_core.testing import run_cli as run


@pytest.fixture
def cli_env(cli_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The shared CLI environment, run by operator `local:ana`."""
    monkeypatch.setenv("REVOPS_ACTOR", "local:ana")
    return cli_env


def key_entries(db: Any) -> list[AuditEntry]:
    with db.session() as s:
        return list(
            s.exec(
                select(AuditEntry)
                .where(col(AuditEntry.action).startswith("apikey."))
                .order_by(AuditEntry.seq)
            )
        )


def keys(db: Any) -> list[tuple[int, str, str, bool]]:
    with db.session() as s:
        rows = s.exec(select(ApiKey).order_by(col(ApiKey.id))).all()
        return [(r.id or 0, r.name, r.role, r.revoked_at is not None) for r in rows]


def test_keys_create_and_revoke_are_audited_as_the_operator_without_the_secret(cli_env, db, capsys):
    code, out, _ = run(capsys, "keys", "create", "--name", "rep", "--role", "member")
    assert code == 0
    raw = out.strip().splitlines()[-1]
    ((key_id, _, _, _),) = keys(db)

    (created,) = key_entries(db)
    assert (created.actor, created.action, created.target) == ("local:ana", "apikey.create", "apikey:rep")
    assert json.loads(created.details) == {"key_id": key_id, "role": "member"}

    assert run(capsys, "keys", "revoke", str(key_id))[0] == 0
    assert resolve_bearer(db, f"Bearer {raw}") is None
    # Revoking again changes nothing and records nothing.
    assert run(capsys, "keys", "revoke", str(key_id))[0] == 0
    entries = key_entries(db)
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("local:ana", "apikey.create", "apikey:rep"),
        ("local:ana", "apikey.revoke", "apikey:rep"),
    ]
    assert json.loads(entries[1].details) == {"key_id": key_id, "role": "member"}
    with db.session() as s:
        (stored,) = s.exec(select(ApiKey)).all()
    for entry in entries:
        written = f"{entry.actor} {entry.target} {entry.details}"
        assert raw not in written
        assert stored.key_hash not in written
        assert stored.key_prefix not in written


def test_create_key_audits_the_given_actor_and_defaults_to_the_configured_one(db, settings):
    create_key(db, name="ops", role="viewer", actor="local:ben")
    key, _ = create_key(db, name="etl", role="admin")
    revoke_key(db, key.id or 0, actor="local:ben")
    assert [(e.actor, e.action, e.target) for e in key_entries(db)] == [
        ("local:ben", "apikey.create", "apikey:ops"),
        (settings.actor, "apikey.create", "apikey:etl"),
        ("local:ben", "apikey.revoke", "apikey:etl"),
    ]


def test_a_duplicate_key_name_is_refused_naming_the_field_and_nothing_changes(cli_env, db, capsys):
    assert run(capsys, "keys", "create", "--name", "rep", "--role", "viewer")[0] == 0
    before = (keys(db), len(key_entries(db)))

    code, out, err = run(capsys, "keys", "create", "--name", "rep", "--role", "admin")
    assert code == 2
    assert out == ""  # no key printed
    assert "[conflict] An API key named 'rep' already exists (key 1)" in err
    assert "--name" in err
    assert (keys(db), len(key_entries(db))) == before

    with pytest.raises(Conflict) as caught:
        create_key(db, name="rep", role="admin")
    assert caught.value.field == "name"

    # A revoked key keeps its name: past entries by key:rep must stay attributable to one key.
    revoke_key(db, 1)
    with pytest.raises(Conflict):
        create_key(db, name="rep", role="admin")
    assert [k[1] for k in keys(db)] == ["rep"]


def test_the_database_refuses_a_duplicate_name_the_check_did_not_see(db):
    # The friendly check runs first; the unique index is what holds under a race. Written directly
    # here because that is the guarantee under test.
    create_key(db, name="rep", role="viewer")
    with pytest.raises(DBIntegrityError), db.session(write=True) as s:
        s.add(ApiKey(name="rep", role="admin", key_hash="f" * 64, key_prefix="rvk_x"))
    assert [k[1] for k in keys(db)] == ["rep"]


def test_core_v2_renames_existing_duplicate_names_then_adds_the_unique_index(db):
    # A database from before this step: core at v1 without the index, holding duplicates (which
    # only older versions could write, so the rows are inserted directly).
    with db.session(write=True) as s:
        s.execute(text("DROP INDEX uq_core_api_key_name"))
        s.execute(text("UPDATE core_schema_version SET version = 1 WHERE component = 'core'"))
    rows = [
        ("rep", "member", True),  # 1: the oldest, revoked
        ("rep", "admin", False),  # 2: the oldest active one keeps the name
        ("rep", "viewer", False),  # 3
        ("ops", "viewer", False),  # 4
        ("rep#3", "viewer", False),  # 5: the name key 3 would get is taken
    ]
    with db.session(write=True) as s:
        for number, (name, role, revoked) in enumerate(rows, start=1):
            key = ApiKey(name=name, role=role, key_hash=f"{number:064d}", key_prefix=f"rvk_{number}")
            key.revoked_at = utcnow() if revoked else None
            s.add(key)

    applied = upgrade(db)
    assert "core v2: one name per API key" in applied
    assert current_versions(db)["core"] >= 2
    assert keys(db) == [
        (1, "rep#1", "member", True),
        (2, "rep", "admin", False),
        (3, "rep#3-2", "viewer", False),
        (4, "ops", "viewer", False),
        (5, "rep#3", "viewer", False),
    ]
    with pytest.raises(Conflict):
        create_key(db, name="rep", role="viewer")
    assert upgrade(db) == []  # applied once


def test_core_v2_on_a_new_database_is_a_no_op(db):
    # The fixture database was migrated from nothing: v1 already made the index, v2 found nothing.
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(ApiKey)).one() == 0
    assert current_versions(db)["core"] >= 2
