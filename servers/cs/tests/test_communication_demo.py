"""The communication demo generator: deterministic, and its metrics are what get_email_stats reads."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from revops_core.testing import connect
from revops_cs.models.communication import CsEmailEvent, CsEmailMessage

pytestmark = pytest.mark.anyio
AS_OF = date(2026, 6, 30)


def _generate(server: Any, seed: int) -> tuple[int, int, list[tuple[str, int, int]]]:
    from revops_cs.demo.clients import generate_clients_and_usage
    from revops_cs.demo.communication import generate_communication

    rng = random.Random(seed)
    with server.runtime.db.session(write=True) as s:
        clients = generate_clients_and_usage(s, rng, clients=6, as_of=AS_OF)
        generate_communication(s, rng, clients, AS_OF)
    with server.runtime.db.session() as s:
        messages = int(s.exec(select(func.count()).select_from(CsEmailMessage)).one())
        events = int(s.exec(select(func.count()).select_from(CsEmailEvent)).one())
        rows = s.exec(
            select(CsEmailMessage.status, CsEmailMessage.opens, CsEmailMessage.clicks).order_by(
                CsEmailMessage.id
            )
        ).all()
    return messages, events, [tuple(r) for r in rows]


async def test_demo_is_deterministic_and_feeds_the_metrics(cs_server, make_settings, tmp_path):
    from revops_cs.server import create_server

    other = create_server(make_settings(data_dir=tmp_path / "b", database_url=None))
    try:
        first = _generate(cs_server, 11)
        assert first == _generate(other, 11)
    finally:
        other.runtime.db.dispose()
    messages, events, rows = first
    assert messages > 50
    assert events >= messages  # every email has a delivered or bounce event
    async with connect(cs_server) as client:
        stats = await client.call_tool("get_email_stats", {})
    metrics = stats.structured_content
    bounced = sum(status in ("bounced", "dropped") for status, _, _ in rows)
    opened = sum(opens > 0 for _, opens, _ in rows)
    assert metrics["sent"] == messages
    assert metrics["delivered"] == messages - bounced
    assert metrics["unique_opens"] == opened
    assert metrics["open_rate"] == round(opened / (messages - bounced), 4)
