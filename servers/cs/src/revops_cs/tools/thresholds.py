"""Retention tools: show and change the thresholds of churn rules, expansion, renewal, LTV, SLA, model."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from revops_core.server import Call
from revops_cs.services import thresholds
from revops_cs.toolsets import retention as toolset

Section = Annotated[thresholds.Section, Field(description="Config section.")]


@toolset.tool(tier="read", title="Show CS thresholds", replaces="configure_cs_thresholds without values")
def get_cs_thresholds(call: Call, section: Section) -> thresholds.ConfigOut:
    """The effective values of one config section (defaults overlaid with stored overrides)."""
    return thresholds.show(call.db, section)


@toolset.tool(
    tier="write", idempotent=True, title="Configure CS thresholds", target="cs_threshold_config:{section}"
)
def configure_cs_thresholds(
    call: Call,
    section: Section,
    values: Annotated[
        dict[str, Any], Field(min_length=1, max_length=50, description="Keys to set (see get_cs_thresholds).")
    ],
) -> thresholds.ConfigOut:
    """Change thresholds for churn rules, expansion, renewal odds, LTV, onboarding, SLA or the model."""
    return thresholds.save(call.db, section, values, call.actor)
