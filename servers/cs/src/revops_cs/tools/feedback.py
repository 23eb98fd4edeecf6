"""CS toolset `feedback`: Surveys (NPS, CSAT, CES), sentiment, voice of the customer and product insights."""

from __future__ import annotations

from revops_core.server import Toolset

toolset = Toolset(
    "feedback", "Surveys (NPS, CSAT, CES), sentiment, voice of the customer and product insights."
)
