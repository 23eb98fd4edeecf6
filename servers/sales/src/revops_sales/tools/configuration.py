"""Sales configuration tools: stage probabilities and default forecast categories, credentials."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.guards import PlanPreview
from revops_core.params import Confirm, SingleLine
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_sales.params import PipelineId
from revops_sales.services import credentials, pipelines, sales_config
from revops_sales.toolsets import configuration as toolset

VaultName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"), SingleLine]


@toolset.tool(
    tier="write",
    idempotent=True,
    title="Set stage probabilities and categories",
    target="sales_pipeline:{pipeline_id}",
)
def configure_stages(
    call: Call,
    pipeline_id: PipelineId,
    stages: Annotated[
        list[sales_config.StageSetting],
        Field(min_length=1, max_length=30, description="Stages to change."),
    ],
) -> pipelines.PipelineOut:
    """Set stages' win probabilities (0–100; won 100, lost 0) and default forecast categories."""
    return sales_config.set_stage_settings(call.db, call.tenant, pipeline_id, stages)


@toolset.tool(tier="read", title="List credentials")
def list_credentials(call: Call) -> list[credentials.CredentialOut]:
    """Vendor credentials the Sales server reads (its own and suite-wide): names and fields, never values."""
    return credentials.list_all(call.db, call.tenant)


@toolset.tool(
    tier="critical", idempotent=False, title="Delete a credential", target="vault:{provider}/{name}"
)
def delete_credential(
    call: Call,
    provider: Annotated[VaultName, Field(description="Vendor, e.g. hubspot (see list_credentials).")],
    name: Annotated[VaultName, Field(description="Name within the vendor.")] = "default",
    server: Annotated[credentials.Scope, Field(description="sales, or * for the suite-wide entry.")] = "*",
    confirm: Confirm = None,
) -> Planned[credentials.CredentialOut]:
    """Delete a vendor credential from the vault: returns a plan a person approves, then confirm."""
    row = credentials.find(call.db, call.tenant, provider, name, server)
    return plan_or_run(
        call,
        confirm=confirm,
        preview=PlanPreview(
            summary=f"Delete the {provider}/{name} credential (server {server}) from the vault.",
            affected_count=1,
            sample=[{"provider": provider, "name": name, "server": server}],
            reversible=False,
            notes=[
                "Tools that call this vendor fail until the credential is set again (`revops vault set`)."
            ],
        ),
        fingerprint=credentials.fingerprint(row),
        run=lambda: credentials.delete(call.db, call.tenant, call.actor, row),
    )
