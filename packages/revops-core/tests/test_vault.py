"""The credential vault on real databases: envelope encryption, fail-closed integrity, rotation, audit."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from sqlmodel import select

from revops_core.audit import AuditEntry
from revops_core.errors import ConfigurationError, Conflict, IntegrityError, NotFound, ValidationFailed
from revops_core.secret_values import Secret
from revops_core.vault import (
    KEY_FILE_NAME,
    NONCE_BYTES,
    Vault,
    VaultSecret,
    key_id_of,
    new_master_key,
    seal,
    unseal,
)


@pytest.fixture
def vault(db, settings) -> Vault:
    return Vault(db, settings)


def _row(db, provider: str, name: str = "default") -> VaultSecret:
    with db.session() as s:
        return s.exec(
            select(VaultSecret).where(VaultSecret.provider == provider, VaultSecret.name == name)
        ).one()


def _update_row(db, row_id: int, **values: str) -> None:
    with db.session(write=True) as s:
        row = s.get(VaultSecret, row_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
        s.add(row)


def _audit_actions(db) -> list[tuple[str, str | None, str]]:
    with db.session() as s:
        return [(e.action, e.target, e.details) for e in s.exec(select(AuditEntry).order_by(AuditEntry.seq))]


def test_round_trip_stores_only_ciphertext(vault, db):
    vault.set("zendesk", "default", {"api_token": "zd-very-secret-123", "subdomain": "acme"})
    values = vault.get("zendesk", "default")
    assert values == {"api_token": Secret("zd-very-secret-123"), "subdomain": Secret("acme")}
    assert "zd-very-secret" not in repr(values)
    row = _row(db, "zendesk")
    assert "zd-very-secret" not in row.sealed_fields + row.wrapped_dek
    assert row.format_version == 1
    assert row.kek_id == vault.keyring().active_id


def test_set_merges_fields_unless_replace(vault):
    vault.set("zendesk", "default", {"api_token": "t1", "subdomain": "acme"})
    vault.set("zendesk", "default", {"api_token": "t2"})
    assert {k: v.reveal() for k, v in vault.get("zendesk", "default").items()} == {
        "api_token": "t2",
        "subdomain": "acme",
    }
    vault.set("zendesk", "default", {"api_token": "t3"}, replace=True)
    assert list(vault.get("zendesk", "default")) == ["api_token"]


def test_every_decrypt_is_audited_without_values(vault, db, settings):
    vault.set("hubspot", "default", {"token": "hs-secret-value"})
    vault.get("hubspot", "default")
    vault.get("hubspot", "default")
    entries = _audit_actions(db)
    assert [a for a, _, _ in entries] == ["vault.set", "vault.decrypt", "vault.decrypt"]
    assert all(target == "vault:hubspot/default" for _, target, _ in entries)
    assert all("hs-secret-value" not in details for _, _, details in entries)
    with db.session() as s:
        assert {e.actor for e in s.exec(select(AuditEntry))} == {settings.actor}


def test_list_shows_metadata_only(vault):
    vault.set("zendesk", "default", {"api_token": "secret-a"})
    vault.set("hubspot", "sandbox", {"token": "secret-b"}, server="sales")
    infos = vault.list()
    assert [(i.provider, i.name, i.server, i.fields) for i in infos] == [
        ("hubspot", "sandbox", "sales", ["token"]),
        ("zendesk", "default", "*", ["api_token"]),
    ]
    dumped = json.dumps([i.model_dump(mode="json") for i in infos])
    assert "secret-a" not in dumped
    assert "secret-b" not in dumped
    assert all(i.key_id.startswith("kek_") for i in infos)


def test_credential_names_the_missing_command(vault):
    with pytest.raises(ConfigurationError) as err:
        vault.credential("zendesk", "api_token")
    assert "revops vault set zendesk api_token=…" in err.value.hint
    vault.set("hubspot", "sandbox", {"other": "x"})
    with pytest.raises(ConfigurationError) as err:
        vault.credential("hubspot", "token", name="sandbox")
    assert "revops vault set hubspot --name sandbox token=…" in err.value.hint
    assert err.value.field == "token"


def test_credential_prefers_server_entry_then_suite_wide(vault):
    vault.set("zendesk", "default", {"api_token": "suite"})
    assert vault.credential("zendesk", "api_token", server="cs").reveal() == "suite"
    vault.set("zendesk", "default", {"api_token": "cs-only"}, server="cs")
    assert vault.credential("zendesk", "api_token", server="cs").reveal() == "cs-only"
    assert vault.credential("zendesk", "api_token").reveal() == "suite"


def test_delete_and_not_found(vault, db):
    vault.set("zendesk", "default", {"api_token": "x"})
    vault.delete("zendesk", "default")
    assert vault.list() == []
    with pytest.raises(NotFound):
        vault.get("zendesk", "default")
    with pytest.raises(NotFound):
        vault.delete("zendesk", "default")
    assert [a for a, _, _ in _audit_actions(db)] == ["vault.set", "vault.delete"]


@pytest.mark.parametrize(
    ("provider", "name", "fields", "bad_field"),
    [
        ("Bad Provider", "default", {"a": "b"}, "provider"),
        ("zendesk", "a/b", {"a": "b"}, "name"),
        ("zendesk", "default", {}, "fields"),
        ("zendesk", "default", {"bad field": "x"}, "fields"),
        ("zendesk", "default", {"a": ""}, "fields"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(vault, provider, name, fields, bad_field):
    with pytest.raises(ValidationFailed) as err:
        vault.set(provider, name, fields)
    assert err.value.field == bad_field
    assert vault.list() == []


def test_nonces_are_distinct_over_10000_encryptions():
    key = os.urandom(32)
    nonces = {seal(key, b"same plaintext", b"same aad")[:NONCE_BYTES] for _ in range(10_000)}
    assert len(nonces) == 10_000


def test_each_secret_gets_its_own_data_key_and_nonces(vault, db):
    for i in range(20):
        vault.set("p", f"n{i}", {"a": "same", "b": "same"})
    with db.session() as s:
        rows = s.exec(select(VaultSecret)).all()
    wrapped = {r.wrapped_dek for r in rows}
    field_nonces = {
        base64.b64decode(v)[:NONCE_BYTES] for r in rows for v in json.loads(r.sealed_fields).values()
    }
    assert len(wrapped) == 20
    assert len(field_nonces) == 40


def test_ciphertext_moved_to_another_record_fails_closed(vault, db):
    vault.set("zendesk", "default", {"api_token": "zd-secret"})
    vault.set("hubspot", "default", {"api_token": "hs-secret"})
    zd = _row(db, "zendesk")
    hs = _row(db, "hubspot")
    assert hs.id is not None
    # The whole sealed record copied onto another provider's row: the DEK's AAD names the record.
    _update_row(db, hs.id, wrapped_dek=zd.wrapped_dek, sealed_fields=zd.sealed_fields, kek_id=zd.kek_id)
    with pytest.raises(IntegrityError) as err:
        vault.get("hubspot", "default")
    assert "zd-secret" not in str(err.value)
    assert "hs-secret" not in str(err.value)
    assert ("vault.integrity_failure", "vault:hubspot/default") in [(a, t) for a, t, _ in _audit_actions(db)]


def test_record_moved_to_another_tenant_fails_closed(db, make_settings):
    Vault(db, make_settings(tenant="acme")).set("zendesk", "default", {"api_token": "zd-secret"})
    row = _row(db, "zendesk")
    assert row.id is not None
    _update_row(db, row.id, tenant="globex")
    with pytest.raises(IntegrityError):
        Vault(db, make_settings(tenant="globex")).get("zendesk", "default")


def test_ciphertext_moved_to_another_field_fails_closed(vault, db):
    vault.set("zendesk", "default", {"api_token": "zd-secret", "subdomain": "acme"})
    row = _row(db, "zendesk")
    sealed = json.loads(row.sealed_fields)
    sealed["subdomain"] = sealed["api_token"]
    assert row.id is not None
    _update_row(db, row.id, sealed_fields=json.dumps(sealed))
    with pytest.raises(IntegrityError):
        vault.get("zendesk", "default")


@pytest.mark.parametrize("column", ["wrapped_dek", "sealed_fields"])
def test_flipped_bit_fails_closed(vault, db, column):
    vault.set("zendesk", "default", {"api_token": "zd-secret"})
    row = _row(db, "zendesk")
    if column == "wrapped_dek":
        raw = bytearray(base64.b64decode(row.wrapped_dek))
        raw[-1] ^= 0x01
        tampered = base64.b64encode(bytes(raw)).decode()
    else:
        sealed = json.loads(row.sealed_fields)
        raw = bytearray(base64.b64decode(sealed["api_token"]))
        raw[NONCE_BYTES] ^= 0x80
        sealed["api_token"] = base64.b64encode(bytes(raw)).decode()
        tampered = json.dumps(sealed)
    assert row.id is not None
    _update_row(db, row.id, **{column: tampered})
    with pytest.raises(IntegrityError, match="integrity check"):
        vault.get("zendesk", "default")


def test_unknown_key_id_fails_closed(vault, db):
    vault.set("zendesk", "default", {"api_token": "zd-secret"})
    row = _row(db, "zendesk")
    assert row.id is not None
    _update_row(db, row.id, kek_id="kek_0000000000000000")
    with pytest.raises(IntegrityError, match="unknown key"):
        vault.get("zendesk", "default")


def test_data_wrapped_under_a_foreign_master_key_fails_closed(db, make_settings):
    writer = Vault(db, make_settings(master_key=new_master_key()))
    writer.set("zendesk", "default", {"api_token": "zd-secret"})
    reader = Vault(db, make_settings(master_key=new_master_key()))
    with pytest.raises(IntegrityError, match="unknown key"):
        reader.get("zendesk", "default")


def test_unseal_rejects_wrong_aad_and_key():
    key = os.urandom(32)
    sealed = seal(key, b"value", b"aad-1")
    assert unseal(key, sealed, b"aad-1", what="t") == b"value"
    with pytest.raises(IntegrityError):
        unseal(key, sealed, b"aad-2", what="t")
    with pytest.raises(IntegrityError):
        unseal(os.urandom(32), sealed, b"aad-1", what="t")
    with pytest.raises(IntegrityError):
        unseal(key, sealed[:20], b"aad-1", what="t")


# --------------------------------------------------------------------------- key file and master key


def test_key_file_is_created_0600_on_first_use(vault, settings):
    vault.set("zendesk", "default", {"api_token": "x"})
    path = settings.data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["active"] == vault.keyring().active_id == key_id_of(base64.b64decode(doc["keys"][0]["key"]))


def test_key_file_readable_by_others_is_refused(db, settings):
    Vault(db, settings).set("zendesk", "default", {"api_token": "x"})
    path = settings.data_dir / KEY_FILE_NAME
    path.chmod(0o644)
    with pytest.raises(ConfigurationError) as err:
        Vault(db, settings).get("zendesk", "default")
    assert "chmod 600" in err.value.hint
    assert err.value.field == "data_dir"


def test_master_key_from_settings(db, make_settings):
    key = new_master_key()
    settings = make_settings(master_key=key)
    vault = Vault(db, settings)
    vault.set("zendesk", "default", {"api_token": "x"})
    assert vault.list()[0].key_id == key_id_of(base64.b64decode(key))
    assert not (settings.data_dir / KEY_FILE_NAME).exists()


@pytest.mark.parametrize("bad", ["not-base64!!", base64.b64encode(b"short").decode(), " , "])
def test_bad_master_key_is_a_configuration_error_without_the_value(db, make_settings, bad):
    vault = Vault(db, make_settings(master_key=bad))
    with pytest.raises(ConfigurationError) as err:
        vault.set("zendesk", "default", {"api_token": "x"})
    assert err.value.field == "REVOPS_MASTER_KEY"
    if bad.strip(" ,"):
        assert bad not in err.value.message + err.value.hint


# --------------------------------------------------------------------------- rotation


def test_rotation_rewraps_and_old_key_can_then_be_retired(vault, db, settings):
    vault.set("zendesk", "default", {"api_token": "zd-secret"})
    vault.set("hubspot", "default", {"token": "hs-secret"})
    old = vault.keyring().active_id
    with pytest.raises(Conflict):
        vault.retire(old)  # still active
    report = vault.rotate()
    assert report.created
    assert report.rewrapped == 2
    assert report.active_key_id != old
    assert report.retirable_key_ids == [old]
    assert {i.key_id for i in vault.list()} == {report.active_key_id}
    # A fresh process (new Vault object) reads the rotated keyring from the key file.
    other = Vault(db, settings)
    assert other.get("zendesk", "default")["api_token"].reveal() == "zd-secret"
    retired = vault.retire(old)
    assert retired.removed_from == "key_file"
    assert old not in vault.keyring().keys
    assert other.get("hubspot", "default")["token"].reveal() == "hs-secret"
    actions = [a for a, _, _ in _audit_actions(db)]
    assert "vault.rotate" in actions
    assert "vault.retire" in actions


def test_retire_refuses_while_a_data_key_uses_the_key(vault, db):
    vault.set("zendesk", "default", {"api_token": "zd-secret"})
    old = vault.keyring().active_id
    vault.rotate()
    # Simulate a secret still wrapped by the old key (e.g. written by a process that missed the rotation).
    row = _row(db, "zendesk")
    assert row.id is not None
    _update_row(db, row.id, kek_id=old)
    with pytest.raises(Conflict) as err:
        vault.retire(old)
    assert "1 secret" in err.value.message
    assert old in vault.keyring().keys
    with pytest.raises(NotFound):
        vault.retire("kek_doesnotexist0000")


def test_rotation_with_master_keys(db, make_settings):
    old_key, new_key = new_master_key(), new_master_key()
    Vault(db, make_settings(master_key=old_key)).set("zendesk", "default", {"api_token": "zd-secret"})
    single = Vault(db, make_settings(master_key=old_key))
    with pytest.raises(ConfigurationError, match="single key"):
        single.rotate()
    vault = Vault(db, make_settings(master_key=f"{new_key},{old_key}"))
    old_id = key_id_of(base64.b64decode(old_key))
    with pytest.raises(Conflict):
        vault.retire(old_id)  # not yet re-wrapped
    report = vault.rotate()
    assert (report.created, report.rewrapped, report.retirable_key_ids) == (False, 1, [old_id])
    assert vault.retire(old_id).next_step is not None
    only_new = Vault(db, make_settings(master_key=new_key))
    assert only_new.get("zendesk", "default")["api_token"].reveal() == "zd-secret"


# --------------------------------------------------------------------------- signing keys


def test_signing_key_is_generated_once_and_verifies(vault, db, settings):
    with pytest.raises(NotFound):
        vault.verify_key("audit")
    key = vault.signing_key("audit")
    signature = key.sign(b"checkpoint")
    Vault(db, settings).verify_key("audit").verify(signature, b"checkpoint")
    again = Vault(db, settings).signing_key("audit")
    assert again.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    assert [i.provider for i in vault.list()] == ["revops-signing"]
