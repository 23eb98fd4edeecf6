"""`Planned[T]` and `plan_or_run`: how a destructive tool states its preview, fingerprint and effect once.

    @toolset.tool(tier="destructive", idempotent=False, title="Archive a client")
    def archive_client(call: Call, client_id: ClientId, confirm: Confirm = None) -> Planned[ArchiveOut]:
        client = clients.get(call.db, client_id)
        return plan_or_run(
            call,
            confirm=confirm,
            preview=PlanPreview(summary=f"Archive {client.name}.", affected_count=1, ...),
            fingerprint={"id": client.id, "updated_at": client.updated_at},
            run=lambda: clients.archive(call.db, client),
        )

The first call stores a plan and returns `status="planned"` with `plan_id` (nothing else changes,
no audit entry for the tool). The second call with `confirm=<plan_id>` checks the plan is for this
tool, these arguments, this actor and unchanged data (`fingerprint`), then runs `run()` in the same
transaction and returns `status="done"` with its `result`. Critical tools also need a person's
approval (see `guards`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from revops_core.guards import Plan, PlanPreview, require_confirmation

if TYPE_CHECKING:
    from revops_core.server import Call

T = TypeVar("T")


class Planned(BaseModel, Generic[T]):
    """The plan a first call returns, or the result of the confirmed call."""

    status: Literal["planned", "done"] = Field(
        description="planned: nothing changed yet, confirm with plan_id; done: the change was made."
    )
    plan_id: str | None = Field(
        description="Pass as `confirm` (same tool, same arguments) to execute; null once done."
    )
    plan: Plan | None = Field(description="What the confirmed call will do (null once done).")
    result: T | None = Field(description="The outcome of the confirmed call (null while planned).")


def plan_or_run(
    call: Call,
    *,
    confirm: str | None,
    preview: PlanPreview,
    fingerprint: Any,
    run: Callable[[], T],
) -> Planned[T]:
    """Return a plan (no `confirm`), or check `confirm` and return `run()`'s result."""
    plan = require_confirmation(call, confirm=confirm, preview=preview, fingerprint=fingerprint)
    if plan is not None:
        return Planned[Any](status="planned", plan_id=plan.plan_id, plan=plan, result=None)
    return Planned[Any](status="done", plan_id=None, plan=None, result=run())
