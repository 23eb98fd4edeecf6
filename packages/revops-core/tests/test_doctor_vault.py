"""`revops doctor` and the vault: each vendor read from its VendorSpec, one decrypt test per key id.

Run in-process (`main(argv)`) against the real test database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from revops_core.audit import AuditEntry
from revops_core.cli.doctor import installed_servers, vendor_specs
from revops_core.cli.main import main
from revops_core.vault import (
    KEY_FILE_NAME,
    Vault,
    VaultSecret,
    _write_key_file,
    key_id_of,
    new_master_key,
)

ZENDESK = {"subdomain": "acme", "email": "ana@acme.test", "api_token": "zd-token-123"}


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, Any]]]:
    capsys.readouterr()  # drop what the test's own set-up printed (logs before the CLI configures them)
    code = main(["doctor", "--json"])
    out, _ = capsys.readouterr()
    return code, {c["name"]: c for c in json.loads(out)["checks"]}


def audit_count(db: Any) -> int:
    with db.session() as s:
        return int(s.exec(select(func.count()).select_from(AuditEntry)).one())


def test_a_vendor_with_nothing_stored_reads_not_configured(cli_env, db, capsys):
    specs = {(server, spec.provider): spec for server in installed_servers() for spec in vendor_specs(server)}
    assert {("cs", p) for p in ("zendesk", "intercom", "mixpanel", "sendgrid")} <= set(specs)

    code, checks = doctor(capsys)
    assert code == 0
    for (server, provider), spec in specs.items():  # each server checks the vendors it ships
        check = checks[f"credentials:{server}:{provider}"]
        assert check["status"] == "warn"
        assert check["message"] == f"{spec.title} not configured; {server} uses local data"
        assert check["hint"].startswith(f"`revops vault set {provider} ")
    assert checks["vault_keys"] == {
        "name": "vault_keys",
        "status": "ok",
        "message": "No secrets stored yet",
        "hint": None,
    }

    # Part of an entry stored: still not configured, naming exactly what is missing.
    Vault(db, cli_env).set("zendesk", "default", {"subdomain": "acme"}, server="cs")
    code, checks = doctor(capsys)
    assert code == 0
    zendesk = checks["credentials:cs:zendesk"]
    assert zendesk["status"] == "warn"
    assert zendesk["message"] == "Zendesk not configured (missing email, api_token); cs uses local data"
    assert zendesk["hint"] == "`revops vault set zendesk email=- api_token=-` (values read from stdin)."


def test_a_stored_credential_is_ok_and_its_key_decrypt_tested_without_writing(cli_env, db, capsys):
    vault = Vault(db, cli_env)
    vault.set("zendesk", "default", ZENDESK)  # suite-wide: cs uses it
    active = vault.keyring().active_id
    before = audit_count(db)

    code, checks = doctor(capsys)
    assert code == 0
    assert checks["credentials:cs:zendesk"]["status"] == "ok"
    assert checks["credentials:cs:zendesk"]["message"] == "Zendesk credential stored"
    assert checks[f"vault_key:{active}"] == {
        "name": f"vault_key:{active}",
        "status": "ok",
        "message": "Decrypt test passed on zendesk/default (1 secret(s) under this key)",
        "hint": None,
    }
    assert audit_count(db) == before  # doctor reads; it neither decrypts a value nor audits


def test_a_key_file_replaced_by_another_valid_key_is_an_error(cli_env, db, capsys):
    vault = Vault(db, cli_env)
    vault.set("zendesk", "default", ZENDESK, server="cs")
    vault.set("sendgrid", "default", {"api_key": "SG.x", "from_email": "cs@acme.test"})
    old_id = vault.keyring().active_id
    path = Path(cli_env.data_dir) / KEY_FILE_NAME
    other = os.urandom(32)
    path.unlink()
    _write_key_file(path, {key_id_of(other): other}, key_id_of(other), create_only=True)  # valid, 0600

    code, checks = doctor(capsys)
    assert code == 1
    assert checks["key_material"]["status"] == "ok"  # the file itself is fine…
    probe = checks[f"vault_key:{old_id}"]  # …but it does not hold the key the secrets need
    assert probe["status"] == "error"
    assert probe["message"] == (
        "Decrypt test failed on zendesk/default (2 secret(s) under this key): "
        f"Vault data for zendesk/default is wrapped by an unknown key ({old_id})."
    )
    assert "Restore the key file or REVOPS_MASTER_KEY" in probe["hint"]
    for provider, title in (("zendesk", "Zendesk"), ("sendgrid", "SendGrid")):
        check = checks[f"credentials:cs:{provider}"]
        assert check["status"] == "error"
        assert check["message"] == (
            f"{title} credential stored but its key failed the decrypt test ({old_id})"
        )


def test_a_deleted_key_file_is_an_error_and_doctor_creates_no_new_one(cli_env, db, capsys):
    vault = Vault(db, cli_env)
    vault.set("zendesk", "default", ZENDESK)
    old_id = vault.keyring().active_id
    path = Path(cli_env.data_dir) / KEY_FILE_NAME
    path.unlink()
    before = audit_count(db)

    code, checks = doctor(capsys)
    assert code == 1
    assert checks[f"vault_key:{old_id}"]["status"] == "error"
    assert checks["credentials:cs:zendesk"]["status"] == "error"
    assert not path.exists()
    assert audit_count(db) == before


def test_one_record_per_key_id_is_tested(cli_env, db, capsys, monkeypatch, make_settings):
    first, second = new_master_key(), new_master_key()
    first_id, second_id = (key_id_of(base64.b64decode(k)) for k in (first, second))
    Vault(db, make_settings(master_key=first)).set("zendesk", "default", ZENDESK)
    both = Vault(db, make_settings(master_key=f"{second},{first}"))
    both.set("intercom", "default", {"access_token": "ic-token"})
    both.set("mixpanel", "default", {"project_id": "7"})

    monkeypatch.setenv("REVOPS_MASTER_KEY", f"{second},{first}")
    code, checks = doctor(capsys)
    assert code == 0
    assert checks[f"vault_key:{first_id}"]["message"] == (
        "Decrypt test passed on zendesk/default (1 secret(s) under this key)"
    )
    # Two secrets under the second key; the first one stored is the one tested.
    assert checks[f"vault_key:{second_id}"]["message"] == (
        "Decrypt test passed on intercom/default (2 secret(s) under this key)"
    )

    # The first key dropped from REVOPS_MASTER_KEY too early: only its secret is unreadable.
    monkeypatch.setenv("REVOPS_MASTER_KEY", second)
    code, checks = doctor(capsys)
    assert code == 1
    assert checks[f"vault_key:{first_id}"]["status"] == "error"
    assert checks[f"vault_key:{second_id}"]["status"] == "ok"
    assert checks["credentials:cs:zendesk"]["status"] == "error"
    assert checks["credentials:cs:intercom"]["status"] == "ok"
    # Mixpanel is stored under a key that opens, but lacks two fields: still a warning.
    assert checks["credentials:cs:mixpanel"]["status"] == "warn"


def test_a_damaged_wrapped_key_fails_the_decrypt_test(cli_env, db, capsys):
    vault = Vault(db, cli_env)
    vault.set("zendesk", "default", ZENDESK)
    active = vault.keyring().active_id
    # Tampering is what no tool can do: the test damages the stored row itself.
    with db.session(write=True) as s:
        row = s.exec(select(VaultSecret).where(VaultSecret.provider == "zendesk")).one()
        raw = bytearray(base64.b64decode(row.wrapped_dek))
        raw[-1] ^= 1
        row.wrapped_dek = base64.b64encode(bytes(raw)).decode()
        s.add(row)

    code, checks = doctor(capsys)
    assert code == 1
    probe = checks[f"vault_key:{active}"]
    assert probe["status"] == "error"
    assert probe["message"] == (
        "Decrypt test failed on zendesk/default (1 secret(s) under this key): Vault data for "
        "zendesk/default failed its integrity check (tampered, moved or wrong key)."
    )
