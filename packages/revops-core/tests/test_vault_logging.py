"""No secret value and no master key ever reaches a log line, on success or failure paths."""

from __future__ import annotations

import io

import pytest
from sqlmodel import select

from revops_core.errors import ConfigurationError, IntegrityError, NotFound
from revops_core.logs import configure_logging
from revops_core.vault import Vault, VaultSecret, new_master_key

SECRET = "sk-live-UNIQUE-4f3b2a1c9d8e7f60"


@pytest.fixture
def captured():
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        configure_logging("INFO")


def test_no_secret_or_master_key_in_logs(db, make_settings, captured):
    master = new_master_key()
    newer = new_master_key()
    vault = Vault(db, make_settings(master_key=master))
    vault.set("zendesk", "default", {"api_token": SECRET})
    assert vault.get("zendesk", "default")["api_token"].reveal() == SECRET
    assert vault.credential("zendesk", "api_token").reveal() == SECRET
    with pytest.raises(ConfigurationError):
        vault.credential("zendesk", "missing_field")
    with pytest.raises(NotFound):
        vault.get("hubspot", "default")
    rotating = Vault(db, make_settings(master_key=f"{newer},{master}"))
    rotating.rotate()
    # Tamper so that the failure path (warning + audit) runs too.
    with db.session(write=True) as s:
        row = s.exec(select(VaultSecret)).one()
        row.kek_id = "kek_ffffffffffffffff"
        s.add(row)
    with pytest.raises(IntegrityError):
        rotating.get("zendesk", "default")
    with pytest.raises(ConfigurationError):
        Vault(db, make_settings(master_key="too-short")).set("x", "default", {"a": "b"})
    output = captured.getvalue()
    assert "vault.set" in output  # the log really was captured
    assert "vault.rotated" in output
    assert "vault.integrity_failure" in output
    for forbidden in (SECRET, master, newer):
        assert forbidden not in output
