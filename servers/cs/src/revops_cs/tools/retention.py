"""CS toolset `retention`: Churn risk, churn model, retention campaigns, escalations and post-mortems."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset("retention", "Churn risk, churn model, retention campaigns, escalations and post-mortems.")
