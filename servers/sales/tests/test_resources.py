"""Sales resources, prompts and id completion through the protocol, from the rows the test stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.types import PromptReference, ResourceTemplateReference

from revops_core.testing import call_ok, connect

pytestmark = pytest.mark.anyio


async def _seed(client: Any) -> dict[str, Any]:
    pipeline = await call_ok(client, "create_pipeline", name="New business")
    acme = await call_ok(client, "create_company", name="Acme", domain="acme.com")
    globex = await call_ok(client, "create_company", name="Globex")
    ana = await call_ok(client, "create_contact", email="ana@acme.com", company_id=acme["id"])
    amounts = (120_000, 30_000, 5_000)
    deals = [
        await call_ok(
            client,
            "create_deal",
            pipeline_id=pipeline["id"],
            name=f"Acme {i}",
            amount_minor=amount,
            currency="USD",
            company_id=acme["id"],
        )
        for i, amount in enumerate(amounts)
    ]
    return {
        "pipeline": pipeline,
        "acme": acme,
        "globex": globex,
        "ana": ana,
        "deals": deals,
        "amounts": amounts,
    }


async def test_resources_read_the_stored_deal_account_and_contact(sales_server) -> None:
    async with connect(sales_server) as client:
        seeded = await _seed(client)
        deal_id = seeded["deals"][0]["id"]
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        deal = json.loads((await client.read_resource(f"sales://deals/{deal_id}")).contents[0].text)
        account = json.loads(
            (await client.read_resource(f"sales://accounts/{seeded['acme']['id']}")).contents[0].text
        )
        contact = json.loads(
            (await client.read_resource(f"sales://contacts/{seeded['ana']['id']}")).contents[0].text
        )
        for bad in (
            "sales://deals/999999",
            "sales://deals/abc",
            "sales://accounts/0",
            "sales://contacts/99999999999",
        ):
            with pytest.raises(Exception, match=r"No (deal|company|contact) with id"):
                await client.read_resource(bad)
    assert {
        "sales://deals/{deal_id}",
        "sales://accounts/{company_id}",
        "sales://contacts/{contact_id}",
    } <= templates
    assert (deal["id"], deal["name"], deal["amount_minor"]) == (deal_id, "Acme 0", 120_000)
    assert [move["from_stage_id"] for move in deal["history"]] == [None]
    assert account["name"] == "Acme"
    assert [c["email"] for c in account["contacts"]] == ["ana@acme.com"]
    assert account["open_deals"] == 3
    assert (contact["email"], contact["company_id"]) == ("ana@acme.com", seeded["acme"]["id"])


async def test_prompts_cite_the_stored_pipeline_and_deal(sales_server) -> None:
    async with connect(sales_server) as client:
        seeded = await _seed(client)
        deal_id = seeded["deals"][1]["id"]
        names = {p.name for p in (await client.list_prompts()).prompts}
        weekly = (await client.get_prompt("weekly_pipeline_review", {})).messages[0].content.text
        review = (await client.get_prompt("deal_review", {"deal_id": str(deal_id)})).messages[0].content.text
        prep = (await client.get_prompt("meeting_prep", {"deal_id": str(deal_id)})).messages[0].content.text
    assert {"weekly_pipeline_review", "deal_review", "meeting_prep"} <= names
    listing = json.loads(weekly.split("Open pipeline by stage (amounts in minor units): ")[1].split("\n")[0])
    # every deal starts in the pipeline's first open stage: one row, the test's own sum
    assert [(r["stage"], r["deals"], r["amount_minor"], r["currency"]) for r in listing] == [
        (seeded["deals"][0]["stage"], 3, sum(seeded["amounts"]), "USD")
    ]
    assert '"name":"Acme 1"' in review
    assert '"amount_minor":30000' in review
    assert '"name":"Acme 1"' in prep


async def test_an_empty_pipeline_says_so_instead_of_listing_zeros(sales_server) -> None:
    async with connect(sales_server) as client:
        weekly = (await client.get_prompt("weekly_pipeline_review", {})).messages[0].content.text
    assert "none (no open deals are stored)" in weekly


async def test_completion_offers_ids_by_prefix_or_name_for_each_entity(sales_server) -> None:
    async with connect(sales_server) as client:
        seeded = await _seed(client)
        deal_ids = [str(d["id"]) for d in seeded["deals"]]
        by_name = await client.complete(
            PromptReference(type="ref/prompt", name="deal_review"), {"name": "deal_id", "value": "acme"}
        )
        accounts = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="sales://accounts/{company_id}"),
            {"name": "company_id", "value": "glob"},
        )
        contacts = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="sales://contacts/{contact_id}"),
            {"name": "contact_id", "value": "ANA@"},
        )
        literal = await client.complete(
            PromptReference(type="ref/prompt", name="deal_review"), {"name": "deal_id", "value": "%"}
        )
        other = await client.complete(
            PromptReference(type="ref/prompt", name="deal_review"), {"name": "something", "value": ""}
        )
    assert by_name.completion.values == deal_ids
    assert accounts.completion.values == [str(seeded["globex"]["id"])]
    assert contacts.completion.values == [str(seeded["ana"]["id"])]
    assert literal.completion.values == []  # % is a character to find, not a wildcard
    assert other.completion.values == []


async def test_every_tool_a_prompt_names_exists(sales_server) -> None:
    """A prompt that sends the model to a tool the server does not have is a broken instruction."""
    import re

    async with connect(sales_server) as client:
        seeded = await _seed(client)
        deal = str(seeded["deals"][0]["id"])
        tools = {t.name for t in (await client.list_tools()).tools}
        texts = [
            (await client.get_prompt(name, args)).messages[0].content.text
            for name, args in (
                ("weekly_pipeline_review", {}),
                ("deal_review", {"deal_id": deal}),
                ("meeting_prep", {"deal_id": deal}),
            )
        ]
    # the instructions, without the stored facts (the lines carrying JSON)
    instructions = "\n".join(
        line for t in texts for line in t.splitlines() if "{" not in line and "[" not in line
    )
    named = set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", instructions))
    assert len(named) >= 5  # forecast, snapshots, stalls, quota, leads, qualification, brief
    assert named <= tools, named - tools
