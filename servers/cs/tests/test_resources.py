"""Client resources, prompts and id completion through the protocol."""

from __future__ import annotations

import json
from datetime import date

import pytest
from factories import add_client
from mcp.types import PromptReference, ResourceTemplateReference

from revops_core.testing import connect
from revops_cs.models.health import CsHealthSnapshot

pytestmark = pytest.mark.anyio


async def test_client_and_health_resources_read_stored_rows(cs_server, protocol_mode):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Acme", arr_minor=777_000)
        bare = add_client(s, "Bare")
        s.add(
            CsHealthSnapshot(
                client_id=c.id,
                as_of=date(2026, 3, 1),
                score=64.5,
                band="at_risk",
                components='{"support": 70}',
                weights='{"support": 15}',
                missing='["usage"]',
                inputs_hash="h",
            )
        )
        cid, bid = c.id, bare.id
    async with connect(cs_server, protocol_mode) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        overview = json.loads((await client.read_resource(f"cs://clients/{cid}")).contents[0].text)
        health = json.loads((await client.read_resource(f"cs://clients/{cid}/health")).contents[0].text)
        none = json.loads((await client.read_resource(f"cs://clients/{bid}/health")).contents[0].text)
        with pytest.raises(Exception, match="No client"):
            await client.read_resource("cs://clients/999")
    assert {"cs://clients/{client_id}", "cs://clients/{client_id}/health"} <= templates
    assert overview["client"]["arr_minor"] == 777_000
    assert overview["health"]["score"] == 64.5
    assert health["components"] == {"support": 70}
    assert health["missing"] == ["usage"]
    assert none["health"] is None


async def test_prompts_embed_stored_facts(cs_server):
    with cs_server.runtime.db.session() as s:
        c = add_client(s, "Acme", arr_minor=123_400)
        ok = add_client(s, "Fine")
        s.add(
            CsHealthSnapshot(
                client_id=c.id,
                as_of=date(2026, 3, 1),
                score=41,
                band="critical",
                components="{}",
                weights="{}",
                inputs_hash="h",
            )
        )
        s.add(
            CsHealthSnapshot(
                client_id=ok.id,
                as_of=date(2026, 3, 1),
                score=91,
                band="excellent",
                components="{}",
                weights="{}",
                inputs_hash="h",
            )
        )
        cid = c.id
    async with connect(cs_server) as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
        qbr = await client.get_prompt("qbr_preparation", {"client_id": str(cid)})
        weekly = await client.get_prompt("weekly_at_risk_review", {})
    assert {"qbr_preparation", "weekly_at_risk_review"} <= names
    text = qbr.messages[0].content.text
    assert "Acme" in text
    assert "123400" in text
    review = weekly.messages[0].content.text
    assert '"name": "Acme"' in review
    assert "Fine" not in review


async def test_completion_suggests_client_ids_by_id_or_name(cs_server):
    with cs_server.runtime.db.session() as s:
        acme = add_client(s, "Acme").id
        add_client(s, "Globex")
    async with connect(cs_server) as client:
        by_name = await client.complete(
            PromptReference(type="ref/prompt", name="qbr_preparation"), {"name": "client_id", "value": "acm"}
        )
        by_id = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="cs://clients/{client_id}"),
            {"name": "client_id", "value": str(acme)},
        )
        other = await client.complete(
            PromptReference(type="ref/prompt", name="qbr_preparation"), {"name": "something", "value": ""}
        )
    assert by_name.completion.values == [str(acme)]
    assert str(acme) in by_id.completion.values
    assert other.completion.values == []
