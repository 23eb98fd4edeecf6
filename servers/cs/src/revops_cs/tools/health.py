"""CS toolset `health`: Usage, engagement, health scores, segments, adoption and lifecycle."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset("health", "Usage, engagement, health scores, segments, adoption and lifecycle.")
