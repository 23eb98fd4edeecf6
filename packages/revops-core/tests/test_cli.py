"""`revops` run in-process (main(argv)) against the test database: real rows, files and exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import select

from revops_core.apikeys import ApiKey, resolve_bearer
from revops_core.audit import AuditCheckpoint, AuditEntry, append
from revops_core.cli.main import main
from revops_core.settings import Settings
from revops_core.testing import run_cli as run

# --------------------------------------------------------------------------- keys


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(cli_env, db, capsys):
    code, out, _ = run(capsys, "keys", "create", "--name", "rep", "--role", "member")
    assert code == 0
    raw = out.strip().splitlines()[-1]
    assert raw.startswith("rvk_")
    assert resolve_bearer(db, f"Bearer {raw}") == ("key:rep", "member")
    with db.session() as s:
        (key,) = s.exec(select(ApiKey)).all()
    assert raw not in (key.key_hash, key.key_prefix)

    code, listed, _ = run(capsys, "keys", "list")
    assert code == 0
    assert "rep" in listed
    assert raw not in listed

    assert run(capsys, "keys", "revoke", str(key.id))[0] == 0
    assert resolve_bearer(db, f"Bearer {raw}") is None
    code, _, err = run(capsys, "keys", "revoke", "999")
    assert code == 2
    assert "not_found" in err


def test_keys_create_rejects_an_unknown_role(cli_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "create", "--name", "x", "--role", "owner"])
    assert exit_info.value.code == 2


# --------------------------------------------------------------------------- vault


def test_vault_set_reads_values_from_stdin_and_lists_no_values(cli_env, db, capsys, monkeypatch):
    from revops_core.vault import Vault

    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-token\n"))
    code, out, _ = run(capsys, "vault", "set", "zendesk", "subdomain=acme", "api_token=-", "--server", "cs")
    assert code == 0
    assert "s3cret-token" not in out
    values = Vault(db, cli_env).get("zendesk", "default", server="cs")
    assert {k: v.reveal() for k, v in values.items()} == {"subdomain": "acme", "api_token": "s3cret-token"}

    code, listed, _ = run(capsys, "vault", "list", "--json")
    assert code == 0
    assert json.loads(listed)[0]["fields"] == ["api_token", "subdomain"]
    assert "s3cret-token" not in listed


def test_vault_set_without_stdin_value_fails_and_stores_nothing(cli_env, db, capsys, monkeypatch):
    from revops_core.vault import Vault

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = run(capsys, "vault", "set", "zendesk", "api_token=-")
    assert code == 2
    assert "api_token" in err
    assert Vault(db, cli_env).list() == []


def test_vault_delete_needs_confirmation(cli_env, db, capsys, monkeypatch):
    from revops_core.vault import Vault

    Vault(db, cli_env).set("hubspot", "default", {"token": "t0k"})
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: no silent yes
    code, _, err = run(capsys, "vault", "delete", "hubspot")
    assert code == 2
    assert "--yes" in err
    assert [e.provider for e in Vault(db, cli_env).list()] == ["hubspot"]

    assert run(capsys, "vault", "delete", "hubspot", "--yes")[0] == 0
    assert Vault(db, cli_env).list() == []
    with db.session() as s:
        actions = [e.action for e in s.exec(select(AuditEntry))]
    assert "vault.delete" in actions


def test_vault_rotate_rewraps_existing_secrets(cli_env, db, capsys):
    from revops_core.vault import Vault

    vault = Vault(db, cli_env)
    before = vault.set("hubspot", "default", {"token": "t0k"}).key_id
    code, out, _ = run(capsys, "vault", "rotate")
    assert code == 0
    (entry,) = Vault(db, cli_env).list()
    assert entry.key_id != before
    assert entry.key_id in out
    assert Vault(db, cli_env).get("hubspot", "default")["token"].reveal() == "t0k"


def test_vault_retire_refuses_a_key_in_use_then_retires_it_after_rotation(cli_env, db, capsys):
    from revops_core.vault import Vault

    old = Vault(db, cli_env).set("hubspot", "default", {"token": "t0k"}).key_id
    code, _, err = run(capsys, "vault", "retire", old)
    assert code == 2
    assert "conflict" in err
    assert run(capsys, "vault", "rotate")[0] == 0
    code, out, _ = run(capsys, "vault", "retire", old)
    assert code == 0
    assert old in out
    assert Vault(db, cli_env).get("hubspot", "default")["token"].reveal() == "t0k"


# --------------------------------------------------------------------------- audit


def _write_entries(db: Any, count: int) -> None:
    with db.session(write=True) as s:
        for i in range(count):
            append(s, actor="key:rep" if i % 2 else "local:ana", action="t.add", target=f"core_company:{i}")


def test_audit_verify_ok_then_tampered_exits_1_with_seq_and_kind(cli_env, db, capsys):
    _write_entries(db, 4)
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
    assert "OK: 4 entries" in out
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE core_audit SET actor = 'mallory' WHERE seq = 3"))
    code, _, err = run(capsys, "audit", "verify")
    assert code == 1
    assert "first_bad_seq=3" in err
    assert "kind=edited" in err
    code, out, _ = run(capsys, "audit", "verify", "--json")
    assert code == 1
    assert json.loads(out)["first_bad_seq"] == 3


def test_audit_query_filters_and_export_writes_jsonl(cli_env, db, capsys, tmp_path):
    _write_entries(db, 5)
    code, out, _ = run(capsys, "audit", "query", "--actor", "key:rep", "--json")
    assert code == 0
    page = json.loads(out)
    assert [i["seq"] for i in page["items"]] == [2, 4]
    code, out, _ = run(capsys, "audit", "query", "--limit", "2")
    assert "2 of 5 matching entries." in out
    assert "--cursor" in out
    assert run(capsys, "audit", "query", "--limit", "500")[0] == 2

    target = tmp_path / "audit.jsonl"
    code, _, err = run(capsys, "audit", "export", "--output", str(target))
    assert code == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [entry["seq"] for entry in lines] == [1, 2, 3, 4, 5]
    assert "Exported 5 entries." in err


def test_audit_checkpoint_signs_the_head(cli_env, db, capsys):
    _write_entries(db, 3)
    code, out, _ = run(capsys, "audit", "checkpoint")
    assert code == 0
    with db.session() as s:
        (checkpoint,) = s.exec(select(AuditCheckpoint)).all()
        head = max(e.seq or 0 for e in s.exec(select(AuditEntry)))
    # The head includes the vault's own entry for generating the audit signing key.
    assert checkpoint.seq == head >= 3
    assert checkpoint.signature
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
    assert "signatures checked" in out


def test_audit_checkpoint_refuses_a_tampered_chain(cli_env, db, capsys):
    _write_entries(db, 3)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE core_audit SET target = 'x' WHERE seq = 2"))
    code, _, err = run(capsys, "audit", "checkpoint")
    assert code == 2
    assert "integrity_error" in err
    with db.session() as s:
        assert s.exec(select(AuditCheckpoint)).all() == []


# --------------------------------------------------------------------------- approve


class Purged(BaseModel):
    plan: Any = Field(default=None, description="The plan, when one was returned.")


@pytest.mark.anyio
async def test_approve_marks_a_critical_plan_approved_by_the_local_user(cli_env, capsys, monkeypatch):
    from revops_core.guards import CorePlan, PlanPreview, require_confirmation
    from revops_core.server import Call, Toolset, build_server
    from revops_core.testing import connect

    ts = Toolset("danger", "critical test tool")

    @ts.tool(tier="critical", idempotent=False)
    def purge_everything(
        call: Call, confirm: Annotated[str | None, Field(description="plan_id to confirm.")] = None
    ) -> Purged:
        """Purge (test)."""
        plan = require_confirmation(
            call,
            confirm=confirm,
            preview=PlanPreview(summary="Purge", affected_count=0, sample=[], reversible=False),
            fingerprint=[],
        )
        return Purged(plan=plan.model_dump(mode="json") if plan else None)

    server = build_server("t", [ts], settings=cli_env)
    async with connect(server) as client:
        plan = (await client.call_tool("purge_everything", {})).structured_content["plan"]
    monkeypatch.setattr("getpass.getuser", lambda: "ana")
    code, out, _ = run(capsys, "approve", plan["plan_id"])
    assert code == 0
    assert plan["plan_id"] in out
    with server.runtime.db.session() as s:
        row = s.get(CorePlan, plan["plan_id"])
        actions = [(e.actor, e.action) for e in s.exec(select(AuditEntry))]
    assert row is not None
    assert row.approved_by == "local:ana"
    assert ("local:ana", "plan.approve") in actions
    assert run(capsys, "approve", "no-such-plan")[0] == 2


# --------------------------------------------------------------------------- db + doctor


def test_db_status_and_upgrade(cli_env, capsys):
    code, out, _ = run(capsys, "db", "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["up_to_date"] is True
    assert {c["component"] for c in status["components"]} >= {"core"}
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert "Schema is up to date." in out


def test_db_status_on_an_empty_database_lists_pending_and_exits_1(monkeypatch, tmp_path, capsys):
    for name in list(os.environ):
        if name.startswith("REVOPS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REVOPS_DATA_DIR", str(tmp_path / "fresh"))
    code, out, _ = run(capsys, "db", "status")
    assert code == 1
    assert "pending v1: core tables" in out
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert "applied core v1: core tables" in out
    assert run(capsys, "db", "status")[0] == 0


def test_doctor_reports_each_check_and_fails_on_a_world_readable_key_file(cli_env, db, capsys):
    from revops_core.vault import KEY_FILE_NAME, Vault

    Vault(db, cli_env).set("zendesk", "default", {"subdomain": "acme"}, server="cs")  # creates the key file
    code, out, _ = run(capsys, "doctor", "--json")
    report = json.loads(out)
    by_name = {c["name"]: c for c in report["checks"]}
    assert code == 0, out
    assert by_name["database"]["status"] == "ok"
    assert by_name["key_material"]["status"] == "ok"
    assert by_name["migrations"]["status"] == "ok"
    # The stored Zendesk entry lacks email and api_token: a warning naming the exact command.
    zendesk = by_name["credentials:cs:zendesk"]
    assert zendesk["status"] == "warn"
    assert "revops vault set zendesk" in zendesk["hint"]

    key_file = Path(cli_env.data_dir) / KEY_FILE_NAME
    key_file.chmod(0o644)
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "[error] key_material" in out
    assert "chmod 600" in out


def test_doctor_names_an_invalid_setting(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("REVOPS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "[error] settings" in out
    assert "Invalid setting DATABASE_URL" in out


# --------------------------------------------------------------------------- install claude


def test_install_claude_merges_backs_up_and_is_idempotent(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("REVOPS_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    config.parent.mkdir()
    original = {"mcpServers": {"other": {"command": "/bin/other", "args": ["x"]}}, "theme": "dark"}
    config.write_text(json.dumps(original))

    code, out, _ = run(capsys, "install", "claude", "--server", "all", "--config", str(config))
    assert code == 0
    merged = json.loads(config.read_text())
    assert merged["theme"] == "dark"
    assert merged["mcpServers"]["other"] == original["mcpServers"]["other"]
    for name in ("sales", "marketing", "cs"):
        entry = merged["mcpServers"][f"revops-{name}"]
        assert Path(entry["command"]).is_absolute()
        assert entry["env"] == {"REVOPS_DATA_DIR": str((tmp_path / "data").resolve())}
    backups = list(config.parent.glob("claude_desktop_config.json.*.bak"))
    assert len(backups) == 1
    assert json.loads(backups[0].read_text()) == original

    code, out, _ = run(capsys, "install", "claude", "--server", "cs", "--config", str(config))
    assert code == 0
    assert "nothing changed" in out
    assert len(list(config.parent.glob("*.bak"))) == 1


def test_install_claude_refuses_invalid_json_and_writes_nothing(capsys, tmp_path):
    config = tmp_path / "claude_desktop_config.json"
    config.write_text('{"mcpServers": {broken')
    code, _, err = run(capsys, "install", "claude", "--server", "sales", "--config", str(config))
    assert code == 2
    assert "not valid JSON" in err
    assert config.read_text() == '{"mcpServers": {broken'
    assert list(tmp_path.iterdir()) == [config]


def test_install_claude_creates_a_missing_config(capsys, tmp_path):
    config = tmp_path / "new" / "claude_desktop_config.json"
    assert run(capsys, "install", "claude", "--server", "sales", "--config", str(config))[0] == 0
    assert list(json.loads(config.read_text())["mcpServers"]) == ["revops-sales"]


def test_claude_config_path_per_platform(tmp_path):
    from revops_core.cli.install import claude_config_path

    env = {"HOME": str(tmp_path), "APPDATA": str(tmp_path / "Roaming")}
    mac = claude_config_path("darwin", env)
    assert mac == tmp_path / "Library/Application Support/Claude/claude_desktop_config.json"
    assert claude_config_path("win32", env) == tmp_path / "Roaming/Claude/claude_desktop_config.json"
    assert claude_config_path("linux", env) == tmp_path / ".config/Claude/claude_desktop_config.json"


# --------------------------------------------------------------------------- the installed console script


def _uv_revops(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--frozen", "revops", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
        timeout=180,
        check=False,
    )


def test_console_script_keys_and_audit_verify(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_") and k != "DATABASE_URL"}
    env["REVOPS_DATA_DIR"] = str(tmp_path / "data")
    created = _uv_revops(["keys", "create", "--name", "ci", "--role", "viewer"], env)
    assert created.returncode == 0, created.stderr
    raw = created.stdout.strip().splitlines()[-1]
    assert raw.startswith("rvk_")

    from revops_core.db import Database

    db = Database(Settings(data_dir=tmp_path / "data", database_url=None))
    assert resolve_bearer(db, f"Bearer {raw}") == ("key:ci", "viewer")
    _write_entries(db, 2)
    db.dispose()

    verified = _uv_revops(["audit", "verify"], env)
    assert verified.returncode == 0, verified.stderr
    assert "OK: 3 entries" in verified.stdout  # apikey.create, then the two written above
    usage = _uv_revops(["vault", "delete", "zendesk"], env, stdin="")
    assert usage.returncode == 2


def test_audit_archive_moves_old_entries_and_the_chain_still_verifies(
    cli_env, db, capsys, tmp_path, monkeypatch
):
    from datetime import timedelta

    import revops_core.audit as audit_module
    from revops_core.db import utcnow

    monkeypatch.setattr(audit_module, "utcnow", lambda: utcnow() - timedelta(days=500))
    _write_entries(db, 2)  # written 500 days ago, past the 400-day retention
    monkeypatch.setattr(audit_module, "utcnow", utcnow)
    _write_entries(db, 2)
    code, out, err = run(capsys, "audit", "archive", "--directory", str(tmp_path / "arch"))
    assert code == 0, err
    assert "Archived entries 1–2 (2)" in out
    assert len(list((tmp_path / "arch").glob("audit-*.jsonl"))) == 1
    with db.session() as s:
        remaining = sorted(e.seq or 0 for e in s.exec(select(AuditEntry)))
    assert remaining[0] == 3
    assert run(capsys, "audit", "verify")[0] == 0
