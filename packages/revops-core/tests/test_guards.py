"""Plan → confirm and critical approvals, through the protocol, on both protocol eras."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import pytest
from mcp.types import ElicitRequestParams, ElicitResult
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, select

from revops_core.audit import AuditEntry
from revops_core.db import utcnow
from revops_core.errors import NotFound
from revops_core.guards import CorePlan, Plan, PlanPreview, approve, require_confirmation
from revops_core.models import CoreCompany
from revops_core.server import Call, RevOpsServer, Toolset, build_server
from revops_core.testing import connect, error_of

pytestmark = pytest.mark.anyio

Prefix = Annotated[str, Field(min_length=1, max_length=20, description="Name prefix.")]
Confirm = Annotated[str | None, Field(default=None, description="plan_id of a plan to execute.")]


class Removed(BaseModel):
    removed: int = Field(description="Companies deleted (0 when a plan is returned).")
    plan: Plan | None = Field(default=None, description="The plan, when not confirmed.")


def _remove(call: Call, prefix: str, confirm: str | None, fail_after: bool = False) -> Removed:
    rows = list(call.db.exec(select(CoreCompany).where(CoreCompany.name.startswith(prefix))))  # type: ignore[attr-defined]
    preview = PlanPreview(
        summary=f"Delete {len(rows)} companies named {prefix}*.",
        affected_count=len(rows),
        sample=[{"id": r.id, "name": r.name} for r in rows[:3]],
        reversible=False,
    )
    fingerprint = sorted([r.id, r.name] for r in rows)
    plan = require_confirmation(call, confirm=confirm, preview=preview, fingerprint=fingerprint)
    if plan is not None:
        return Removed(removed=0, plan=plan)
    for row in rows:
        call.db.delete(row)
    call.db.flush()
    if fail_after:
        raise NotFound("simulated failure after the deletes")
    return Removed(removed=len(rows))


def _toolset(fail_after: bool = False) -> Toolset:
    ts = Toolset("demo", "guard test tools")

    @ts.tool(tier="destructive", idempotent=False)
    def delete_companies(call: Call, prefix: Prefix, confirm: Confirm = None) -> Removed:
        """Delete companies whose name starts with prefix (plan → confirm)."""
        return _remove(call, prefix, confirm, fail_after)

    @ts.tool(tier="destructive", idempotent=False)
    def other_delete(call: Call, prefix: Prefix, confirm: Confirm = None) -> Removed:
        """Same as delete_companies, to test a plan used with another tool."""
        return _remove(call, prefix, confirm)

    @ts.tool(tier="critical", idempotent=False)
    def purge_companies(call: Call, prefix: Prefix, confirm: Confirm = None) -> Removed:
        """Purge companies (critical: needs a person's approval)."""
        return _remove(call, prefix, confirm)

    return ts


def _server(settings: Any) -> RevOpsServer:
    server = build_server("t", [_toolset()], settings=settings)
    with server.runtime.db.session(write=True) as s:
        for name in ("acme-1", "acme-2", "beta"):
            s.add(CoreCompany(name=name))
    return server


def _names(server: RevOpsServer) -> list[str]:
    with server.runtime.db.session() as s:
        return sorted(c.name for c in s.exec(select(CoreCompany)))


def _actions(server: RevOpsServer) -> list[str]:
    with server.runtime.db.session() as s:
        return [e.action for e in s.exec(select(AuditEntry).order_by(AuditEntry.seq))]  # type: ignore[arg-type]


ALL = ["acme-1", "acme-2", "beta"]


async def test_plan_then_confirm_executes_once(settings, protocol_mode):
    server = _server(settings)
    async with connect(server, protocol_mode) as client:
        first = await client.call_tool("delete_companies", {"prefix": "acme"})
        plan = first.structured_content["plan"]
        assert first.structured_content["removed"] == 0
        assert plan["affected_count"] == 2
        assert plan["requires_approval"] is False
        assert plan["plan_id"] in plan["next_step"]
        assert _names(server) == ALL
        done = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
        assert done.structured_content == {"removed": 2, "plan": None}
        replay = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert error_of(replay)["code"] == "confirmation_required"
    assert "already used" in error_of(replay)["message"]
    assert _names(server) == ["beta"]
    assert _actions(server) == ["plan.create", "plan.confirm", "t.delete_companies"]


async def test_plan_with_other_arguments_tool_or_unknown_id_is_refused(settings):
    server = _server(settings)
    async with connect(server) as client:
        plan = (await client.call_tool("delete_companies", {"prefix": "acme"})).structured_content["plan"]
        other_args = await client.call_tool("delete_companies", {"prefix": "b", "confirm": plan["plan_id"]})
        other_tool = await client.call_tool("other_delete", {"prefix": "acme", "confirm": plan["plan_id"]})
        unknown = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": "pl_nope"})
        # The refusals consumed nothing: the plan still works with the right call.
        ok = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert error_of(other_args)["code"] == "confirmation_required"
    assert "arguments differ" in error_of(other_args)["message"]
    assert error_of(other_args)["field"] == "confirm"
    assert error_of(other_tool)["code"] == "confirmation_required"
    assert "delete_companies" in error_of(other_tool)["message"]
    assert error_of(unknown)["code"] == "not_found"
    assert ok.structured_content["removed"] == 2


async def test_plan_of_another_actor_is_refused(make_settings, tmp_path):
    server = _server(make_settings(actor="alice"))
    async with connect(server) as client:
        plan = (await client.call_tool("delete_companies", {"prefix": "acme"})).structured_content["plan"]
    server.runtime.settings.actor = "mallory"
    async with connect(server) as client:
        result = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert error_of(result)["code"] == "confirmation_required"
    assert "another actor" in error_of(result)["message"]
    assert _names(server) == ALL


async def test_expired_plan_is_refused(settings):
    server = _server(settings)
    async with connect(server) as client:
        plan = (await client.call_tool("delete_companies", {"prefix": "acme"})).structured_content["plan"]
        _edit_plan(server, plan["plan_id"], expires_at=utcnow() - timedelta(seconds=1))
        result = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert error_of(result)["code"] == "confirmation_required"
    assert "expired" in error_of(result)["message"]
    assert _names(server) == ALL


async def test_stale_plan_is_refused(settings):
    server = _server(settings)
    async with connect(server) as client:
        plan = (await client.call_tool("delete_companies", {"prefix": "acme"})).structured_content["plan"]
        with server.runtime.db.session(write=True) as s:
            s.add(CoreCompany(name="acme-3"))  # the state the plan described changed
        result = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert error_of(result)["code"] == "stale_plan"
    assert _names(server) == ["acme-1", "acme-2", "acme-3", "beta"]
    with server.runtime.db.session() as s:
        assert s.get(CorePlan, plan["plan_id"]).used_at is None  # type: ignore[union-attr]


async def test_failed_execution_does_not_consume_the_plan(settings):
    server = _server(settings)
    failing = build_server("t", [_toolset(fail_after=True)], settings=settings)
    async with connect(failing) as client:
        plan = (await client.call_tool("delete_companies", {"prefix": "acme"})).structured_content["plan"]
        failed = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert error_of(failed)["code"] == "not_found"
    assert _names(server) == ALL
    async with connect(server) as client:
        ok = await client.call_tool("delete_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert ok.structured_content["removed"] == 2
    assert _actions(server) == ["plan.create", "plan.confirm", "t.delete_companies"]


async def test_concurrent_confirms_execute_once(settings):
    import anyio

    server = _server(settings)
    results: list[Any] = []
    async with connect(server) as client:
        plan = (await client.call_tool("delete_companies", {"prefix": "acme"})).structured_content["plan"]

        async def confirm() -> None:
            args = {"prefix": "acme", "confirm": plan["plan_id"]}
            results.append(await client.call_tool("delete_companies", args))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(confirm)
    assert sorted(r.is_error for r in results) == [False, True, True, True]
    assert _actions(server).count("plan.confirm") == 1


def _edit_plan(server: RevOpsServer, plan_id: str, **values: Any) -> None:
    with server.runtime.db.session(write=True) as s:
        row = s.get(CorePlan, plan_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
        s.add(row)


# --------------------------------------------------------------------------- critical tier


def _answer(action: str, approve_value: bool | None = None, seen: list[str] | None = None) -> Any:
    async def callback(context: Any, params: ElicitRequestParams) -> ElicitResult:
        if seen is not None:
            seen.append(params.message)
        content = {"approve": approve_value} if approve_value is not None else None
        return ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    return callback


async def _critical(server: RevOpsServer, mode: str, **client_kwargs: Any) -> tuple[dict[str, Any], Any]:
    async with connect(server, mode, **client_kwargs) as client:
        plan = (await client.call_tool("purge_companies", {"prefix": "acme"})).structured_content["plan"]
        assert plan["requires_approval"] is True
        result = await client.call_tool("purge_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    return plan, result


async def test_critical_approved_by_the_client_executes(settings, protocol_mode):
    server = _server(settings)
    seen: list[str] = []
    plan, result = await _critical(server, protocol_mode, elicitation_callback=_answer("accept", True, seen))
    assert not result.is_error, result.content
    assert result.structured_content["removed"] == 2
    assert len(seen) == 1
    assert plan["plan_id"] in seen[0]
    assert _names(server) == ["beta"]
    assert _actions(server) == ["plan.create", "plan.approve", "plan.confirm", "t.purge_companies"]


async def test_critical_declined_cancelled_or_refused_fails_closed(settings, protocol_mode):
    server = _server(settings)
    for action, value, status in [
        ("decline", None, "declined"),
        ("cancel", None, "cancelled"),
        ("accept", False, "declined"),
    ]:
        _, result = await _critical(server, protocol_mode, elicitation_callback=_answer(action, value))
        err = error_of(result)
        assert err["code"] == "approval_required"
        assert err["details"]["approval"] == status
    assert _names(server) == ALL
    assert _actions(server) == ["plan.create"] * 3


async def test_critical_without_elicitation_support_points_to_cli(settings, protocol_mode):
    server = _server(settings)
    plan, result = await _critical(server, protocol_mode)
    err = error_of(result)
    assert err["code"] == "approval_required"
    assert err["details"]["approval"] == "unsupported"
    assert f"revops approve {plan['plan_id']}" in err["hint"]
    assert _names(server) == ALL


async def test_critical_approved_out_of_band_executes(settings, protocol_mode):
    server = _server(settings)
    seen: list[str] = []
    async with connect(server, protocol_mode, elicitation_callback=_answer("decline", seen=seen)) as client:
        plan = (await client.call_tool("purge_companies", {"prefix": "acme"})).structured_content["plan"]
        approve(server.runtime.db, plan["plan_id"], "cli:admin")
        result = await client.call_tool("purge_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert result.structured_content["removed"] == 2
    assert seen == []  # already approved: the client is not asked
    assert _actions(server) == ["plan.create", "plan.approve", "plan.confirm", "t.purge_companies"]


async def test_late_multi_round_answer_counts_as_no(make_settings):
    # 2026-07-28: the answer arrives in a later request; one that comes after the timeout is a no.
    server = _server(make_settings(approval_timeout_seconds=5))

    async def slow_yes(context: Any, params: ElicitRequestParams) -> ElicitResult:
        with server.runtime.db.session(write=True) as s:
            row = s.exec(select(CorePlan)).one()
            row.approval_asked_at = utcnow() - timedelta(seconds=6)  # fake clock: asked 6 s ago
            s.add(row)
        return ElicitResult(action="accept", content={"approve": True})

    _, result = await _critical(server, "auto", elicitation_callback=slow_yes)
    assert error_of(result)["details"]["approval"] == "timeout"
    assert _names(server) == ALL


async def test_legacy_elicitation_timeout_counts_as_no(make_settings):
    import anyio

    server = _server(make_settings(approval_timeout_seconds=0.05))

    async def never(context: Any, params: ElicitRequestParams) -> ElicitResult:
        await anyio.sleep_forever()
        raise AssertionError

    _, result = await _critical(server, "legacy", elicitation_callback=never)
    assert error_of(result)["details"]["approval"] == "timeout"
    assert _names(server) == ALL


async def test_viewer_is_never_prompted_for_critical_approval(make_settings):
    server = _server(make_settings())
    seen: list[str] = []
    async with connect(server, elicitation_callback=_answer("accept", True, seen)) as client:
        plan = (await client.call_tool("purge_companies", {"prefix": "acme"})).structured_content["plan"]
        server.runtime.settings.role = "member"
        result = await client.call_tool("purge_companies", {"prefix": "acme", "confirm": plan["plan_id"]})
    assert error_of(result)["code"] == "permission_denied"
    assert seen == []


def test_approve_refuses_unknown_and_non_critical_plans(db):
    from revops_core.errors import NotFound, ValidationFailed

    with pytest.raises(NotFound):
        approve(db, "pl_missing", "cli:admin")
    with db.session(write=True) as s:
        s.add(_row("pl_x", requires_approval=False))
    with pytest.raises(ValidationFailed):
        approve(db, "pl_x", "cli:admin")
    with Session(db.engine) as s:
        assert s.exec(select(func.count()).select_from(AuditEntry)).one() == 0


def _row(plan_id: str, requires_approval: bool) -> CorePlan:
    return CorePlan(
        plan_id=plan_id,
        tool="t",
        actor="a",
        args_hash="0" * 64,
        fingerprint="0" * 64,
        requires_approval=requires_approval,
        preview=PlanPreview(summary="s", affected_count=0, sample=[], reversible=True).model_dump_json(),
        expires_at=utcnow() + timedelta(minutes=5),
    )
