"""Configuration: stage probabilities and default forecast categories, and the critical credential
delete (a person approves out of band; every refusal leaves the vault as it was)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from revops_core.audit import AuditEntry
from revops_core.db import utcnow
from revops_core.guards import CorePlan, approve
from revops_core.testing import call_error, call_ok, connect, count_rows
from revops_core.vault import Vault, VaultSecret
from revops_sales.models.deals import SalesDealChange
from revops_sales.models.pipelines import SalesStage

pytestmark = pytest.mark.anyio


def _stage(pipeline: dict, name: str) -> dict:
    return next(s for s in pipeline["stages"] if s["name"] == name)


async def test_probabilities_and_default_categories_per_stage(sales_server) -> None:
    db = sales_server.runtime.db
    async with connect(sales_server) as client:
        pipeline = await call_ok(client, "create_pipeline", name="New business")
        pid = pipeline["id"]
        proposal, negotiation, won, lost = (
            _stage(pipeline, n)["id"] for n in ("proposal", "negotiation", "closed won", "closed lost")
        )
        set_ = await call_ok(
            client,
            "configure_stages",
            pipeline_id=pid,
            stages=[
                {"stage_id": proposal, "probability_pct": 70},
                {"stage_id": negotiation, "forecast_category": "commit"},
            ],
        )
        refusals = [
            await call_error(
                client,
                "configure_stages",
                pipeline_id=pid,
                stages=[
                    {"stage_id": proposal, "probability_pct": 75},
                    {"stage_id": won, "probability_pct": 90},
                ],
            ),
            await call_error(
                client, "configure_stages", pipeline_id=pid, stages=[{"stage_id": lost, "probability_pct": 5}]
            ),
            await call_error(
                client,
                "configure_stages",
                pipeline_id=pid,
                stages=[{"stage_id": proposal, "probability_pct": 101}],
            ),
            await call_error(
                client,
                "configure_stages",
                pipeline_id=pid,
                stages=[{"stage_id": won, "forecast_category": "commit"}],
            ),
            await call_error(client, "configure_stages", pipeline_id=pid, stages=[{"stage_id": proposal}]),
            await call_error(
                client,
                "create_pipeline",
                name="Odd",
                stages=[
                    {"name": "a", "probability_pct": 10},
                    {"name": "won", "probability_pct": 90, "kind": "won"},
                    {"name": "lost", "probability_pct": 0, "kind": "lost"},
                ],
            ),
        ]
        listed = await call_ok(client, "list_pipelines")
        in_proposal = await call_ok(
            client, "create_deal", pipeline_id=pid, name="p", amount_minor=1, stage_id=proposal
        )
        in_negotiation = await call_ok(
            client, "create_deal", pipeline_id=pid, name="n", amount_minor=1, stage_id=negotiation
        )
        moved = await call_ok(client, "move_deal_stage", deal_id=in_proposal["id"], stage_id=negotiation)
        cleared = await call_ok(
            client,
            "configure_stages",
            pipeline_id=pid,
            stages=[{"stage_id": negotiation, "forecast_category": "none"}],
        )
    assert (
        _stage(set_, "proposal")["probability_pct"],
        _stage(set_, "negotiation")["default_forecast_category"],
    ) == (
        70,
        "commit",
    )
    assert [(e["code"], e["field"]) for e in refusals] == [
        ("validation_error", "stages.1.probability_pct"),  # won must be 100
        ("validation_error", "stages.0.probability_pct"),  # lost must be 0
        ("validation_error", "stages.0.probability_pct"),  # above 100
        ("validation_error", "stages.0.forecast_category"),  # closed stages are not forecast
        ("validation_error", "stages.0"),  # nothing to change
        ("validation_error", "stages.1.probability_pct"),  # create_pipeline applies the won rule too
    ]
    stages = {s["name"]: s for s in listed["result"][0]["stages"]}
    assert stages["proposal"]["probability_pct"] == 70  # the refused batch changed nothing
    assert (stages["closed won"]["probability_pct"], stages["closed lost"]["probability_pct"]) == (100, 0)
    assert in_proposal["forecast_category"] == "pipeline"
    assert in_negotiation["forecast_category"] == "commit"
    assert (moved["forecast_category"], moved["probability_pct"]) == ("commit", 80)
    assert _stage(cleared, "negotiation")["default_forecast_category"] is None
    with db.session() as s:
        change = s.exec(select(SalesDealChange).where(SalesDealChange.field == "forecast_category")).one()
        assert s.get(SalesStage, proposal).probability_pct == 70  # type: ignore[union-attr]
    assert (change.deal_id, change.old_value, change.new_value) == (in_proposal["id"], "pipeline", "commit")


def _vault(server, settings) -> Vault:
    return Vault(server.runtime.db, settings)


def _stored(server) -> list[tuple[str, str, str]]:
    with server.runtime.db.session() as s:
        return sorted((r.provider, r.name, r.server) for r in s.exec(select(VaultSecret)))


def _actions(server) -> list[str]:
    with server.runtime.db.session() as s:
        return [e.action for e in s.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))]


HUBSPOT = ("hubspot", "default", "*")
APOLLO = ("apollo", "default", "sales")


async def test_deleting_a_credential_needs_a_persons_approval(sales_server, settings) -> None:
    vault = _vault(sales_server, settings)
    vault.set("hubspot", "default", {"access_token": "secret-1"})
    vault.set("apollo", "default", {"api_key": "secret-2"}, server="sales")
    vault.set("zendesk", "default", {"api_token": "secret-3"}, server="cs")  # not the Sales server's
    args = {"provider": "hubspot"}
    async with connect(sales_server) as client:
        listed = await call_ok(client, "list_credentials")
        no_plan = await call_error(client, "delete_credential", **args, confirm="pl_nope")
        missing = await call_error(client, "delete_credential", provider="nobody")
        planned = await call_ok(client, "delete_credential", **args)
        plan_id = planned["plan_id"]
        unapproved = await call_error(client, "delete_credential", **args, confirm=plan_id)
        other_args = await call_error(
            client, "delete_credential", provider="apollo", server="sales", confirm=plan_id
        )
        refused_state = _stored(sales_server)
        approve(sales_server.runtime.db, plan_id, "cli:admin")
        done = await call_ok(client, "delete_credential", **args, confirm=plan_id)
        after_delete = _stored(sales_server)
        vault.set("hubspot", "default", {"access_token": "secret-4"})  # set again: the old plan is spent
        replayed = await call_error(client, "delete_credential", **args, confirm=plan_id)
    assert [(c["provider"], c["server"], c["fields"]) for c in listed["result"]] == [
        ("apollo", "sales", ["api_key"]),
        ("hubspot", "*", ["access_token"]),
    ]
    assert "secret" not in str(listed)
    assert (no_plan["code"], no_plan["field"]) == ("not_found", "confirm")
    assert (missing["code"], missing["field"]) == ("not_found", "provider")
    assert (planned["status"], planned["plan"]["requires_approval"]) == ("planned", True)
    assert unapproved["code"] == "approval_required"
    assert f"revops approve {plan_id}" in unapproved["hint"]
    assert other_args["code"] == "confirmation_required"
    assert done["status"] == "done"
    assert (done["result"]["provider"], done["result"]["server"]) == ("hubspot", "*")
    assert replayed["code"] == "confirmation_required"
    assert "already used" in replayed["message"]
    # Planning, an unknown plan, no approval and other arguments deleted nothing; approval did.
    assert refused_state == sorted([HUBSPOT, APOLLO, ("zendesk", "default", "cs")])
    assert after_delete == sorted([APOLLO, ("zendesk", "default", "cs")])
    assert _stored(sales_server) == sorted([HUBSPOT, APOLLO, ("zendesk", "default", "cs")])
    actions = _actions(sales_server)
    done_at = actions.index("sales.delete_credential")
    assert actions[done_at - 3 : done_at + 1] == [
        "plan.approve",
        "plan.confirm",
        "vault.delete",
        "sales.delete_credential",
    ]
    assert actions.count("vault.delete") == 1


async def test_a_stale_expired_or_foreign_plan_deletes_nothing(sales_server, settings) -> None:
    vault = _vault(sales_server, settings)
    vault.set("hubspot", "default", {"access_token": "secret-1"})
    args = {"provider": "hubspot"}
    async with connect(sales_server) as client:
        stale_plan = (await call_ok(client, "delete_credential", **args))["plan_id"]
        approve(sales_server.runtime.db, stale_plan, "cli:admin")
        vault.set("hubspot", "default", {"portal_id": "42"})  # the credential changed since the plan
        stale = await call_error(client, "delete_credential", **args, confirm=stale_plan)
        expired_plan = (await call_ok(client, "delete_credential", **args))["plan_id"]
        approve(sales_server.runtime.db, expired_plan, "cli:admin")
        with sales_server.runtime.db.session(write=True) as s:
            row = s.get(CorePlan, expired_plan)
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
            s.add(row)
        expired = await call_error(client, "delete_credential", **args, confirm=expired_plan)
        foreign_plan = (await call_ok(client, "delete_credential", **args))["plan_id"]
        approve(sales_server.runtime.db, foreign_plan, "cli:admin")
    sales_server.runtime.settings.actor = "mallory"
    async with connect(sales_server) as client:
        foreign = await call_error(client, "delete_credential", **args, confirm=foreign_plan)
    assert stale["code"] == "stale_plan"
    assert (expired["code"], expired["field"]) == ("confirmation_required", "confirm")
    assert "expired" in expired["message"]
    assert foreign["code"] == "confirmation_required"
    assert "another actor" in foreign["message"]
    assert _stored(sales_server) == [HUBSPOT]
    assert "vault.delete" not in _actions(sales_server)
    assert count_rows(sales_server.runtime.db, CorePlan, col(CorePlan.used_at).is_not(None)) == 0
