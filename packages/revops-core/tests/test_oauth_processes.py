"""Single-flight across real processes: 4 processes × 50 coroutines at expiry → exactly one refresh.

The token endpoint is a real HTTP server (uvicorn on 127.0.0.1, in a thread of the test process)
that counts requests and rotates refresh tokens, so a second refresh would also be refused.
Each worker is a separate Python process with its own event loop, vault and lock objects.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from revops_core.oauth import TokenManager, TokenResponse
from revops_core.secret_values import Secret
from revops_core.testing import redis_url
from revops_core.vault import Vault

PROCESSES = 4
COROUTINES = 50
T0 = 1_700_000_000.0
LIFETIME = 3600.0

pytestmark = pytest.mark.slow

WORKER = r"""
import asyncio, json, os, sys, time
from pathlib import Path
import httpx
from revops_core.db import Database
from revops_core.oauth import OAuthRefresher, TokenManager
from revops_core.settings import Settings
from revops_core.vault import Vault

args = json.loads(sys.argv[1])
settings = Settings(data_dir=args["data_dir"], database_url=args["database_url"], redis_url=args["redis_url"],
                    master_key=None, auto_migrate=False, actor="test:worker")
vault = Vault(Database(settings), settings)

async def main():
    async with httpx.AsyncClient(timeout=30) as client:
        refresher = OAuthRefresher(client, args["token_url"], client_id="cid", provider=args["provider"])
        manager = TokenManager(
            vault, args["provider"], refresher, clock=lambda: args["now"], jitter_fraction=0.0
        )
        Path(args["ready"]).touch()
        deadline = time.monotonic() + 60
        while not Path(args["go"]).exists():  # start barrier: all processes hit expiry together
            if time.monotonic() > deadline:
                raise SystemExit("no go signal")
            await asyncio.sleep(0.005)
        tokens = await asyncio.gather(*(manager.access_token() for _ in range(args["coroutines"])))
        print(json.dumps(sorted({t.reveal() for t in tokens})))

asyncio.run(main())
"""


class CountingTokenEndpoint:
    """ASGI token endpoint with single-use (rotating) refresh tokens and a request counter."""

    def __init__(self) -> None:
        self.requests = 0
        self.current_refresh = "r-0"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        self.requests += 1
        n = self.requests
        await asyncio.sleep(0.2)  # hold the request open so that the other processes pile up behind the lock
        if form.get("grant_type") == "refresh_token" and form.get("refresh_token") == self.current_refresh:
            self.current_refresh = f"r-{n}"
            status = 200
            payload: dict[str, Any] = {
                "access_token": f"a-{n}",
                "refresh_token": self.current_refresh,
                "expires_in": LIFETIME,
                "token_type": "Bearer",
            }
        else:
            status, payload = 400, {"error": "invalid_grant"}
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


@pytest.fixture
def token_server() -> Iterator[tuple[CountingTokenEndpoint, str]]:
    app = CountingTokenEndpoint()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn failed to start"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield app, f"http://127.0.0.1:{port}/token"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize("lock", ["database", "redis"])
def test_four_processes_fifty_coroutines_one_refresh(db, make_settings, tmp_path: Path, token_server, lock):
    endpoint, token_url = token_server
    redis = redis_url() if lock == "redis" else None
    settings = make_settings(redis_url=redis)
    provider = f"acme{uuid.uuid4().hex[:8]}"  # distinct lock names across parallel runs sharing Redis/PG
    vault = Vault(db, settings)
    seeder = TokenManager(vault, provider, _unused, clock=lambda: T0, jitter_fraction=0.0)
    seeder.store(TokenResponse(access_token=Secret("a-0"), expires_in=LIFETIME, refresh_token=Secret("r-0")))

    go = tmp_path / "go"
    workers = []
    for i in range(PROCESSES):
        args = {
            "data_dir": str(settings.data_dir),
            "database_url": settings.database_url,
            "redis_url": redis,
            "token_url": token_url,
            "provider": provider,
            "now": T0 + LIFETIME - 10,  # inside the refresh margin: every coroutine sees a due token
            "coroutines": COROUTINES,
            "ready": str(tmp_path / f"ready-{i}"),
            "go": str(go),
        }
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, json.dumps(args)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready-{i}").exists() for i in range(PROCESSES)):
            crashed = [w for w in workers if w.poll() not in (None, 0)]
            assert not crashed, crashed[0].communicate()[1][-2000:]
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.02)
        go.touch()
        outputs = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, (out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1]) == ["a-1"]
    assert endpoint.requests == 1
    assert vault.get(provider, "oauth")["refresh_token"].reveal() == "r-1"


async def _unused(_: Secret) -> TokenResponse:
    raise AssertionError("the seeding manager never refreshes")
