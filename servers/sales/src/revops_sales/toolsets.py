"""The Sales toolsets: names, descriptions and which are listed by default.

Every toolset is off by default while the Sales server is being built (issue 8): what each holds
works and is tested, but its capabilities are not all there yet. List them by name or with
`--toolsets all`.
"""

from __future__ import annotations

from revops_core.server import Toolset

crm = Toolset(
    "crm",
    "Companies and contacts (shared with the other servers), leads, search, import, duplicates, archive.",
    default=False,
)
deals = Toolset(
    "deals",
    "Pipelines and stages, deals, stage history, line items, tasks, notes, competitors.",
    default=False,
)
forecasting = Toolset(
    "forecasting",
    "Weighted pipeline, Monte Carlo forecast, quotas, coverage and forecast snapshots.",
    default=False,
)
analytics = Toolset(
    "analytics",
    "Win rates, cycle length, velocity, conversion, waterfall, leaderboard, activity.",
    default=False,
)
prospecting = Toolset(
    "prospecting",
    "Ideal customer profile, lead scoring, qualification scorecards, routing, lead conversion, Apollo.",
    default=False,
)
meetings = Toolset(
    "meetings", "Meetings with Google Calendar, outcomes, prep briefs and statistics.", default=False
)
email = Toolset("email", "Gmail send and reply, drafts, logged messages and simple sequences.", default=False)
configuration = Toolset(
    "configuration",
    "Stage probabilities, forecast categories, frameworks, sync settings, credentials.",
    default=False,
)
sync = Toolset("sync", "CRM sync with HubSpot and Salesforce and its status per vendor.", default=False)

ALL = (crm, deals, forecasting, analytics, prospecting, meetings, email, configuration, sync)
