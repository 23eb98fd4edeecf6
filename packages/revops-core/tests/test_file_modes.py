"""File modes of what holds secrets or customer data: the Claude config, the data dir, the database."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from revops_core.cli.install import install_claude
from revops_core.cli.main import main
from revops_core.db import Database, upgrade
from revops_core.settings import Settings

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common default umask (022), under which files are born 0644 and directories 0755."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


# --------------------------------------------------------------------------- revops install claude


def test_install_claude_keeps_a_0600_config_0600_and_its_backup_too(tmp_path, usual_umask):
    config = tmp_path / "claude_desktop_config.json"
    other = {"mcpServers": {"crm": {"command": "/bin/crm", "env": {"CRM_TOKEN": "s3cret"}}}}
    config.write_text(json.dumps(other))
    config.chmod(0o600)

    changed, backup = install_claude(config, ["cs"])
    assert changed
    assert mode(config) == 0o600
    assert backup is not None
    assert mode(backup) == 0o600
    assert json.loads(backup.read_text()) == other
    assert json.loads(config.read_text())["mcpServers"]["crm"] == other["mcpServers"]["crm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([config.name, backup.name])  # no temp file


def test_install_claude_preserves_another_existing_mode(tmp_path, usual_umask):
    config = tmp_path / "claude_desktop_config.json"
    config.write_text("{}")
    config.chmod(0o640)
    install_claude(config, ["sales"])
    assert mode(config) == 0o640


def test_install_claude_writes_a_new_config_0600(tmp_path, usual_umask, capsys):
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    assert main(["install", "claude", "--server", "cs", "--config", str(config)]) == 0
    assert mode(config) == 0o600
    assert list(json.loads(config.read_text())["mcpServers"]) == ["revops-cs"]
    assert [p.name for p in config.parent.iterdir()] == [config.name]


# --------------------------------------------------------------------------- the embedded database


def _write_once(db: Database) -> None:
    from revops_core import audit

    with db.session(write=True) as s:
        audit.append(s, actor="test:user", action="test.write", target="file-modes")


def _sqlite(data_dir: Path, **overrides: Any) -> Database:
    return Database(
        Settings(data_dir=data_dir, database_url=None, redis_url=None, master_key=None, **overrides)
    )


def test_a_new_data_dir_is_0700_and_the_database_wal_and_shm_0600(tmp_path, usual_umask):
    data_dir = tmp_path / "fresh" / "data"
    db = _sqlite(data_dir)
    try:
        upgrade(db)
        _write_once(db)
        files = {p.name: mode(p) for p in data_dir.iterdir()}
        assert mode(data_dir) == 0o700
        # WAL mode: while a connection is open the -wal and -shm files exist beside the database.
        assert files == {"revops.db": 0o600, "revops.db-wal": 0o600, "revops.db-shm": 0o600}
    finally:
        db.dispose()


def test_existing_world_readable_database_files_are_tightened_on_open(tmp_path, usual_umask):
    data_dir = tmp_path / "data"
    first = _sqlite(data_dir)
    try:
        upgrade(first)
        _write_once(first)
        names = ("revops.db", "revops.db-wal", "revops.db-shm")
        for name in names:
            (data_dir / name).chmod(0o644)  # as an earlier version left them
        second = _sqlite(data_dir)  # another process opening the same database
        try:
            assert {name: mode(data_dir / name) for name in names} == dict.fromkeys(names, 0o600)
            _write_once(second)
        finally:
            second.dispose()
    finally:
        first.dispose()


def test_doctor_warns_about_a_data_dir_others_can_read(tmp_path, monkeypatch, capsys, usual_umask):
    for name in list(os.environ):
        if name.startswith("REVOPS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("REVOPS_DATA_DIR", str(data_dir))
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()

    main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["data_dir"]["status"] == "ok"
    assert checks["data_dir"]["message"] == f"{data_dir} (0700)"

    data_dir.chmod(0o755)  # as earlier versions created it
    main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["data_dir"]["status"] == "warn"
    assert checks["data_dir"]["message"] == f"{data_dir} has mode 0o755: other users can list it"
    assert checks["data_dir"]["hint"] == f"Run `chmod 700 {data_dir}`."
