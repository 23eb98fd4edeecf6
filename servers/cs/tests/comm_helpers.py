"""Helpers the communication and vendor tests share: row counts, fake vendor failures, settings."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select


def count(server: Any, model: Any) -> int:
    """Rows of `model` in the server's database (a fresh read transaction)."""
    with server.runtime.db.session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def failure(kind: str) -> httpx.Response | httpx.TimeoutException:
    """A vendor failure for respx: a status code ("401", "500"…), "timeout" or "malformed" (2xx, not JSON)."""
    if kind == "timeout":
        return httpx.ReadTimeout("no answer")
    if kind == "malformed":
        return httpx.Response(200, content=b"<html>", headers={"Content-Type": "application/json"})
    return httpx.Response(int(kind), json={"errors": [{"message": "x"}]})


def steady_settings(make_settings: Any) -> Any:
    """Settings whose circuit breaker never opens: every test talks to the same vendor host, and one
    process-wide breaker store would otherwise let one test's failures refuse the next test's calls."""
    return make_settings(breaker_min_calls=100_000)
