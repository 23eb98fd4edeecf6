"""CS toolset `onboarding`: Onboarding plans, milestones, training, certification and time to value."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset("onboarding", "Onboarding plans, milestones, training, certification and time to value.")
