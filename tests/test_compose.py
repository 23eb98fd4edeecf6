"""compose.yaml's structure, and its topology run for real: migrate, then three HTTP servers on one
PostgreSQL schema + Redis, healthy, answering authenticated MCP calls. (No Docker engine runs here.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVER_PORTS = {"sales": 8101, "marketing": 8102, "cs": 8103}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / "shared" / "env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def test_compose_services_dependencies_and_healthchecks():
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", *SERVER_PORTS}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["migrate"]["command"] == ["revops", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    for name, port in SERVER_PORTS.items():
        service = services[name]
        assert service["command"][:3] == [f"revops-{name}", "--transport", "http"]
        assert service["command"][service["command"].index("--port") + 1] == str(port)
        assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in probe
        assert service["env_file"] == ".env"
        # A wildcard bind must name the Host values it answers to (DNS-rebinding protection).
        assert service["environment"]["REVOPS_HTTP_ALLOWED_HOSTS"] == f"{name}:{port}"


def test_every_variable_the_stack_needs_is_in_env_example():
    example = _env_example()
    for name in ("DATABASE_URL", "REDIS_URL", "REVOPS_MASTER_KEY", "POSTGRES_PASSWORD", "POSTGRES_USER"):
        assert name in example, name
    compose_text = (ROOT / "compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", compose_text.replace("$$", "")))
    assert interpolated <= set(example)
    # Hostnames in the example URLs are the compose service names.
    assert "@postgres:5432/" in example["DATABASE_URL"]
    assert example["REDIS_URL"].startswith("redis://redis:6379")
    assert example["REVOPS_AUTO_MIGRATE"] == "false"


def test_env_example_values_are_valid_settings(monkeypatch):
    from revops_core.settings import Settings

    for name in list(os.environ):
        if name.startswith("REVOPS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    for key, value in _env_example().items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.database_url is not None
    assert settings.should_auto_migrate is False


def test_dockerfile_installs_from_the_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile
    assert "COPY pyproject.toml uv.lock" in dockerfile
    assert "USER revops" in dockerfile
    # Every directory the locked install builds from must be in the image (no Docker engine here
    # to find out at build time): the workspace members and the bundle's own package.
    import tomllib

    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {member.split("/")[0] for member in root["tool"]["uv"]["workspace"]["members"]}
    needed |= {pkg.split("/")[0] for pkg in root["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]}
    copied = {
        line.split()[1]
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from" not in line
    }
    assert needed <= copied, f"Dockerfile does not copy {sorted(needed - copied)}"


def test_claude_config_example_is_valid_json_for_every_server():
    import json

    config = json.loads((ROOT / "shared" / "claude_desktop_config.example.json").read_text())
    assert set(config["mcpServers"]) == {f"revops-{name}" for name in SERVER_PORTS}


# --------------------------------------------------------------------------- the topology, for real


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Compose's environment on this machine: a fresh PostgreSQL schema, Redis, a master key."""
    from revops_core.testing import PgSchema, postgres_url, redis_url
    from revops_core.vault import new_master_key

    schema = PgSchema(postgres_url())
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_")}
    env.update(
        DATABASE_URL=schema.url,
        REDIS_URL=redis_url(),
        REVOPS_MASTER_KEY=new_master_key(),
        REVOPS_DATA_DIR=str(tmp_path / "data"),
        REVOPS_AUTO_MIGRATE="false",
        REVOPS_LOG_LEVEL="WARNING",
    )
    try:
        yield env
    finally:
        schema.drop()


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180, check=False)


def _revops(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "revops_core.cli.main", *args], env)


async def _check_servers(urls: dict[str, str], key: str) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with httpx.AsyncClient() as http:
        for name, url in urls.items():
            health = await http.get(f"{url}/healthz")
            assert health.json() == {"status": "ok", "server": name, "database": "postgresql"}
            assert (await http.post(f"{url}/mcp", json={})).status_code == 401
    # One key in the shared database opens all three servers.
    for name, url in urls.items():
        transport = streamable_http_client(
            f"{url}/mcp", http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
        )
        async with Client(transport) as client:
            info = await client.call_tool("server_info", {})
        assert not info.is_error, info.content
        assert info.structured_content["server"] == name
        assert info.structured_content["database"] == "postgresql"
        assert info.structured_content["role"] == "viewer"


@pytest.mark.slow
def test_three_http_servers_on_postgres_and_redis_after_migrate(stack_env):
    import anyio

    from revops_core.conformance import running_server

    # Before `migrate`, a server refuses to serve the stale schema (it never migrates PostgreSQL).
    refused = _run([sys.executable, "-m", "revops_sales", "--transport", "http", "--port", "1"], stack_env)
    assert refused.returncode == 2
    assert "revops db upgrade" in refused.stderr

    migrated = _revops(["db", "upgrade"], stack_env)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied core v1" in migrated.stdout
    created = _revops(["keys", "create", "--name", "ops", "--role", "viewer"], stack_env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]

    with ExitStack() as stack:
        urls = {name: stack.enter_context(running_server(name, stack_env)) for name in SERVER_PORTS}
        anyio.run(_check_servers, urls, key)
