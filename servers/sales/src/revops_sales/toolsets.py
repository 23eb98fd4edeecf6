"""The Sales toolsets: names, descriptions and which are listed by default.

`crm`, `deals`, `forecasting` and `analytics` are off by default while the Sales server is being built
(issue 8): what they hold works and is tested, but the rest of their capabilities (line items,
tasks, snapshots, waterfalls, …) is not there yet. List them by name or with `--toolsets all`.
"""

from __future__ import annotations

from revops_core.server import Toolset

crm = Toolset(
    "crm",
    "Companies and contacts (shared with the other servers), search, archive (in progress).",
    default=False,
)
deals = Toolset("deals", "Pipelines and stages, deals and their stage history (in progress).", default=False)
forecasting = Toolset(
    "forecasting", "Weighted pipeline and Monte Carlo forecast of a period (in progress).", default=False
)

analytics = Toolset(
    "analytics", "Win rates, cycle length and velocity of closed deals (in progress).", default=False
)

ALL = (crm, deals, forecasting, analytics)
